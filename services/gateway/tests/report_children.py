"""A gateway's report handler run in a child process with a crash point armed: how the tests
SIGKILL it at an exact line, then play the broker's redelivery in the test process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from gridgate.contracts import REPORT_ADAPTER, Report

CHILD = """
import asyncio, json, sys
from gridgate.contracts import REPORT_ADAPTER
from gridgate.gateway.consumers.reports import ReportHandler
from gridgate.testing.gateway import offline_context

async def main(url, path):
    messages = [REPORT_ADAPTER.validate_python(m) for m in json.load(open(path))]
    handler = ReportHandler(offline_context(url))
    await asyncio.gather(*(handler(m) for m in messages))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def killed_handling(url: str, messages: Sequence[Report], tmp_path: Path, crash: str) -> None:
    """Hand ``messages`` to one report handler at once (as the consumer does with its
    prefetch) in a child process on the database at ``url``, with the crash point ``crash``
    armed; returns once it was SIGKILLed there."""
    path = tmp_path / "messages.json"
    path.write_text(json.dumps([REPORT_ADAPTER.dump_python(m, mode="json") for m in messages]))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(path)],
        env={"PATH": "/usr/bin:/bin", "GRIDGATE_CRASH_POINTS": crash},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
