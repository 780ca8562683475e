"""The gateway's domain and API models."""
