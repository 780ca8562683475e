"""Services: the gateway's rules. One method is one unit of work."""
