"""The notifier: delivers job and schedule events to subscribers' endpoints as signed webhooks."""
