"""Consumers: thin adapters from broker messages to service calls."""
