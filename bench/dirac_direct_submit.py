"""The DIRAC side of the DIRAC benchmarks: run with DIRAC's own Python, as a testbed user.

    X509_USER_PROXY=<proxy file> DIRAC_ROOT_PATH=<client root> \
        <dirac-venv>/bin/python bench/dirac_direct_submit.py COMMAND [options] < request.json

Commands (each reads an optional JSON request on stdin and prints one JSON answer on stdout;
DIRAC's own log lines go to stderr):

``submit``  N hello-world jobs one by one with the DIRAC API, as a user would:
            ``Dirac().submitJob(Job())`` in a loop, each job shipping a small script in its input
            sandbox (or, with ``--inline``, running ``echo`` with no sandbox at all). With
            ``--ban-site`` the jobs may never match that site, so they wait and never run.
``parametric`` the same N jobs as ONE parametric submission with the DIRAC API:
            ``Job.setParameterSequence`` over N values, one ``Dirac().submitJob`` (the script in
            one input sandbox shared by all N). DIRAC's own best path for N alike jobs.
``insert``  N jobs straight into the JobManager, as parametric JDLs of up to MaxParametricJobs
            each, without confirming the bulk submission: they stay "Submitting" (minor status
            "Bulk transaction confirmation"), so no optimizer or JobAgent ever sees them.
``delete``  DIRAC jobs given as ``{"ids": [...]}``: deleteJob (kill and delete) in chunks, then
            removeJob, so no row of them is left in JobDB or JobLoggingDB.
``find``    the DIRAC ids of one JobGroup (``--group``) or of several (``{"groups": [...]}``).
``history`` DIRAC's logging records of the jobs ``{"ids": [...]}`` (status, minor status,
            source, time), to show how a job got where it is.
"""

import argparse
import json
import os
import sys
import tempfile
import time


def _ok(result, what):
    if not result["OK"]:
        raise RuntimeError(f"{what}: {result['Message']}")
    return result["Value"]


def submit(args, request):
    from DIRAC.Interfaces.API.Dirac import Dirac
    from DIRAC.Interfaces.API.Job import Job

    workdir = tempfile.mkdtemp(prefix="bench-dirac-")
    script = os.path.join(workdir, "hello.sh")
    with open(script, "w") as handle:
        handle.write('#!/bin/sh\necho "Hello, ${1:-world}!" | tee hello.txt\n')
    os.chmod(script, 0o755)
    dirac = Dirac()
    ids, seconds, errors = [], [], []
    started = time.monotonic()
    for index in range(args.n):
        t0 = time.monotonic()
        # A fresh Job per submission, as a user's loop builds one per job.
        job = Job()
        job.setName(f"{args.group}.{index}")
        job.setJobGroup(args.group)
        if args.inline:
            job.setExecutable("echo", arguments="Hello, world!")  # not a local file: no sandbox
        else:
            job.setExecutable(script, arguments="world")  # shipped in the input sandbox
        job.setOutputSandbox(["hello.txt", "std.out", "std.err"])
        job.setCPUTime(600)
        if args.ban_site:
            job.setBannedSites([args.ban_site])
        result = dirac.submitJob(job)
        seconds.append(time.monotonic() - t0)
        if result["OK"]:
            ids.append(int(result["Value"]))
        else:
            errors.append(str(result["Message"]))
    elapsed = time.monotonic() - started
    os.unlink(script)
    os.rmdir(workdir)
    return {"ids": ids, "seconds": elapsed, "call_seconds": seconds, "errors": errors}


def parametric(args, request):
    from DIRAC.Interfaces.API.Dirac import Dirac
    from DIRAC.Interfaces.API.Job import Job

    workdir = tempfile.mkdtemp(prefix="bench-dirac-")
    script = os.path.join(workdir, "hello.sh")
    with open(script, "w") as handle:
        handle.write('#!/bin/sh\necho "Hello, ${1:-world}!" | tee hello.txt\n')
    os.chmod(script, 0o755)
    started = time.monotonic()
    job = Job()
    job.setName(f"{args.group}.%n")
    job.setJobGroup(args.group)
    job.setExecutable(script, arguments="world")
    job.setOutputSandbox(["hello.txt", "std.out", "std.err"])
    job.setCPUTime(600)
    # One value per job: DIRAC expands the one JDL into N jobs on the server.
    job.setParameterSequence("index", [str(i) for i in range(args.n)])
    if args.ban_site:
        job.setBannedSites([args.ban_site])
    result = Dirac().submitJob(job)
    elapsed = time.monotonic() - started
    os.unlink(script)
    os.rmdir(workdir)
    if not result["OK"]:
        return {"ids": [], "seconds": elapsed, "errors": [str(result["Message"])]}
    value = result["Value"]
    ids = [int(i) for i in (value if isinstance(value, list) else [value])]
    return {"ids": ids, "seconds": elapsed, "errors": []}


