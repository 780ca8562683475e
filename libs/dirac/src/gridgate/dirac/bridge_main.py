"""The DIRAC side of the bridge: run with DIRAC's own Python, standard library plus DIRAC.

    <dirac-venv>/bin/python bridge_main.py [DIRAC command-line options such as -o, --cfg]

It reads one JSON request per line on stdin and writes one JSON answer per line on stdout:
``{"id": 1, "op": "status", "args": {...}, "proxy": "<PEM>" | null}`` ->
``{"id": 1, "ok": true, "value": ...}`` or ``{"id": 1, "ok": false, "error": "...",
"transient": bool}``. A request with a proxy is made with that proxy held in memory
(``proxyString``), never written to disk; one without uses the service's own certificate.
Requests run one at a time: each process serves one request, so identities never mix.
"""

import json
import os
import sys
import tempfile
import traceback

PROTOCOL_VERSION = 1
FILE_TIME = 1577836800
"""2020-01-01: the mtime of every sandbox file we write. The same files then make the same
tar, which DIRAC's SandboxStore knows by its hash and neither receives nor stores again."""


def _initialise():
    from DIRAC.Core.Base.Script import Script

    # DIRAC parses sys.argv itself: configuration options (-o, --cfg) come from our argv.
    Script.parseCommandLine(ignoreErrors=True)


def _value(result, what):
    if not result["OK"]:
        raise BridgeError(f"{what}: {result['Message']}")
    return result.get("Value")


class BridgeError(Exception):
    pass


def _client(url, proxy, timeout=120):
    from DIRAC.Core.Base.Client import Client

    if proxy:
        return Client(url=url, useCertificates=False, proxyString=proxy, timeout=timeout)
    return Client(url=url, useCertificates=True, timeout=timeout)


def _transfer(url, proxy):
    from DIRAC.Core.DISET.TransferClient import TransferClient

    if proxy:
        return TransferClient(url, useCertificates=False, proxyString=proxy)
    return TransferClient(url, useCertificates=True)


def op_ping(args, proxy):
    from DIRAC import version

    return {"dirac": version, "protocol": PROTOCOL_VERSION}


def op_submit(args, proxy):
    """Submit one JDL (parametric or not) with its input sandbox files given inline.

    ``files`` maps names to text, ``binary_files`` names to base64.
    """
    import base64

    from DIRAC.WorkloadManagementSystem.Client.WMSClient import WMSClient

    workdir = tempfile.mkdtemp(prefix="gridgate-submit-")
    try:
        contents = {name: text.encode("utf-8") for name, text in args.get("files", {}).items()}
        for name, encoded in args.get("binary_files", {}).items():
            contents[name] = base64.b64decode(encoded)
        paths = {}
        for name, content in contents.items():
            path = os.path.join(workdir, os.path.basename(name))
            with open(path, "wb") as handle:
                handle.write(content)
            os.chmod(path, 0o700)  # the wrapper must be executable; only by us
            os.utime(path, (FILE_TIME, FILE_TIME))
            paths[name] = path
        # The input sandbox names files by base name: point it at our copies. Only that line:
        # the Executable keeps its base name, which is where the sandbox lands on the node.
        lines = []
        for line in args["jdl"].splitlines():
            if line.strip().startswith("InputSandbox"):
                for name, path in paths.items():
                    line = line.replace(f'"{name}"', f'"{path}"')
            lines.append(line)
        jdl = "\n".join(lines)
        client = WMSClient(
            jobManagerClient=_client("WorkloadManagement/JobManager", proxy),
            sbRPCClient=_client("WorkloadManagement/SandboxStore", proxy),
            sbTransferClient=_transfer("WorkloadManagement/SandboxStore", proxy),
        )
        ids = _value(client.submitJob(jdl), "submitJob")
        return ids if isinstance(ids, list) else [ids]
    finally:
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)


