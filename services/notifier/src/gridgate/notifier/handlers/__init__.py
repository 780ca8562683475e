"""HTTP routes of the notifier: /api/subscriptions, health and metrics."""
