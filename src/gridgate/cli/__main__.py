"""``python -m gridgate.cli`` is ``gridgate``."""

from gridgate.cli.app import run

run()