def op_upload_sandboxes(args, proxy):
    """Upload each set of files (``sandboxes``: a list of name -> text) as a sandbox of its own.

    Returns their ``SB:`` locations in order. A parametric job names one per DIRAC job
    (``%(sandbox)s``), so that each receives its own files and no other job's. A few uploads
    run at once (``threads``): each is mostly waiting on a connection's handshake.
    """
    from concurrent.futures import ThreadPoolExecutor

    from DIRAC.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient

    def upload(files):
        store = SandboxStoreClient(
            rpcClient=_client("WorkloadManagement/SandboxStore", proxy),
            transferClient=_transfer("WorkloadManagement/SandboxStore", proxy),
        )
        workdir = tempfile.mkdtemp(prefix="gridgate-slot-")
        try:
            paths = []
            for name, text in files.items():
                path = os.path.join(workdir, os.path.basename(name))
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(text)
                paths.append(path)
            return _value(store.uploadFilesAsSandbox(paths), "uploadFilesAsSandbox")
        finally:
            for name in os.listdir(workdir):
                os.unlink(os.path.join(workdir, name))
            os.rmdir(workdir)

    threads = max(1, min(int(args.get("threads", 4)), 16))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(upload, args["sandboxes"]))


def op_find(args, proxy):
    """DIRAC job ids matching conditions, e.g. {"JobGroup": "gridgate.<job id>"}."""
    ids = _value(
        _client("WorkloadManagement/JobMonitoring", proxy).getJobs(args["conditions"]), "getJobs"
    )
    return sorted(int(i) for i in ids)


def op_find_tasks(args, proxy):
    """DIRAC jobs of several JobGroups at once: {dirac id: [JobGroup, JobName]}."""
    groups = list(args["groups"])
    if not groups:
        return {}
    monitoring = _client("WorkloadManagement/JobMonitoring", proxy)
    ids = _value(monitoring.getJobs({"JobGroup": groups}), "getJobs")
    if not ids:
        return {}
    names = _value(
        monitoring.getJobsParameters([int(i) for i in ids], ["JobGroup", "JobName"]),
        "getJobsParameters",
    )
    return {str(k): [v.get("JobGroup", ""), v.get("JobName", "")] for k, v in names.items()}


def op_max_parametric(args, proxy):
    """How many jobs one parametric submission may hold at this JobManager."""
    manager = _client("WorkloadManagement/JobManager", proxy)
    return int(_value(manager.getMaxParametricJobs(), "getMaxParametricJobs"))


STATUS_ATTRIBUTES = ("Status", "MinorStatus", "ApplicationStatus", "StartExecTime", "EndExecTime")


def op_status(args, proxy):
    """Status, minor status and application status of many jobs in one call."""
    ids = [int(i) for i in args["ids"]]
    if not ids:
        return {}
    monitoring = _client("WorkloadManagement/JobMonitoring", proxy)
    # The three statuses and the execution times of every job, in one call.
    attributes = _value(
        monitoring.getJobsParameters(ids, list(STATUS_ATTRIBUTES)), "getJobsParameters"
    )
    return {
        str(k): {a: str(v.get(a, "")) for a in STATUS_ATTRIBUTES} for k, v in attributes.items()
    }


def op_attributes(args, proxy):
    """Named JobDB attributes (Owner, OwnerGroup, JobName...) of many jobs in one call."""
    ids = [int(i) for i in args["ids"]]
    if not ids:
        return {}
    monitoring = _client("WorkloadManagement/JobMonitoring", proxy)
    names = list(args["names"])
    found = _value(monitoring.getJobsParameters(ids, names), "getJobsParameters")
    return {str(k): {n: str(v.get(n, "")) for n in names} for k, v in found.items()}


def op_history(args, proxy):
    """A job's logging records, oldest first: [status, minor status, application status,
    time, source]."""
    monitoring = _client("WorkloadManagement/JobMonitoring", proxy)
    records = _value(monitoring.getJobLoggingInfo(int(args["id"])), "getJobLoggingInfo")
    return [[str(field) for field in record] for record in records]


def op_kill(args, proxy):
    manager = _client("WorkloadManagement/JobManager", proxy)
    return _value(manager.killJob([int(i) for i in args["ids"]]), "killJob")


def op_delete(args, proxy):
    manager = _client("WorkloadManagement/JobManager", proxy)
    return _value(manager.deleteJob([int(i) for i in args["ids"]]), "deleteJob")


