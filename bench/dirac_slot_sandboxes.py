"""What a sandbox of its own per DIRAC job costs a parametric submission (issue 18).

Usage: ``uv run python bench/dirac_slot_sandboxes.py [--slots 19 100] [--bridges 1 2]``

Needs the DIRAC testbed (``make testbed-dirac``). As the testbed's alice (her proxy file), it
uploads each slot's ``tasks.json`` (about 300 bytes, with a callback token) as a sandbox of its
own, exactly as :class:`gridgate.dirac.facility.DiracFacility` does before a parametric
``submit``, through ``--bridges`` bridge processes, and prints the seconds and the sandboxes per
second. Nothing is submitted: uploaded sandboxes no job claims are removed by DIRAC's
SandboxStore cleaning. Speed is reported here, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from gridgate.contracts.tasks import TaskSpec
from gridgate.dirac.bridge import DiracBridge
from gridgate.dirac.facility import DiracFacility
from gridgate.dirac.sandbox import SlotTask
from gridgate.dirac.testbed import DiracTestbed, read_env_file

REPO = Path(__file__).resolve().parents[1]


async def run(args: argparse.Namespace, testbed: DiracTestbed, proxy: str) -> None:
    for size in args.bridges:
        bridge = DiracBridge(testbed.connection.environment(), size=size)
        facility = DiracFacility("bench", testbed.connection, bridge=bridge)
        try:
            # Start every process (DIRAC's initialisation) before the clock.
            await asyncio.gather(*(bridge.call("ping", {}) for _ in range(size)))
            for slots in args.slots:
                tasks = [
                    SlotTask(
                        TaskSpec(index=i, argv=["{python}", "-m", "x", f"--name=bench-{i}"]),
                        {"url": "https://gateway.example/api/jobs/j/callback", "token": "t" * 43},
                    )
                    for i in range(slots)
                ]
                started = time.perf_counter()
                locations = await facility._upload_slot_sandboxes(tasks, proxy)
                seconds = time.perf_counter() - started
                assert len(locations) == slots
                print(
                    f"bridges={size} slots={slots}: {seconds:.2f} s, "
                    f"{slots / seconds:.1f} sandboxes/s, {1000 * seconds / slots:.0f} ms each"
                )
        finally:
            await facility.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slots", type=int, nargs="+", default=[19, 100])
    parser.add_argument("--bridges", type=int, nargs="+", default=[1, 2])
    state = Path(os.environ.get("GRIDGATE_TESTBED_DIR", REPO / "var" / "testbeds"))
    variables = read_env_file(state / "dirac" / "env.sh")
    proxy = Path(variables["GRIDGATE_DIRAC_ALICE_PROXY"]).read_text()
    asyncio.run(run(parser.parse_args(), DiracTestbed.from_variables(variables), proxy))


if __name__ == "__main__":
    main()
