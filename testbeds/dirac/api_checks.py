"""Check the DIRAC client calls gridgate relies on, against the running testbed.

Run with the DIRAC venv python (api_checks.sh runs both modes):

  api_checks.py            client role: the Dirac API with alice's proxy file (X509_USER_PROXY),
                           then per-call in-memory proxies of bob in the same process
  api_checks.py --robot    robot role (DIRAC_ROOT_PATH = the testbed's robot/): no proxy file at
                           all; the process reads the CS as gridgate-robot (a registered host)
                           and acts for bob with an in-memory proxy, then with delegatedDN

Each check prints ``ok`` or ``FAIL`` and the exact call; exit status 0 means all passed.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from DIRAC.Core.Base.Script import Script

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--robot", action="store_true", help="no proxy file; in-memory proxies only")
parser.add_argument("--timeout", type=float, default=240)
args = parser.parse_args()
sys.argv = sys.argv[:1]

state = Path(os.environ["GRIDGATE_DIRAC_STATE"])
work = Path(tempfile.mkdtemp(prefix="api-checks-", dir=state / "client"))
RUN = uuid.uuid4().hex[:8]
FINAL = ("Done", "Failed", "Killed", "Deleted", "Stalled", "Rescheduled")

from proxies import group_proxy_pem, load_credentials, ok, upload_proxy, write_proxy  # noqa: E402


def user_chain(name: str) -> tuple[Any, str, str, str]:
    """(chain, group, DN, group proxy PEM) of a testbed user."""
    d = state / "users" / name
    chain = load_credentials(d / "usercert.pem", d / "userkey.pem")
    group = (d / "group").read_text().strip()
    return chain, group, (d / "dn").read_text().strip(), group_proxy_pem(chain, group)


alice_chain, alice_group, alice_dn, alice_pem = user_chain("alice")
bob_chain, bob_group, bob_dn, bob_pem = user_chain("bob")
if args.robot:
    # nothing on disk: a stray default proxy would hide a call that does not use the PEM
    os.environ["X509_USER_PROXY"] = str(work / "no-such-proxy")
else:
    write_proxy(work / "alice.pem", alice_pem)
    os.environ["X509_USER_PROXY"] = str(work / "alice.pem")

Script.parseCommandLine(ignoreErrors=True)

from DIRAC.Core.Base.Client import Client  # noqa: E402
from DIRAC.Core.DISET.TransferClient import TransferClient  # noqa: E402
from DIRAC.Core.Security.X509Chain import X509Chain  # noqa: E402
from DIRAC.Interfaces.API.Dirac import Dirac  # noqa: E402
from DIRAC.Interfaces.API.Job import Job  # noqa: E402
from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient  # noqa: E402
from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import (  # noqa: E402
    JobMonitoringClient,
)
from DIRAC.WorkloadManagementSystem.Client.SandboxStoreClient import (  # noqa: E402
    SandboxStoreClient,
)
from DIRAC.WorkloadManagementSystem.Client.WMSClient import WMSClient  # noqa: E402

failures: list[str] = []


def check(name: str, condition: bool, detail: object = "") -> None:
    print(f"{'ok  ' if condition else 'FAIL'} {name}  {detail}", flush=True)
    if not condition:
        failures.append(name)


def wait_final(monitoring: Any, ids: list[int], timeout: float) -> dict[int, str]:
    """Poll getJobsStatus (one call for all ids) until every job is final or timeout."""
    start = time.monotonic()
    statuses: dict[int, str] = {}
    while time.monotonic() - start < timeout:
        answer = ok(monitoring.getJobsStatus(ids), "getJobsStatus")
        statuses = {int(i): v["Status"] for i, v in answer.items()}
        if all(s in FINAL for s in statuses.values()):
            break
        time.sleep(1)
    return statuses


def hello_job(name: str, group: str, text: str = "hello") -> Job:
    job = Job()
    job.setName(name)
    job.setJobGroup(group)
    job.setExecutable("/bin/echo", arguments=text)  # not a local file: nothing to ship
    job.setCPUTime(300)
    return job


def unmatchable_job(name: str, group: str) -> Job:
    """Stays Waiting: no JobAgent offers this tag (a job to kill or delete before it runs)."""
    job = hello_job(name, group)
    job.setTag(["gridgate-never-matched"])
    return job


# ------------------------------------------------------------------------------------------
def dirac_api_checks() -> None:
    """The Dirac API with the process's proxy file (alice)."""
    dirac = Dirac()
    monitoring = JobMonitoringClient()
    group = f"api-checks-{RUN}"
    t = time.monotonic()
    done_id = int(ok(dirac.submitJob(hello_job(f"{group}-hello", group, "peek me")), "submit"))
    kill_id = int(ok(dirac.submitJob(unmatchable_job(f"{group}-kill", group)), "submit"))
    delete_id = int(ok(dirac.submitJob(unmatchable_job(f"{group}-delete", group)), "submit"))
    check("Dirac().submitJob(Job()) x3", True, f"{done_id} {kill_id} {delete_id}")

    # parametric: one JDL, one job per parameter; %n = index, %s = value
    param = Job()
    param.setName(f"{group}-param-%n")
    param.setJobGroup(group)
    param.setExecutable("/bin/echo", arguments="param %s")
    param.setParameterSequence("args", ["a", "b", "c"], addToWorkflow=True)
    param.setCPUTime(300)
    param_ids = [int(i) for i in ok(dirac.submitJob(param), "parametric submit")]
    check("Job.setParameterSequence('args', [a,b,c]) -> submitJob", len(param_ids) == 3, param_ids)
    print(f"     submitted 6 jobs in {time.monotonic() - t:.1f} s", flush=True)

    # find jobs by JobGroup / JobName (JobMonitoring returns ids as strings)
    by_group = sorted(int(i) for i in ok(monitoring.getJobs({"JobGroup": group}), "getJobs"))
    expected = sorted([done_id, kill_id, delete_id, *param_ids])
    check("JobMonitoringClient().getJobs({'JobGroup': g})", by_group == expected, by_group)
    by_name = ok(monitoring.getJobs({"JobName": f"{group}-hello"}), "getJobs")
    check("getJobs({'JobName': n})", [int(i) for i in by_name] == [done_id], by_name)
    mine = ok(monitoring.getJobs({"JobGroup": group, "Owner": "alice"}), "getJobs")
    check("getJobs({'JobGroup': g, 'Owner': 'alice'})", len(mine) == 6, len(mine))
    names = ok(monitoring.getJobs({"JobName": [f"{group}-param-0", f"{group}-param-2"]}), "getJobs")
    check("getJobs({'JobName': [n1, n2]}) (a list is an IN)", len(names) == 2, names)

    # bulk status, one call each
    status = ok(monitoring.getJobsStatus(expected), "getJobsStatus")
    check("getJobsStatus(ids)", set(status) == set(expected), status[done_id])
    minor = ok(monitoring.getJobsMinorStatus(expected), "getJobsMinorStatus")
    check("getJobsMinorStatus(ids)", set(minor) == set(expected), minor[done_id])
    states = ok(monitoring.getJobsStates(expected), "getJobsStates")
    check(
        "getJobsStates(ids) (Status, MinorStatus, ApplicationStatus)",
        len(states) == 6,
        states[kill_id],
    )
    attrs = ["Status", "MinorStatus", "JobName", "JobGroup", "Owner", "OwnerGroup", "Site"]
    params = ok(monitoring.getJobsParameters(expected, attrs), "getJobsParameters")
    check(
        "getJobsParameters(ids, [attributes])",
        params[done_id]["JobGroup"] == group and params[done_id]["Owner"] == "alice",
        params[done_id],
    )

    # kill and delete jobs that never ran; a kill and a delete of the same job need >= 1 s
    # between them (the JobCommands key has one-second resolution)
    check("Dirac().killJob(id)", ok(dirac.killJob(kill_id), "killJob") is not None, kill_id)
    check(
        "Dirac().deleteJob(id)", ok(dirac.deleteJob(delete_id), "deleteJob") is not None, delete_id
    )
    time.sleep(1.5)
    after = ok(monitoring.getJobsStatus([kill_id, delete_id]), "getJobsStatus")
    check("killed job is Killed", after[kill_id]["Status"] == "Killed", after[kill_id])
    check("deleted job is Deleted", after[delete_id]["Status"] == "Deleted", after[delete_id])
    ok(dirac.deleteJob(kill_id), "deleteJob of the killed job")

    final = wait_final(monitoring, [done_id, *param_ids], args.timeout)
    check("the 4 runnable jobs reach Done", set(final.values()) == {"Done"}, final)
    print(f"     all Done {time.monotonic() - t:.1f} s after the first submission", flush=True)
    peek = ok(dirac.peekJob(done_id), "peekJob")
    check("Dirac().peekJob(id) (StandardOutput parameter)", "peek me" in peek, repr(peek[:60]))
    out = work / "out"
    ok(dirac.getOutputSandbox(done_id, outputDir=str(out)), "getOutputSandbox")
    std = (out / str(done_id) / "std.out").read_text()
    check("Dirac().getOutputSandbox(id, outputDir=...)", "peek me" in std, std.strip()[:40])


