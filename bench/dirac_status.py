"""The cost of one status refresh of 1,000 and 10,000 in-flight DIRAC jobs, on the DIRAC testbed.

Usage: ``uv run python bench/dirac_status.py [--jobs 1000 10000] [--repeat 5]``

Needs the DIRAC testbed (``make testbed-dirac``; its ``var/testbeds/dirac/env.sh``). As the
testbed's alice, it puts the largest number of jobs straight into DIRAC's JobManager:
parametric JDLs of up to ``MaxParametricJobs`` jobs each whose bulk submission is never
confirmed, so they stay "Submitting" and no optimizer or JobAgent of the shared testbed ever
works on them. Then, as gridgate's robot, it times ``DiracFacility.status(ids)`` (the monitor's
bulk query: ``status_batch`` ids per call through one bridge process) over the first 1,000 and
all 10,000 of them, interleaved, ``--repeat`` times each, with the CPU the call cost in this
process, the bridge process, DIRAC's JobMonitoring service and MariaDB. At the end, also after a
failure or Ctrl-C, it deletes and removes every job it created. Speed is reported, never
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridgate.dirac.facility import DiracFacility
from gridgate.dirac.testbed import DEFAULT_ENV_FILE, DiracTestbed, read_env_file

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
HELPER = BENCH_DIR / "dirac_direct_submit.py"
TICKS = os.sysconf("SC_CLK_TCK")
FACILITY = "dirac-testbed"


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (the DIRAC bridge processes of this benchmark)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def testbed_pid(variables: dict[str, str], component: str) -> int | None:
    """The pid of a testbed component (run/<component>.pid: the pid on its first line)."""
    path = Path(variables["GRIDGATE_DIRAC_STATE"]) / "run" / f"{component}.pid"
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class DiracUser:
    """Runs ``dirac_direct_submit.py`` with DIRAC's Python as a testbed user (a proxy file)."""

    python: Path
    env: dict[str, str]

    @classmethod
    def of(cls, variables: dict[str, str], user: str = "ALICE") -> DiracUser:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DIRACSYSCONFIG")}
        env.update(
            DIRAC_ROOT_PATH=variables["DIRAC_ROOT_PATH"],
            DIRAC=variables["DIRAC_ROOT_PATH"],
            X509_CERT_DIR=variables["X509_CERT_DIR"],
            X509_VOMS_DIR=variables["X509_CERT_DIR"],
            X509_USER_PROXY=variables[f"GRIDGATE_DIRAC_{user}_PROXY"],
            GRIDGATE_DIRAC_STATE=variables["GRIDGATE_DIRAC_STATE"],
        )
        return cls(Path(variables["GRIDGATE_DIRAC_PYTHON"]), env)

    async def run(
        self,
        command: str,
        *options: str,
        request: dict[str, Any] | None = None,
        attempts: int = 3,
    ) -> dict[str, Any]:
        """One helper command; its JSON answer. Retried when it fails (a service restarting)."""
        for attempt in range(1, attempts + 1):
            process = await asyncio.create_subprocess_exec(
                str(self.python),
                str(HELPER),
                command,
                *options,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                cwd=REPO,
            )
            out, err = await process.communicate(json.dumps(request or {}).encode())
            lines = out.decode().strip().splitlines()
            if process.returncode == 0 and lines:
                answer: dict[str, Any] = json.loads(lines[-1])
                return answer
            tail = err.decode()[-2000:]
            if attempt == attempts:
                raise RuntimeError(f"{HELPER.name} {command} failed:\n{tail}")
            print(f"  {HELPER.name} {command} failed (attempt {attempt}), retrying in 10 s")
            await asyncio.sleep(10)
        raise AssertionError("unreachable")

    async def purge_group(self, group: str) -> dict[str, Any]:
        """Delete and remove every job of a JobGroup (those this run created)."""
        found = await self.run("find", "--group", group)
        if not found["ids"]:
            return {"jobs": 0, "seconds": {}, "failures": []}
        return await self.run("delete", request={"ids": found["ids"]})


@dataclass
class Refresh:
    """One ``status()`` call over N jobs."""

    jobs: int
    wall_s: float
    own_cpu_s: float  # this process: the bridge client, JSON, TaskStatus building
    bridge_cpu_s: float  # the DIRAC bridge process(es): DIRAC's client, DISET, JSON
    service_cpu_s: float  # DIRAC's JobMonitoring service (shared: others' calls count too)
    db_cpu_s: float  # MariaDB (shared, likewise)
    machine_busy: float


@dataclass
class Series:
    jobs: int
    runs: list[Refresh] = field(default_factory=list)

    def median(self, name: str) -> float:
        return float(statistics.median(getattr(r, name) for r in self.runs))


