"""The gateway: identity at the edge (tokens), routing to the services, the merged OpenAPI."""