# ------------------------------------------------------------------------------------------
def in_memory_checks(pem: str, owner: str) -> None:
    """Every call authenticated by a proxy PEM string: no file, whatever the process default."""
    creds: dict[str, Any] = {"useCertificates": False, "proxyString": pem}
    # the proxy may also come in as a chain: X509Chain().loadProxyFromString(pem)
    chain = X509Chain()
    ok(chain.loadProxyFromString(pem), "loadProxyFromString")
    check(
        "X509Chain().loadProxyFromString(pem)",
        ok(chain.getDIRACGroup(), "group") == bob_group,
        ok(chain.getCredentials(), "credentials")["DN"],
    )
    upload_proxy(bob_chain, pem)  # Client(url=ProxyManager, **creds).requestDelegationUpload...
    check("proxy upload with proxyString (delegation)", True)

    group = f"api-inmem-{RUN}"
    job = hello_job(f"{group}-hello", group, "in memory")
    xml = io.StringIO(job._toXML())  # what Dirac().submitJob sends: the workflow as a sandbox
    jdl = job._toJDL(jobDescriptionObject=xml)
    wms = WMSClient(
        jobManagerClient=JobManagerClient(**creds),
        sbRPCClient=Client(url="WorkloadManagement/SandboxStore", **creds),
        sbTransferClient=TransferClient("WorkloadManagement/SandboxStore", **creds),
    )
    job_id = int(ok(wms.submitJob(jdl, xml), "WMSClient.submitJob"))
    monitoring = JobMonitoringClient(**creds)
    attrs = ok(monitoring.getJobsParameters([job_id], ["Owner", "OwnerGroup"]), "params")[job_id]
    check(
        "WMSClient(jobManagerClient=JobManagerClient(proxyString=pem), ...).submitJob(jdl, xml)",
        attrs == {"Owner": owner, "OwnerGroup": bob_group},
        f"job {job_id} {attrs}",
    )
    final = wait_final(monitoring, [job_id], args.timeout)
    check(
        "JobMonitoringClient(proxyString=pem).getJobsStatus -> Done", final[job_id] == "Done", final
    )
    # SandboxStoreClient(proxyString=...).downloadSandboxForJob would fetch the file through a
    # StorageElement (DIP plugin) whose TransferClient takes the process's default proxy, not
    # the PEM: the SandboxStore then answers "No sandbox matches the requirements" (or hands
    # out the default identity's sandbox). Ask for the location, then transfer with the PEM.
    sandboxes = ok(
        Client(url="WorkloadManagement/SandboxStore", **creds).getSandboxesAssignedToEntity(
            f"Job:{job_id}"
        ),
        "getSandboxesAssignedToEntity",
    )
    pfn = sandboxes["Output"][-1].split("|", 1)[1]  # "SB:ProductionSandboxSE|/SandBox/..."
    buffer = io.BytesIO()
    ok(
        TransferClient("WorkloadManagement/SandboxStore", **creds).receiveFile(buffer, pfn),
        "receiveFile",
    )
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as tar:
        members = tar.getnames()
        std_out = tar.extractfile("std.out")
        text = std_out.read().decode() if std_out else ""
    direct = SandboxStoreClient(**creds).downloadSandboxForJob(job_id, "Output", inMemory=True)
    print(
        f"     (downloadSandboxForJob with the PEM: OK={direct['OK']} {direct.get('Message', '')})"
    )
    check(
        "getSandboxesAssignedToEntity('Job:<id>') + TransferClient(proxyString).receiveFile(BytesIO)",
        "in memory" in text,
        f"{len(buffer.getvalue())} bytes of tar: {members}",
    )
    kill_job = unmatchable_job(f"{group}-kill", group)
    kill_xml = io.StringIO(kill_job._toXML())
    kill_id = int(
        ok(wms.submitJob(kill_job._toJDL(jobDescriptionObject=kill_xml), kill_xml), "submit")
    )
    ok(wms.killJob([kill_id]), "killJob")
    time.sleep(1.5)
    ok(wms.deleteJob([kill_id]), "deleteJob")
    status = ok(monitoring.getJobsStatus([kill_id]), "status")[kill_id]["Status"]
    check("WMSClient(jobManagerClient=...).killJob / deleteJob", status == "Deleted", status)