# DIRAC's JDL reader splits at every ";", even inside strings: none in the values.
INSERT_JDL = """[
  JobName = "{group}.%n";
  JobGroup = "{group}";
  Executable = "/bin/echo";
  Arguments = "Hello, %s!";
  Parameters = {n};
  ParameterStart = {start};
  ParameterStep = 1;
  CPUTime = 600;
  StdOutput = "std.out";
  StdError = "std.err";
  OutputSandbox = {{"std.out", "std.err"}};
]"""


def insert(args, request):
    from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient

    manager = JobManagerClient(timeout=600)
    limit = int(_ok(manager.getMaxParametricJobs(), "getMaxParametricJobs"))
    ids, chunks = [], []
    started = time.monotonic()
    for start in range(0, args.n, limit):
        size = min(limit, args.n - start)
        t0 = time.monotonic()
        # JobManagerClient.submitJob, not WMSClient.submitJob: the latter would go on to
        # confirmBulkSubmission, which hands the jobs to the optimizers.
        jdl = INSERT_JDL.format(group=args.group, n=size, start=start)
        chunk = _ok(manager.submitJob(jdl), "submitJob")
        chunks.append(time.monotonic() - t0)
        ids.extend(int(i) for i in chunk)
    return {
        "ids": ids,
        "seconds": time.monotonic() - started,
        "chunk_seconds": chunks,
        "max_parametric": limit,
    }


def delete(args, request):
    from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient

    manager = JobManagerClient(timeout=900)
    ids = [int(i) for i in request.get("ids", [])]
    failures = []
    timings = {"delete": 0.0, "remove": 0.0}
    for verb in ("delete", "remove"):
        t0 = time.monotonic()
        for start in range(0, len(ids), args.chunk):
            chunk = ids[start : start + args.chunk]
            call = manager.deleteJob if verb == "delete" else manager.removeJob
            result = call(chunk)
            if not result["OK"]:
                failures.append(f"{verb}Job: {result['Message']}")
        timings[verb] = time.monotonic() - t0
    return {"jobs": len(ids), "seconds": timings, "failures": failures[:20]}


def find(args, request):
    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient

    groups = request.get("groups") or [args.group]
    found = _ok(JobMonitoringClient().getJobs({"JobGroup": groups}), "getJobs")
    return {"ids": sorted(int(i) for i in found or [])}


def history(args, request):
    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient

    monitoring = JobMonitoringClient()
    records = {}
    for job_id in [int(i) for i in request.get("ids", [])][:10]:
        rows = _ok(monitoring.getJobLoggingInfo(job_id), "getJobLoggingInfo")
        records[str(job_id)] = [[str(v) for v in row] for row in rows]
    return {"history": records}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "command", choices=["submit", "parametric", "insert", "delete", "find", "history"]
    )
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--group", default="bench.dirac")
    parser.add_argument("--inline", action="store_true")
    parser.add_argument("--ban-site", default="")
    parser.add_argument("--chunk", type=int, default=500)
    args = parser.parse_args()
    request = json.loads(sys.stdin.read() or "{}")
    # Only our answer reaches stdout: DIRAC's logger and prints go to stderr.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.argv = sys.argv[:1]  # DIRAC parses the command line too

    from DIRAC.Core.Base.Script import Script

    Script.parseCommandLine(ignoreErrors=True)
    from DIRAC import version

    commands = {
        "submit": submit,
        "parametric": parametric,
        "insert": insert,
        "delete": delete,
        "find": find,
    }
    answer = {**commands, "history": history}[args.command](args, request)
    answer["dirac"] = version
    out.write(json.dumps(answer) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
