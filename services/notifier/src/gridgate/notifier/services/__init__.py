"""The notifier's rules: subscriptions, taking events in, delivering them."""