def delegated_checks() -> None:
    """The robot (TrustedHost) acts for bob without bob's proxy, as DIRAC's web portal does.
    The JobAgent still needs bob's proxy in the ProxyManager to run the job."""
    creds = {"useCertificates": True, "delegatedDN": bob_dn, "delegatedGroup": bob_group}
    group = f"api-delegated-{RUN}"
    job = hello_job(f"{group}-hello", group, "delegated")
    xml = io.StringIO(job._toXML())
    jdl = job._toJDL(jobDescriptionObject=xml)
    wms = WMSClient(useCertificates=True, delegatedDN=bob_dn, delegatedGroup=bob_group)
    job_id = int(ok(wms.submitJob(jdl, xml), "delegated submitJob"))
    monitoring = JobMonitoringClient(**creds)
    attrs = ok(monitoring.getJobsParameters([job_id], ["Owner", "OwnerGroup"]), "params")[job_id]
    check(
        "WMSClient(useCertificates=True, delegatedDN=dn, delegatedGroup=g).submitJob",
        attrs["Owner"] == "bob",
        f"job {job_id} {attrs}",
    )
    final = wait_final(monitoring, [job_id], args.timeout)
    check("delegated job Done", final[job_id] == "Done", final)


def timed(name: str, fn: Callable[[], None]) -> None:
    t = time.monotonic()
    print(f"--- {name}", flush=True)
    try:
        fn()
    except RuntimeError as e:
        check(name, False, e)
    print(f"--- {name}: {time.monotonic() - t:.1f} s", flush=True)


if args.robot:
    timed(
        "in-memory proxy, robot process (no proxy file)", lambda: in_memory_checks(bob_pem, "bob")
    )
    timed("delegated identity (robot is a TrustedHost)", delegated_checks)
else:
    timed("Dirac API with a proxy file (alice)", dirac_api_checks)
    timed("in-memory proxy of bob in alice's process", lambda: in_memory_checks(bob_pem, "bob"))
print(f"{'PASS' if not failures else 'FAIL'}: {len(failures)} failed {failures}")
sys.exit(1 if failures else 0)
