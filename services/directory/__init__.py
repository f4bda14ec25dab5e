"""The directory: regions, counties, people, accounts and API clients."""
