"""N hello-world jobs into the DIRAC testbed: through gridgate, and one by one with the DIRAC API.

Usage: ``uv run python bench/dirac_submission.py [--jobs 200] [--concurrency 20] [--inline]``

Needs the DIRAC testbed (``make testbed-dirac``; its ``var/testbeds/dirac/env.sh``), RabbitMQ
with ``rabbitmqctl`` (a vhost of its own), and the auth service's ``dirac-proxymanager``
provider. In one run, as the testbed's alice:

1. **DIRAC directly.** ``bench/dirac_direct_submit.py`` runs with DIRAC's Python and alice's
   proxy file and submits N jobs one by one, ``Dirac().submitJob(Job())`` in a loop, each
   shipping a small ``hello.sh`` in its input sandbox (``--inline``: ``echo`` with no sandbox).
   The jobs ban the testbed's only site, so they wait and never run; they are deleted and
   removed right after.
2. **gridgate.** The one-process stack (gateway with auth, submitter, monitor, results) on a
   free port, pointed at the testbed as ``gridgate dev --dirac-testbed`` is. First
   ``--warmup`` job(s) go all the way to DIRAC and are deleted, so that what starts lazily
   (bridge processes, caches) has started, as the direct path starts DIRAC before its loop.
   Then N ``POST /api/jobs`` (``workflow=hello-world``, ``facility=dirac-testbed``,
   ``PHASE=RUN``), ``--concurrency`` at a time, with a development-issuer token for alice's
   IAM subject. The clock runs from the first POST until every job's task has its DIRAC job
   id (polled on the gateway's in-flight route, the one the monitor reads, every 0.2 s); each
   job's JSON is then checked for ``jobInfo.tasks[0].facilityJobId``. Every DIRAC bridge call
   gridgate makes is counted by operation, so the number of DIRAC submit calls is seen, not
   guessed. Then the jobs are deleted through the API (gridgate kills and deletes them in
   DIRAC); once DIRAC shows them Deleted (or after ``--cleanup-timeout``), whatever DIRAC
   holds of them is deleted and removed from its databases.

Prints both rates, the ratio gridgate/direct (goal: at least 20x), the DIRAC calls (each
submit call's start after the first POST, its length and its jobs), the CPU seconds each
program used meanwhile (``process_cpu.py``: gridgate's own process, its DIRAC bridges, each
DIRAC service, MariaDB, RabbitMQ), the gateway's in-flight listing (one monitor round's
gateway side), and every warning or error the stack logged: each error record in full
(event, path, job id, traceback), and the stack's log kept (``--keep-log``, or a file under
the system's temporary directory, its path printed) whenever it holds a warning or an error,
even when the run fails. Speed is reported here, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
import structlog

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import process_cpu  # noqa: E402
from dirac_status import REPO, DiracUser, machine_cpu  # noqa: E402

from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer  # noqa: E402
from gridgate.contracts.internal import IN_FLIGHT_PATH, INTERNAL_TOKEN_HEADER  # noqa: E402
from gridgate.core.logging import configure_logging  # noqa: E402
from gridgate.dirac.bridge import DiracBridge  # noqa: E402
from gridgate.dirac.jdl import job_group  # noqa: E402
from gridgate.dirac.testbed import DEFAULT_ENV_FILE, FACILITY, DiracTestbed  # noqa: E402
from gridgate.testing.services import (  # noqa: E402
    create_postgres_database,
    drop_postgres_database,
    free_port,
    rabbitmq_vhost,
)

GOAL = 20.0
POLL_S = 0.2


@dataclass
class BridgeCalls:
    """Every DIRAC bridge call of this process, by operation: how many and how long."""

    count: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, list[int]] = field(default_factory=dict)
    ignored: set[int] = field(default_factory=set)  # bridges of this benchmark (the robot)
    submits: list[tuple[float, float, int]] = field(default_factory=list)
    """Each submit call: when it began (perf_counter), how long it took, DIRAC jobs made."""

    def record(
        self, op: str, args: dict[str, Any] | None, answer: Any, started: float, seconds: float
    ) -> None:
        self.count[op] += 1
        self.seconds[op] = self.seconds.get(op, 0.0) + seconds
        if op == "submit" and isinstance(answer, list):
            self.sizes.setdefault(op, []).append(len(answer))  # DIRAC jobs it created
            self.submits.append((started, seconds, len(answer)))
        elif op in ("status", "kill", "delete") and args:
            self.sizes.setdefault(op, []).append(len(args.get("ids", [])))

    def snapshot(self) -> BridgeCalls:
        return BridgeCalls(
            Counter(self.count),
            dict(self.seconds),
            {k: list(v) for k, v in self.sizes.items()},
            submits=list(self.submits),
        )

    def describe(self) -> str:
        return ", ".join(
            f"{op} {n} ({self.seconds[op]:.1f} s)" for op, n in sorted(self.count.items())
        )

    def since(self, before: BridgeCalls) -> BridgeCalls:
        """The calls made after ``before`` was taken."""
        return BridgeCalls(
            self.count - before.count,
            {op: s - before.seconds.get(op, 0.0) for op, s in self.seconds.items()},
            {op: v[len(before.sizes.get(op, [])) :] for op, v in self.sizes.items()},
            submits=self.submits[len(before.submits) :],
        )


def count_bridge_calls(calls: BridgeCalls) -> Callable[[], None]:
    """Wrap DiracBridge.call so every call is counted; returns the undo."""
    original = DiracBridge.call

    async def counted(
        self: DiracBridge,
        op: str,
        args: dict[str, Any] | None = None,
        *,
        proxy: bytes | str | None = None,
    ) -> Any:
        started = time.perf_counter()
        answer = None
        try:
            answer = await original(self, op, args, proxy=proxy)
            return answer
        finally:
            if id(self) not in calls.ignored:
                calls.record(op, args, answer, started, time.perf_counter() - started)

    DiracBridge.call = counted  # type: ignore[method-assign]

    def undo() -> None:
        DiracBridge.call = original  # type: ignore[method-assign]

    return undo


def log_to(path: Path) -> TextIO:
    """The stack's structlog events and standard logging as JSON lines in one file."""
    sink = path.open("a", encoding="utf-8")
    configure_logging(json=True, level="INFO")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sink))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    return sink


