"""The client commands of ``gridgate``, one group of commands per module."""
