"""What DIRAC reports for a failing, a killed and a chatty job; run with the DIRAC venv python
(outcomes.sh). Research, not a test: it prints what it sees.

Usage: outcomes.py [--user NAME]

As the user (default alice) it submits three jobs:

- ``fail``: prints a line and exits with status 3;
- ``chatty``: prints ``tick <n>`` every second for 40 s, then exits 0;
- ``victim``: sleeps 120 s; killed once it runs;
- ``reporter``: sets its own ApplicationStatus ("task 1 exited with 2") and exits 2.

While ``chatty`` runs, it reads ``getJobParameter(id, "StandardOutput")`` every second as
gridgate's robot would (the robot's own host certificate, no proxy) and prints every change
with the time since the job started Running. For each job at the end: getJobsStates
(Status, MinorStatus, ApplicationStatus), every job parameter (getJobParameters) and the
logging records. Needs the testbed's robot root (GRIDGATE_DIRAC_ROBOT_ROOT).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# DIRAC reads its root at import: the process reads the CS as the robot (its host
# certificate); the user's calls carry the user's proxy in memory
os.environ["DIRAC_ROOT_PATH"] = os.environ["DIRAC"] = os.environ["GRIDGATE_DIRAC_ROBOT_ROOT"]
from DIRAC.Core.Base.Script import Script

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--user", default="alice")
args = parser.parse_args()
sys.argv = sys.argv[:1]

state = Path(os.environ["GRIDGATE_DIRAC_STATE"])
Script.parseCommandLine(ignoreErrors=True)

from DIRAC.Core.Base.Client import Client  # noqa: E402
from DIRAC.Core.DISET.TransferClient import TransferClient  # noqa: E402
from DIRAC.WorkloadManagementSystem.Client.WMSClient import WMSClient  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxies import ok  # noqa: E402

user_proxy = (state / "proxies" / args.user).read_text()
as_user = {"useCertificates": False, "proxyString": user_proxy}
wms = WMSClient(
    jobManagerClient=Client(url="WorkloadManagement/JobManager", **as_user),
    sbRPCClient=Client(url="WorkloadManagement/SandboxStore", **as_user),
    sbTransferClient=TransferClient("WorkloadManagement/SandboxStore", **as_user),
)
manager = Client(url="WorkloadManagement/JobManager", **as_user)
# the robot: its host certificate (UseServerCertificate in the robot root)
robot = Client(url="WorkloadManagement/JobMonitoring", useCertificates=True)

# shipped in the input sandbox: DIRAC's JDL reader splits at every ";", even in strings
SCRIPTS = {
    "fail": "#!/bin/bash\necho about to fail\nexit 3\n",
    "chatty": "#!/bin/bash\nfor i in $(seq 1 40); do echo tick $i; sleep 1; done\n",
    "victim": "#!/bin/bash\necho sleeping\nsleep 120\n",
    # the payload reports its own exit code as ApplicationStatus (JobReport, with the job's
    # payload proxy and DIRAC's python from the job environment), then fails with it
    "reporter": (
        "#!/bin/bash\n(exit 2)\ncode=$?\n"
        "python3 -c 'import os, sys\n"
        "from DIRAC.Core.Base.Script import Script\n"
        "Script.parseCommandLine(ignoreErrors=True)\n"
        "from DIRAC.WorkloadManagementSystem.Client.JobReport import JobReport\n"
        'print(JobReport(int(os.environ["JOBID"])).setApplicationStatus(sys.argv[1]))\' '
        '"task 1 exited with $code"\nexit $code\n'
    ),
}
WORK = Path(tempfile.mkdtemp(prefix="outcomes-"))


def submit(name: str) -> int:
    script = WORK / f"{name}.sh"
    script.write_text(SCRIPTS[name])
    script.chmod(0o755)
    jdl = f"""[
  JobName = "outcome_{name}";
  JobGroup = "gridgate-outcomes";
  Executable = "{name}.sh";
  InputSandbox = {{"{script}"}};
  CPUTime = 300;
  StdOutput = "std.out";
  StdError = "std.err";
  OutputSandbox = {{"std.out", "std.err"}};
]"""
    return int(ok(wms.submitJob(jdl), f"submit {name}"))


def states(ids: list[int]) -> dict[int, dict[str, str]]:
    return {int(k): v for k, v in ok(robot.getJobsStates(ids), "getJobsStates").items()}


def wait_for(ids: list[int], wanted: set[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s["Status"] in wanted for s in states(ids).values()):
            return
        time.sleep(0.5)
    raise RuntimeError(f"jobs {ids} not in {wanted} after {timeout} s: {states(ids)}")


def report(name: str, job: int) -> None:
    print(f"\n=== {name} (job {job})")
    print("getJobsStates:", states([job])[job])
    parameters = ok(robot.getJobParameters(job), "getJobParameters").get(job, {})
    for key in sorted(parameters):
        value = str(parameters[key])
        print(f"  param {key!r}: {value if len(value) < 300 else value[:300] + '...'!r}")
    for row in ok(robot.getJobLoggingInfo(job), "getJobLoggingInfo"):
        print("  log", row)


def main() -> int:
    jobs = {name: submit(name) for name in SCRIPTS}
    print("submitted", jobs, flush=True)

    # StandardOutput while the chatty job runs, as the robot sees it
    chatty = jobs["chatty"]
    wait_for([chatty], {"Running", "Completing", "Done", "Failed"})
    started = time.monotonic()
    last = None
    while states([chatty])[chatty]["Status"] == "Running":
        value = ok(robot.getJobParameter(chatty, "StandardOutput"), "getJobParameter")
        text = (value or {}).get("StandardOutput")
        if text != last:
            ticks = [line for line in (text or "").splitlines() if line.startswith("tick")]
            print(
                f"  [{time.monotonic() - started:5.1f} s] StandardOutput changed: "
                f"{len(ticks)} tick lines, last {ticks[-1] if ticks else None!r}",
                flush=True,
            )
            last = text
        time.sleep(1)

    victim = jobs["victim"]
    wait_for([victim], {"Running"})
    time.sleep(3)
    print("kill:", ok(manager.killJob([victim]), "killJob"), flush=True)
    killed_at = time.monotonic()
    seen = None
    while time.monotonic() - killed_at < 60:
        now = states([victim])[victim]
        if now != seen:
            print(f"  [{time.monotonic() - killed_at:5.1f} s after killJob] {now}", flush=True)
            seen = now
        time.sleep(0.3)
    wait_for(list(jobs.values()), {"Done", "Failed", "Killed"})
    time.sleep(3)  # the job wrapper of the killed job may report after the kill
    for name, job in jobs.items():
        report(name, job)
    return 0


sys.exit(main())
