"""End-to-end smoke test of the DIRAC testbed; run with the DIRAC venv python (smoke.sh does).

Usage: smoke.py [--user NAME] [--group GROUP] [--cert PEM --key PEM] [--timeout S]

As the user (default alice, cta_user): make a group proxy and upload a delegated one to the
ProxyManager (what ``dirac-proxy-init -g GROUP`` does), submit a hello job with
``Dirac().submitJob(Job())``, wait until the testbed's JobAgent has run it to Done, fetch the
output sandbox and check it. Prints the timings; exit status 0 means PASS.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from DIRAC.Core.Base.Script import Script

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--user", default="alice")
parser.add_argument("--group", help="DIRAC group (default: the user's, from the testbed)")
parser.add_argument("--cert", help="user certificate (default: the testbed's for --user)")
parser.add_argument("--key", help="user key (default: the testbed's for --user)")
parser.add_argument("--timeout", type=float, default=180)
args = parser.parse_args()
sys.argv = sys.argv[:1]  # DIRAC parses the command line too

state = Path(os.environ["GRIDGATE_DIRAC_STATE"])
user_dir = state / "users" / args.user
cert = args.cert or str(user_dir / "usercert.pem")
key = args.key or str(user_dir / "userkey.pem")
group = args.group or (user_dir / "group").read_text().strip()
work = Path(tempfile.mkdtemp(prefix=f"smoke-{args.user}-", dir=state / "client"))

t0 = time.monotonic()
# The Dirac API authenticates with the proxy file in X509_USER_PROXY, and so does DIRAC's first
# CS read in parseCommandLine: the proxy must exist before DIRAC initialises.
from proxies import group_proxy_pem, load_credentials, ok, upload_proxy, write_proxy  # noqa: E402

chain = load_credentials(cert, key)
proxy_pem = group_proxy_pem(chain, group)
proxy_file = work / "proxy.pem"
write_proxy(proxy_file, proxy_pem)
os.environ["X509_USER_PROXY"] = str(proxy_file)
t_proxy = time.monotonic() - t0

Script.parseCommandLine(ignoreErrors=True)

from DIRAC.Interfaces.API.Dirac import Dirac  # noqa: E402
from DIRAC.Interfaces.API.Job import Job  # noqa: E402
from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import (  # noqa: E402
    JobMonitoringClient,
)

timings: dict[str, float] = {"proxy": t_proxy, "DIRAC init": time.monotonic() - t0 - t_proxy}


def timed(name: str, start: float) -> float:
    now = time.monotonic()
    timings[name] = now - start
    return now


def main() -> int:
    t = time.monotonic()
    # what dirac-proxy-init does next: delegate a proxy to the ProxyManager, from which the
    # JobAgent takes the payload proxy to run the job as this user
    upload_proxy(chain, proxy_pem)
    t = timed("proxy upload", t)

    script = work / "hello.sh"
    script.write_text(
        '#!/bin/bash\necho "hello from DIRAC job $DIRACJOBID as $(id -un)" | tee hello.txt\n'
    )
    script.chmod(0o755)
    job = Job()
    job.setName(f"smoke-{args.user}")
    job.setJobGroup("gridgate-smoke")
    job.setExecutable(str(script))  # a local file: shipped in the input sandbox
    job.setOutputSandbox(["hello.txt", "std.out", "std.err"])
    job.setCPUTime(300)
    dirac = Dirac()
    job_id = int(ok(dirac.submitJob(job), "submitJob"))
    t_submitted = t = timed("submit", t)
    print(f"submitted job {job_id} as {args.user} ({group})", flush=True)

    monitoring = JobMonitoringClient()
    last = None
    status = "?"
    while time.monotonic() - t_submitted < args.timeout:
        status = ok(monitoring.getJobsStatus([job_id]), "getJobsStatus")[job_id]["Status"]
        if status != last:
            print(f"  [{time.monotonic() - t_submitted:5.1f} s] {status}", flush=True)
            last = status
        # Rescheduled: the JobAgent could not run it (no payload proxy...): report, do not wait
        if status in ("Done", "Failed", "Killed", "Deleted", "Stalled", "Rescheduled"):
            break
        time.sleep(0.5)
    t = timed("submit -> final status", t)
    if status != "Done":
        for row in ok(monitoring.getJobLoggingInfo(job_id), "getJobLoggingInfo"):
            print("   ", row)
        print(f"FAIL: job {job_id} ended {status}")
        return 1

    out = work / "out"
    ok(dirac.getOutputSandbox(job_id, outputDir=str(out)), "getOutputSandbox")
    timed("output sandbox", t)
    text = (out / str(job_id) / "hello.txt").read_text()
    print(f"  hello.txt: {text.strip()}")
    if f"hello from DIRAC job {job_id}" not in text:
        print("FAIL: unexpected output sandbox content")
        return 1
    timings["total"] = time.monotonic() - t0
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    print(f"PASS job {job_id} Done, output sandbox in {out / str(job_id)}")
    return 0


sys.exit(main())