def op_peek(args, proxy):
    monitoring = _client("WorkloadManagement/JobMonitoring", proxy)
    value = _value(monitoring.getJobParameter(int(args["id"]), "StandardOutput"), "getJobParameter")
    return (value or {}).get("StandardOutput", "")


def op_output(args, proxy):
    """Download a job's output sandbox and unpack it into a directory; return the names.

    SandboxStoreClient.downloadSandboxForJob would fetch through a storage plugin that uses
    the process's default identity, not the given proxy: ask for the sandbox's location, then
    transfer it with the proxy itself.
    """
    import io
    import tarfile

    job = int(args["id"])
    sandboxes = _value(
        _client("WorkloadManagement/SandboxStore", proxy).getSandboxesAssignedToEntity(
            f"Job:{job}"
        ),
        "getSandboxesAssignedToEntity",
    )
    if not sandboxes.get("Output"):
        return []  # a job killed or failed before its end uploads none
    location = sandboxes["Output"][-1].split("|", 1)[1]  # "SB:<SE>|/SandBox/..."
    buffer = io.BytesIO()
    _value(
        _transfer("WorkloadManagement/SandboxStore", proxy).receiveFile(buffer, location),
        "receiveFile",
    )
    destination = os.path.realpath(args["destination"])
    os.makedirs(destination, exist_ok=True)
    names = []
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as archive:
        for member in archive.getmembers():
            target = os.path.realpath(os.path.join(destination, member.name))
            # Only plain files, and only inside the destination: a sandbox is untrusted input.
            if not member.isfile() or not target.startswith(destination + os.sep):
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            source = archive.extractfile(member)
            if source is None:
                continue
            with open(target, "wb") as handle:
                handle.write(source.read())
            names.append(os.path.relpath(target, destination))
    return sorted(names)


def op_upload_proxy(args, proxy):
    """Delegate a group-less proxy of the given chain to the ProxyManager (so jobs can run)."""
    from DIRAC.Core.Security.X509Chain import X509Chain

    chain = X509Chain()
    _value(chain.loadProxyFromString(proxy), "load proxy")
    manager = _client("Framework/ProxyManager", proxy)
    request = _value(manager.requestDelegationUpload(), "requestDelegationUpload")
    left = int(_value(chain.getRemainingSecs(), "remaining")) - 60
    lifetime = min(int(args.get("lifetime_s", left)), left)
    delegated = _value(
        chain.generateChainFromRequestString(request["request"], lifetime=lifetime), "delegate"
    )
    _value(manager.completeDelegationUpload(request["id"], delegated), "completeDelegationUpload")
    return lifetime


def op_chain_info(args, proxy):
    """What DIRAC itself reads from a proxy chain (identity, group, proxyness)."""
    from DIRAC.Core.Security.X509Chain import X509Chain

    chain = X509Chain()
    _value(chain.loadProxyFromString(args["pem"]), "load proxy")
    keys = ("identity", "subject", "group", "isProxy", "isLimitedProxy", "secondsLeft")
    info = _value(
        chain.getCredentials(ignoreDefault=True, withRegistryInfo=False), "getCredentials"
    )
    answer = {key: info.get(key) for key in keys}
    # With the registry: is the DN a known user, and the group one of theirs?
    registered = chain.getCredentials(ignoreDefault=True)
    if registered["OK"]:
        answer["username"] = registered["Value"].get("username")
        answer["validGroup"] = registered["Value"].get("validGroup", False)
    return answer


def op_download_proxy(args, proxy):
    """The dirac-proxymanager provider: a user's proxy for a group, from the ProxyManager.

    The caller (our robot) needs FullDelegation. getProxy is asked directly, not through
    ProxyManagerClient.downloadProxy, which would keep each proxy in this long-lived process
    and hand it out again. The ProxyManager delegates up to 1.5 x the lifetime asked; one more
    proxy level cut to ``lifetime_s`` makes the proxy last what was asked. The answer holds
    the private key: it only goes back over the pipe.
    """
    from DIRAC.Core.Security.X509Chain import X509Chain
    from DIRAC.Core.Security.X509Request import X509Request

    lifetime = int(args["lifetime_s"])
    request = X509Request()
    request.generateProxyRequest()
    delegated = _value(
        _client("Framework/ProxyManager", proxy).getProxy(
            args["dn"], args["group"], _value(request.dumpRequest(), "proxy request"), lifetime
        ),
        "getProxy",
    )
    chain = X509Chain(keyObj=request.getPKey())
    _value(chain.loadChainFromString(delegated), "load proxy")
    if int(_value(chain.getRemainingSecs(), "remaining")) > lifetime + 60:
        return _value(chain.generateProxyToString(lifetime), "proxy of the asked lifetime")
    return _value(chain.dumpAllToString(), "dump proxy")


