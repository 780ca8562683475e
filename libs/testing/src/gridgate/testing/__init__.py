"""pytest plugin and helpers for tests against real RabbitMQ, databases and testbeds."""
