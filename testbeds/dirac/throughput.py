"""How fast the testbed runs a parametric job; run with the DIRAC venv python (throughput.sh).

Usage: throughput.py [--user NAME] [--tasks N] [--sleep S] [--timeout S]

As the user (default alice), submits one parametric JDL of N short tasks (``Parameters = N``;
each task echoes its parameter and sleeps S seconds), polls ``getJobsStatus`` every 0.5 s
until every job is final, then prints submit -> first Running, first Done, all Done, and the
most jobs seen Running at once (from each job's logging records). Exit status 0: all Done.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from DIRAC.Core.Base.Script import Script

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--user", default="alice")
parser.add_argument("--tasks", type=int, default=19)
parser.add_argument("--sleep", type=float, default=1)
parser.add_argument("--timeout", type=float, default=900)
args = parser.parse_args()
sys.argv = sys.argv[:1]

state = Path(os.environ["GRIDGATE_DIRAC_STATE"])
os.environ["X509_USER_PROXY"] = str(state / "proxies" / args.user)
Script.parseCommandLine(ignoreErrors=True)

from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import (  # noqa: E402
    JobMonitoringClient,
)
from DIRAC.WorkloadManagementSystem.Client.WMSClient import WMSClient  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxies import ok  # noqa: E402

FINAL = {"Done", "Failed", "Killed", "Deleted", "Stalled"}
# DIRAC's JDL reader splits at every ";", even inside strings: none in the arguments.
# WMSClient (not JobManagerClient) also confirms the bulk submission of a parametric job.
JDL = f"""[
  JobName = "throughput_%n";
  JobGroup = "gridgate-throughput";
  Executable = "/bin/sh";
  Arguments = "-c 'echo task %s && sleep {args.sleep:g}'";
  Parameters = {args.tasks};
  ParameterStart = 1;
  ParameterStep = 1;
  CPUTime = 300;
  StdOutput = "std.out";
  StdError = "std.err";
  OutputSandbox = {{"std.out", "std.err"}};
]"""


def stamp(row: tuple) -> float:
    """A JobLoggingDB row's time (UTC date and time strings) as epoch seconds."""
    text = f"{row[3]} {row[4]}" if len(row) > 4 else str(row[3])
    return datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").timestamp()


def main() -> int:
    t0 = time.monotonic()
    ids = [int(i) for i in ok(WMSClient().submitJob(JDL), "submitJob")]
    t_submit = time.monotonic() - t0
    print(f"submitted {len(ids)} jobs ({ids[0]}..{ids[-1]}) in {t_submit:.2f} s", flush=True)
    monitoring = JobMonitoringClient()
    first_running = first_done = None
    states: dict[int, str] = {}
    while time.monotonic() - t0 < args.timeout:
        states = {
            int(k): v["Status"] for k, v in ok(monitoring.getJobsStatus(ids), "status").items()
        }
        now = time.monotonic() - t0
        if first_running is None and any(
            s in ("Running", "Completing", "Done") for s in states.values()
        ):
            first_running = now
        if first_done is None and "Done" in states.values():
            first_done = now
        if all(s in FINAL for s in states.values()):
            break
        time.sleep(0.5)
    total = time.monotonic() - t0
    counts: dict[str, int] = {}
    for s in states.values():
        counts[s] = counts.get(s, 0) + 1
    # concurrency from the JobWrapper's records: Running (Job Initialization) .. Done/Failed
    intervals = []
    for job in ids:
        rows = ok(monitoring.getJobLoggingInfo(job), "getJobLoggingInfo")
        start = [stamp(r) for r in rows if r[0] == "Running"]
        end = [stamp(r) for r in rows if r[0] in ("Completing", "Done", "Failed")]
        if start and end:
            intervals.append((min(start), max(end)))
    peak = max((sum(1 for a, b in intervals if a <= t < b) for t, _ in intervals), default=0)
    print(
        f"{args.tasks} tasks: first Running {first_running or 0:.1f} s, first Done "
        f"{first_done or 0:.1f} s, all final {total:.1f} s; {counts}; "
        f"peak Running at once {peak}",
        flush=True,
    )
    return 0 if counts.get("Done") == len(ids) else 1


sys.exit(main())
