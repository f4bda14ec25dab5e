"""Requests: the life cycle of what counties ask of the office."""
