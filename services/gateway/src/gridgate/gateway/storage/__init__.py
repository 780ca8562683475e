"""Stores: translate between rows and models. They never decide and never commit."""