def op_stored_proxy_left(args, proxy):
    """Seconds left on the longest proxy the ProxyManager keeps that can serve the group for
    one of the DNs (0: none). A clean (group-less) proxy serves every group of its DN.

    Other users' entries need ProxyManagement: without it the ProxyManager silently shows
    the caller only its own (none), so the robot's properties are checked first.
    """
    import datetime

    if not proxy:
        _require_own_property("ProxyManagement")
    dns = [str(dn) for dn in args["dns"]]
    contents = _value(
        _client("Framework/ProxyManager", proxy).getContents({"UserDN": dns}, [], 0, 0),
        "getContents",
    )
    names = list(contents["ParameterNames"])
    dn_at, group_at = names.index("UserDN"), names.index("UserGroup")
    expiry_at = names.index("ExpirationTime")
    now = datetime.datetime.utcnow()
    left = 0
    for row in contents["Records"]:
        if row[dn_at] in dns and row[group_at] in ("", args["group"]):
            left = max(left, int((row[expiry_at] - now).total_seconds()))
    return left


def op_user_dn(args, proxy):
    """The DIRAC user whose Registry ``ID`` option holds an IAM ``sub``, with their DNs and
    groups; null when no user has it."""
    from DIRAC.ConfigurationSystem.Client.Helpers import Registry

    sub = str(args.get("sub") or "").strip()
    if not sub:
        return None
    users = Registry.getAllUsers()
    if not users:
        # No user at all: the CS was never read (DIRAC was down when we started), not "unknown".
        raise BridgeError("the DIRAC configuration is unavailable: the Registry has no users")
    found = Registry.getUsernameForID(sub, users)
    if not found["OK"]:
        return None
    user = found["Value"]
    return {
        "user": user,
        "dns": _value(Registry.getDNForUsername(user), "DNs of user"),
        "groups": sorted(_value(Registry.getGroupsForUser(user), "groups of user")),
    }


def _require_own_property(name):
    """Fail unless this process's own certificate (the robot) has a DIRAC property. Read
    each time (a local file and the cached CS): a property granted later counts at once."""
    from DIRAC.Core.Security import Locations
    from DIRAC.Core.Security.X509Chain import X509Chain

    certificate = Locations.getHostCertificateAndKeyLocation()
    if not certificate:
        raise BridgeError("this DIRAC client has no certificate of its own")
    chain = X509Chain()
    _value(chain.loadChainFromFile(certificate[0]), "load own certificate")
    credentials = _value(chain.getCredentials(), "own credentials")
    # a host's properties come as one "A, B" string
    listed = credentials.get("groupProperties") or credentials.get("properties") or []
    if isinstance(listed, str):
        listed = [p.strip() for p in listed.split(",") if p.strip()]
    if name not in listed:
        who = credentials.get("hostname") or credentials.get("username")
        raise BridgeError(f"{who} lacks the DIRAC property {name} (has: {', '.join(listed)})")


OPS = {name[3:]: fn for name, fn in globals().items() if name.startswith("op_")}
TRANSIENT_HINTS = (
    "timeout",
    "connection",
    "connected",
    "unavailable",
    "refused",
    "peer closed",
    "transport",
)


def main():
    # Only answers may reach our stdout: DIRAC's logger and prints go to stderr instead.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _initialise()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        answer = {"id": request.get("id")}
        try:
            operation = OPS[request["op"]]
            answer.update(ok=True, value=operation(request.get("args", {}), request.get("proxy")))
        except Exception as exc:  # every failure becomes an answer, never a dead bridge
            message = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
            answer.update(
                ok=False,
                error=message,
                transient=any(h in message.lower() for h in TRANSIENT_HINTS),
            )
        out.write(json.dumps(answer, default=str) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