async def refresh(
    facility: DiracFacility, ids: Sequence[str], variables: dict[str, str]
) -> Refresh:
    bridges = children(os.getpid())
    service = testbed_pid(variables, "JobMonitoring")
    db = testbed_pid(variables, "mariadb")

    def cpu() -> tuple[float, float, float, float]:
        return (
            time.process_time(),
            sum(process_cpu_s(p) for p in bridges),
            process_cpu_s(service) if service else 0.0,
            process_cpu_s(db) if db else 0.0,
        )

    before, (busy0, total0) = cpu(), machine_cpu()
    t0 = time.perf_counter()
    states = await facility.status(ids)
    wall = time.perf_counter() - t0
    after, (busy1, total1) = cpu(), machine_cpu()
    if len(states) != len(ids):
        raise RuntimeError(f"status() answered {len(states)} of {len(ids)} jobs")
    unexpected = {s.state for s in states.values()} - {"Submitting"}
    if unexpected:
        raise RuntimeError(f"jobs left 'Submitting' (someone confirmed them?): {unexpected}")
    own, bridge, svc, dbs = (b - a for a, b in zip(before, after, strict=True))
    return Refresh(len(ids), wall, own, bridge, svc, dbs, (busy1 - busy0) / max(total1 - total0, 1))


def print_report(series: list[Series], inserted: dict[str, Any], batch: int) -> None:
    print(f"\nstatus refresh, medians of {len(series[0].runs)} runs each (status_batch {batch}):")
    print(
        f"{'jobs':>7} {'calls':>5} {'wall ms':>8} {'µs/job':>7} {'gridgate CPU ms':>15} "
        f"{'bridge CPU ms':>13} {'JobMonitoring CPU ms':>20} {'MariaDB CPU ms':>14} "
        f"{'machine':>7}"
    )
    for s in series:
        calls = -(-s.jobs // batch)
        print(
            f"{s.jobs:>7} {calls:>5} {s.median('wall_s') * 1e3:>8.0f} "
            f"{s.median('wall_s') * 1e6 / s.jobs:>7.0f} "
            f"{s.median('own_cpu_s') * 1e3:>15.0f} {s.median('bridge_cpu_s') * 1e3:>13.0f} "
            f"{s.median('service_cpu_s') * 1e3:>20.0f} {s.median('db_cpu_s') * 1e3:>14.0f} "
            f"{s.median('machine_busy'):>7.0%}"
        )
        walls = sorted(r.wall_s * 1e3 for r in s.runs)
        print(f"{'':>7} wall ms per run: {', '.join(f'{w:.0f}' for w in walls)}")
    chunks = inserted["chunk_seconds"]
    print(
        f"\ninserting {len(inserted['ids'])} unconfirmed jobs: {inserted['seconds']:.1f} s in "
        f"{len(chunks)} JobManager calls of up to {inserted['max_parametric']} "
        f"({statistics.median(chunks):.1f} s each, median)"
    )


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


async def run(args: argparse.Namespace) -> int:
    variables = read_env_file(args.env_file)
    testbed = DiracTestbed.from_variables(variables)
    connection = testbed.connection
    if args.batch:
        connection = connection.model_copy(update={"status_batch": args.batch})
    alice = DiracUser.of(variables)
    group = f"bench.status.{os.getpid()}.{int(time.time())}"
    sizes = sorted(args.jobs)
    started = time.monotonic()
    facility = DiracFacility(FACILITY, connection)
    try:
        print(f"inserting {sizes[-1]} jobs as alice (JobGroup {group}), unconfirmed ...")
        inserted = await alice.run("insert", "--n", str(sizes[-1]), "--group", group)
        ids = [str(i) for i in inserted["ids"]]
        print(
            f"  {len(ids)} jobs {ids[0]}..{ids[-1]} in {inserted['seconds']:.1f} s "
            f"(DIRAC {inserted['dirac']})"
        )
        await facility.status(ids[:10])  # start the bridge process and DIRAC's client
        series = [Series(n) for n in sizes]
        for index in range(args.repeat):
            order = series if index % 2 == 0 else list(reversed(series))
            for s in order:
                s.runs.append(await refresh(facility, ids[: s.jobs], variables))
            print(
                f"run {index + 1}/{args.repeat}: "
                + ", ".join(f"{s.jobs} jobs {s.runs[-1].wall_s * 1e3:.0f} ms" for s in series)
            )
        print_report(series, inserted, connection.status_batch)
    finally:
        await facility.close()
        print(f"\ndeleting the jobs of {group} ...")
        removed = await alice.purge_group(group)
        timings = ", ".join(f"{k}Job {v:.1f} s" for k, v in removed["seconds"].items())
        print(f"  {removed['jobs']} jobs deleted and removed ({timings})")
        for failure in removed["failures"]:
            print(f"  failure: {failure}")
        left = await alice.run("find", "--group", group)
        print(f"  left in DIRAC: {len(left['ids'])} jobs")
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=0, help="status_batch (default: 1000)")
    parser.add_argument("--env-file", type=Path, default=REPO / DEFAULT_ENV_FILE)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
