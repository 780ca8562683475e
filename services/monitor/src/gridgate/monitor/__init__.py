"""gridgate package."""
