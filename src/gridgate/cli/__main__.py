"""``python -m gridgate.cli`` is ``gridgate``."""

from gridgate.cli.main import run

run()