class JsonFormatter(logging.Formatter):
    """Standard-library records (uvicorn, aio-pika) as JSON lines, like structlog's."""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "logger": record.name,
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "timestamp": self.formatTime(record),  # to line them up with structlog's
        }
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event)


def read_log(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            event = {"level": "unparsed", "event": line[:300]}
        if isinstance(event, dict):
            events.append(event)
    return events


@dataclass
class Direct:
    jobs: int
    seconds: float
    call_seconds: list[float]
    errors: list[str]
    dirac: str

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


@dataclass
class Gridgate:
    jobs: int
    accepted_s: float  # first POST -> last POST answered
    seconds: float  # first POST -> every job has its DIRAC id
    post_ms: list[float]
    id_at_s: list[float]  # per job: first POST -> its DIRAC id seen
    calls: BridgeCalls  # until the last DIRAC id
    machine_busy: float
    started: float  # perf_counter at the first POST
    cpu: dict[str, float]  # CPU seconds by program, first POST -> last DIRAC id
    cleanup_calls: BridgeCalls = field(default_factory=BridgeCalls)  # DELETE -> Deleted
    in_flight_ms: list[float] = field(default_factory=list)
    in_flight_bytes: int = 0
    dirac_states: Counter[str] = field(default_factory=Counter)
    visible: int = 0  # jobs whose JSON shows jobInfo.tasks[0].facilityJobId
    delete_s: float = 0.0  # the DELETE requests
    deleted_in_dirac: int = 0  # DIRAC jobs seen Deleted within the cleanup timeout
    last_deleted_s: float = 0.0  # first DELETE -> the last DIRAC job seen Deleted
    leftovers: dict[str, Any] = field(default_factory=dict)  # DIRAC id -> its status record
    leftover_history: dict[str, Any] = field(default_factory=dict)
    states_at_delete: Counter[str] = field(default_factory=Counter)
    removed: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


async def direct(alice: DiracUser, variables: dict[str, str], args: argparse.Namespace) -> Direct:
    group = f"bench.direct.{os.getpid()}.{int(time.time())}"
    options = ["--n", str(args.jobs), "--group", group]
    options += ["--ban-site", variables["GRIDGATE_DIRAC_SITE"]]
    if args.inline:
        options.append("--inline")
    print(f"DIRAC API: {args.jobs} x Dirac().submitJob(Job()) as alice (JobGroup {group}) ...")
    try:
        answer = await alice.run("submit", *options, attempts=1)
    finally:
        removed = await alice.purge_group(group)
        print(
            f"  deleted and removed {removed['jobs']} jobs; "
            f"left {len((await alice.run('find', '--group', group))['ids'])}"
        )
    result = Direct(
        len(answer["ids"]),
        answer["seconds"],
        answer["call_seconds"],
        answer["errors"],
        answer["dirac"],
    )
    print(f"  {result.jobs} submitted in {result.seconds:.1f} s: {result.rate:.2f} jobs/s")
    return result


async def parametric(
    alice: DiracUser, variables: dict[str, str], args: argparse.Namespace
) -> Direct:
    """The same N jobs as one parametric submission with the DIRAC API (DIRAC's best path)."""
    group = f"bench.par.{os.getpid()}.{int(time.time())}"  # JobGroup: 32 characters at most
    options = ["--n", str(args.jobs), "--group", group]
    options += ["--ban-site", variables["GRIDGATE_DIRAC_SITE"]]
    print(f"DIRAC API: {args.jobs} jobs as one parametric submitJob as alice ({group}) ...")
    try:
        answer = await alice.run("parametric", *options, attempts=1)
    finally:
        removed = await alice.purge_group(group)
        print(f"  deleted and removed {removed['jobs']} jobs")
    result = Direct(
        len(answer["ids"]),
        answer["seconds"],
        [answer["seconds"]],
        answer["errors"],
        answer["dirac"],
    )
    print(f"  {result.jobs} submitted in {result.seconds:.1f} s: {result.rate:.2f} jobs/s")
    return result


async def gather_limited(limit: int, work: Iterable[Awaitable[Any]]) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(item: Awaitable[Any]) -> Any:
        async with semaphore:
            return await item

    return await asyncio.gather(*(one(w) for w in work))


async def in_flight(http: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    response = await http.get(
        IN_FLIGHT_PATH, params={"facility": FACILITY}, headers={INTERNAL_TOKEN_HEADER: token}
    )
    response.raise_for_status()
    jobs: list[dict[str, Any]] = response.json()["jobs"]
    return jobs


async def dirac_states(robot: DiracBridge, ids: list[str]) -> Counter[str]:
    records = await robot.call("status", {"ids": ids})
    states = Counter(str(records[i]["Status"]) for i in ids if i in records)
    states["(unknown to DIRAC)"] = len(ids) - sum(states.values())
    return +states


async def through_gridgate(
    stack: DevStack,
    robot: DiracBridge,
    calls: BridgeCalls,
    args: argparse.Namespace,
    alice_sub: str,
    job_ids: list[str],
) -> Gridgate:
    """POST N jobs (their ids into ``job_ids``), wait for all their DIRAC ids, delete them."""
    token = dev_issuer(stack.data_dir, stack.host, stack.port).mint(
        alice_sub, groups=["cta"], audience=AUDIENCE, lifetime_s=7200
    )
    limits = httpx.Limits(max_connections=args.concurrency + 4)
    async with httpx.AsyncClient(
        base_url=stack.url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=120.0,
        limits=limits,
    ) as http:
        assert (await http.get("/api/jobs")).status_code == 200  # the token works, warm
        post_ms: list[float] = []

        async def post(index: int, into: list[str]) -> str:
            t0 = time.perf_counter()
            created = await http.post(
                "/api/jobs",
                data={
                    "workflow": "hello-world",
                    "facility": FACILITY,
                    "PHASE": "RUN",
                    "name": f"bench {index}",
                },
            )
            post_ms.append((time.perf_counter() - t0) * 1e3)
            if created.status_code != 303:
                raise RuntimeError(f"POST /api/jobs answered {created.status_code}: {created.text}")
            job_id = str(created.headers["location"]).rstrip("/").rsplit("/", 1)[1]
            job_ids.append(job_id)
            into.append(job_id)
            return job_id

        if args.warmup:
            # Start what starts lazily (bridge processes, DIRAC clients, caches) before the
            # clock runs, as the direct path starts DIRAC before its loop: a few jobs all the
            # way to DIRAC and back out.
            t0 = time.perf_counter()
            warm: list[str] = []
            for index in range(args.warmup):
                await post(-1 - index, warm)
            found = await wait_for_ids(http, stack.internal_token, t0, warm, args.timeout)
            for job_id in warm:
                await http.delete(f"/api/jobs/{job_id}")
            warm_dirac = [i for at_ids in found.values() for i in at_ids[1]]
            while warm_dirac and time.perf_counter() - t0 < args.timeout:
                if set(await dirac_states(robot, warm_dirac)) <= {"Deleted"}:
                    break
                await asyncio.sleep(1)
            post_ms.clear()
            took = time.perf_counter() - t0
            print(f"  warm-up: {len(warm)} job(s) submitted and deleted in {took:.1f} s")

        print(f"gridgate: {args.jobs} x POST /api/jobs, {args.concurrency} at a time ...")
        before = calls.snapshot()
        timed: list[str] = []
        busy0, total0 = machine_cpu()
        processes = process_cpu.snapshot()
        start = time.perf_counter()
        poll_task = asyncio.create_task(
            wait_for_ids(http, stack.internal_token, start, timed, args.timeout, args.jobs)
        )
        await gather_limited(args.concurrency, (post(i, timed) for i in range(args.jobs)))
        accepted_s = time.perf_counter() - start
        print(f"  {len(timed)} accepted in {accepted_s:.1f} s; waiting for DIRAC ids ...")
        seen = await poll_task
        elapsed = time.perf_counter() - start
        busy1, total1 = machine_cpu()
        cpu = process_cpu.spent(processes, process_cpu.snapshot())
        snapshot = calls.snapshot().since(before)
        missing = set(timed) - set(seen)
        if missing:
            await explain_missing(http, sorted(missing))
            raise RuntimeError(f"{len(missing)} jobs got no DIRAC id in {args.timeout:g} s")
        result = Gridgate(
            jobs=len(timed),
            accepted_s=accepted_s,
            seconds=elapsed,
            post_ms=post_ms,
            id_at_s=sorted(at for at, _ in seen.values()),
            calls=snapshot,
            machine_busy=(busy1 - busy0) / max(total1 - total0, 1),
            started=start,
            cpu=cpu,
        )
        print(
            f"  all {result.jobs} have DIRAC ids after {elapsed:.1f} s: "
            f"{result.rate:.1f} jobs/s; DIRAC calls: {snapshot.describe()}"
        )
        dirac_ids = [i for job in timed for i in seen[job][1]]

        # What a user sees: each job's JSON carries its DIRAC job id.
        async def visible(job_id: str) -> bool:
            job = (await http.get(f"/api/jobs/{job_id}")).json()
            tasks = job.get("jobInfo", {}).get("tasks", [])
            return bool(tasks) and all(t.get("facilityJobId") for t in tasks)

        result.visible = sum(await gather_limited(args.concurrency, map(visible, timed)))
        result.dirac_states = await dirac_states(robot, dirac_ids)
        # The gateway's side of one monitor round: the in-flight listing, as the monitor asks.
        for _ in range(5):
            t0 = time.perf_counter()
            response = await http.get(
                IN_FLIGHT_PATH,
                params={"facility": FACILITY},
                headers={INTERNAL_TOKEN_HEADER: stack.internal_token},
            )
            result.in_flight_ms.append((time.perf_counter() - t0) * 1e3)
            result.in_flight_bytes = len(response.content)

        # Clean up through gridgate itself: DELETE kills and deletes the jobs in DIRAC.
        result.states_at_delete = await dirac_states(robot, dirac_ids)
        before = calls.snapshot()
        await delete_through_gridgate(http, robot, timed, dirac_ids, result, args)
        result.cleanup_calls = calls.snapshot().since(before)
    return result


async def delete_through_gridgate(
    http: httpx.AsyncClient,
    robot: DiracBridge,
    job_ids: list[str],
    dirac_ids: list[str],
    result: Gridgate,
    args: argparse.Namespace,
) -> None:
    """DELETE every job; wait until DIRAC shows their jobs Deleted (or the cleanup timeout)."""
    t0 = time.perf_counter()
    answers = await gather_limited(
        args.concurrency, (http.delete(f"/api/jobs/{j}") for j in job_ids)
    )
    result.delete_s = time.perf_counter() - t0
    refused = [a.status_code for a in answers if a.status_code not in (204, 303)]
    if refused:
        print(f"  DELETE refused for {len(refused)} jobs: {Counter(refused)}")
    deadline = time.monotonic() + args.cleanup_timeout
    deleted = 0
    records: dict[str, Any] = {}
    while time.monotonic() < deadline:
        records = await robot.call("status", {"ids": dirac_ids})
        now_deleted = sum(1 for i in dirac_ids if records.get(i, {}).get("Status") == "Deleted")
        if now_deleted > deleted:
            deleted, result.last_deleted_s = now_deleted, time.perf_counter() - t0
        if deleted == len(dirac_ids):
            break
        await asyncio.sleep(2)
    result.deleted_in_dirac = deleted
    result.leftovers = {
        i: records.get(i, {}) for i in dirac_ids if records.get(i, {}).get("Status") != "Deleted"
    }
    print(
        f"  DELETEs answered in {result.delete_s:.1f} s; {deleted}/{len(dirac_ids)} Deleted "
        f"in DIRAC, the last after {result.last_deleted_s:.1f} s"
    )


async def wait_for_ids(
    http: httpx.AsyncClient,
    token: str,
    start: float,
    job_ids: list[str],
    timeout_s: float,
    expected: int | None = None,
) -> dict[str, tuple[float, list[str]]]:
    """gridgate job id -> (seconds after start, DIRAC ids), as the in-flight route shows them.

    Only the jobs of ``job_ids`` count (a list the POSTs may still be filling); it waits for
    ``expected`` of them (default: all of ``job_ids``).
    """
    wanted = len(job_ids) if expected is None else expected
    seen: dict[str, tuple[float, list[str]]] = {}
    while time.perf_counter() - start < timeout_s:
        ours = set(job_ids)
        for job in await in_flight(http, token):
            ids = [t["facility_job_id"] for t in job["tasks"]]
            if job["job_id"] in ours and job["job_id"] not in seen and ids and all(ids):
                seen[job["job_id"]] = (time.perf_counter() - start, ids)
        if len(seen) >= wanted:
            break
        await asyncio.sleep(POLL_S)
    return seen


async def explain_missing(http: httpx.AsyncClient, job_ids: list[str]) -> None:
    for job_id in job_ids[:5]:
        job = (await http.get(f"/api/jobs/{job_id}")).json()
        print(f"  no DIRAC id: {job_id} {job.get('phase')} {job.get('errorSummary')}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(
    d: Direct,
    g: Gridgate,
    events: list[dict[str, Any]],
    args: argparse.Namespace,
    p: Direct | None = None,
) -> None:
    ratio = g.rate / d.rate
    kind = "echo, no sandbox" if args.inline else "hello.sh in the input sandbox"
    print(f"\nN = {args.jobs} hello-world jobs, DIRAC {d.dirac}, {os.cpu_count()} cores")
    print(f"{'path':<34} {'seconds':>8} {'jobs/s':>8}")
    print(f"{'DIRAC API, one by one':<34} {d.seconds:>8.1f} {d.rate:>8.2f}   ({kind})")
    print(
        f"{'gridgate, POST -> DIRAC id':<34} {g.seconds:>8.1f} {g.rate:>8.2f}   "
        f"({args.concurrency} POSTs at a time)"
    )
    print(f"ratio gridgate/direct: {ratio:.1f}x (goal >= {GOAL:g}x)")
    if p is not None and p.jobs:
        print(f"{'DIRAC API, one parametric submit':<34} {p.seconds:>8.1f} {p.rate:>8.2f}")
        print(f"ratio gridgate/parametric: {g.rate / p.rate:.2f}x (issue 16 P2 goal >= 0.8x)")
    elif p is not None:
        print(f"DIRAC parametric submission failed: {p.errors[:1]}")
    calls = sorted(d.call_seconds)
    print(
        f"\nDIRAC API per submitJob: median {statistics.median(calls) * 1e3:.0f} ms, "
        f"p90 {percentile(calls, 0.9) * 1e3:.0f} ms, max {calls[-1] * 1e3:.0f} ms; "
        f"errors {len(d.errors)}" + (f" (first: {d.errors[0]})" if d.errors else "")
    )
    print(
        f"gridgate: POSTs all answered after {g.accepted_s:.1f} s (per POST median "
        f"{statistics.median(g.post_ms):.0f} ms, max {max(g.post_ms):.0f} ms); DIRAC id "
        f"seen after {min(g.id_at_s):.1f} s at first, median {statistics.median(g.id_at_s):.1f} "
        f"s, max {max(g.id_at_s):.1f} s; "
        f"machine {g.machine_busy:.0%} busy"
    )
    sizes = g.calls.sizes.get("submit", [])
    print(
        f"  DIRAC bridge calls until the last id: {g.calls.describe()}; submit calls "
        f"{g.calls.count['submit']} (DIRAC jobs per call: {sizes})"
    )
    timeline = ", ".join(
        f"+{at - g.started:.1f} s for {took:.1f} s ({jobs})" for at, took, jobs in g.calls.submits
    )
    print(f"  submit calls after the first POST: {timeline}")
    print(f"  CPU meanwhile, by program (seconds): {process_cpu.describe(g.cpu)}")
    bulk = [e for e in events if e.get("event") == "bulk submission"]
    print(
        f"  submitter log: {len(bulk)} 'bulk submission' lines, jobs per batch "
        f"{[e.get('jobs') for e in bulk]}; "
        f"{sum(1 for e in events if e.get('event') == 'job submitted')} 'job submitted'"
    )
    print(f"  jobs whose JSON shows jobInfo.tasks[0].facilityJobId: {g.visible}/{g.jobs}")
    print(f"  DIRAC states of those jobs just after: {dict(g.dirac_states)}")
    print(
        f"  gateway in-flight listing ({g.jobs} jobs, {g.in_flight_bytes / 1024:.0f} KiB): "
        f"median {statistics.median(g.in_flight_ms):.0f} ms of {len(g.in_flight_ms)}"
    )
    print(
        f"  cleanup through gridgate: DIRAC states at DELETE {dict(g.states_at_delete)}; "
        f"DELETEs answered in {g.delete_s:.1f} s; {g.deleted_in_dirac}/{len(g.id_at_s)} "
        f"Deleted in DIRAC, the last {g.last_deleted_s:.1f} s after the first DELETE"
    )
    print(f"    gridgate's DIRAC bridge calls meanwhile: {g.cleanup_calls.describe()}")
    for dirac_id, record in g.leftovers.items():
        print(
            f"    not Deleted: DIRAC job {dirac_id} {record.get('Status')} / "
            f"{record.get('MinorStatus')} / {record.get('ApplicationStatus')}"
        )
        for row in g.leftover_history.get(dirac_id, []):
            print(f"      {' | '.join(row)}")
    print(
        f"  afterwards deleted and removed from DIRAC's databases: {g.removed.get('jobs', 0)} "
        f"jobs (failures: {g.removed.get('failures', [])})"
    )
    noisy = Counter(
        (str(e.get("level")), str(e.get("event"))[:160])
        for e in events
        if str(e.get("level", "")).lower() in ("warning", "error", "critical", "unparsed")
    )
    print(f"  stack warnings/errors logged: {sum(noisy.values())}")
    for (level, event), n in noisy.most_common(12):
        print(f"    {n:>4} x {level}: {event}")


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


async def run(args: argparse.Namespace) -> int:
    testbed = DiracTestbed.from_env_file(args.env_file)
    variables = testbed.variables
    alice = DiracUser.of(variables)
    started = time.monotonic()
    direct_result = await direct(alice, variables, args)
    parametric_result = await parametric(alice, variables, args)

    calls = BridgeCalls()
    undo = count_bridge_calls(calls)
    robot = DiracBridge(testbed.connection.environment(), size=1)
    calls.ignored.add(id(robot))
    database, database_url = (await create_postgres_database()) if args.postgres else (None, None)
    with tempfile.TemporaryDirectory(prefix="bench-dirac-") as work, rabbitmq_vhost() as vhost:
        log_path = Path(work) / "stack.log"
        sink = log_to(log_path)
        stack = DevStack(
            data_dir=Path(work) / "stack",
            port=free_port(),
            broker_url=vhost,
            database_url=database_url,
            dirac_facilities={FACILITY: testbed.connection},
            auth_options=testbed.auth_options(),
        )
        job_ids: list[str] = []  # filled as the POSTs answer, for the cleanup
        result: Gridgate | None = None
        history: dict[str, Any] = {}
        removed: dict[str, Any] = {}
        try:
            await stack.start()
            result = await through_gridgate(stack, robot, calls, args, testbed.alice_sub, job_ids)
        finally:
            await stack.stop()
            undo()
            sink.close()
            keep_evidence(log_path, args.keep_log)
            if database is not None:
                await drop_postgres_database(database)
            # Whatever DIRAC still holds of these jobs: history of what gridgate did not
            # delete, then deleted and removed (gridgate leaves Deleted rows; the testbed is
            # shared).
            groups = [job_group(j) for j in job_ids]
            held = (await alice.run("find", request={"groups": groups}))["ids"] if groups else []
            known = result.leftovers if result is not None else {}
            leftovers = [str(i) for i in held if str(i) in known]
            if leftovers:
                history = (await alice.run("history", request={"ids": leftovers}))["history"]
            if held:
                removed = await alice.run("delete", request={"ids": held})
            await robot.close()
        result.leftover_history, result.removed = history, removed
        report(direct_result, result, read_log(log_path), args, parametric_result)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


NOISY_LEVELS = ("warning", "error", "critical", "unparsed")


def keep_evidence(log_path: Path, keep_log: Path | None) -> None:
    """Print every error record of the stack's log in full and keep the log if it has any.

    The log lives in the run's temporary directory; an error seen once under load may never
    come back, so the file is copied out (to ``--keep-log`` or a new file under the system's
    temporary directory) and its path printed, even when the run itself failed.
    """
    if not log_path.exists():
        return
    events = read_log(log_path)
    noisy = [e for e in events if str(e.get("level", "")).lower() in NOISY_LEVELS]
    if keep_log is None and not noisy:
        return
    if keep_log is None:
        handle, name = tempfile.mkstemp(prefix="bench-dirac-stack-", suffix=".log")
        os.close(handle)
        keep_log = Path(name)
    keep_log.write_bytes(log_path.read_bytes())
    print(f"\nstack log ({len(events)} records, {len(noisy)} warnings/errors) kept: {keep_log}")
    for event in noisy:
        if str(event.get("level", "")).lower() == "warning":
            continue  # counted in the report; the errors are what needs reading
        print(
            "  ---- "
            + " ".join(f"{k}={event[k]}" for k in ("timestamp", "level", "logger") if k in event)
        )
        for key, value in event.items():
            if key in ("timestamp", "level", "logger", "exception"):
                continue
            print(f"  {key}: {value}")
        if "exception" in event:
            print("  " + str(event["exception"]).replace("\n", "\n  "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20, help="POSTs in flight at once")
    parser.add_argument("--inline", action="store_true", help="direct jobs without a sandbox")
    parser.add_argument("--timeout", type=float, default=600, help="for all DIRAC ids")
    parser.add_argument(
        "--warmup", type=int, default=1, help="jobs through gridgate before the clock runs"
    )
    parser.add_argument(
        "--cleanup-timeout", type=float, default=120, help="for DIRAC to show them Deleted"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="the gateway on a fresh PostgreSQL database"
    )
    parser.add_argument("--env-file", type=Path, default=REPO / DEFAULT_ENV_FILE)
    parser.add_argument("--keep-log", type=Path, help="copy the stack's JSON log here")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
