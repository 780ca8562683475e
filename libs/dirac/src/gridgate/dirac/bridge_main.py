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
    """Submit one JDL (parametric or not) with its input sandbox files given inline."""
    from DIRAC.WorkloadManagementSystem.Client.WMSClient import WMSClient

    workdir = tempfile.mkdtemp(prefix="gridgate-submit-")
    try:
        paths = {}
        for name, content in args.get("files", {}).items():
            path = os.path.join(workdir, os.path.basename(name))
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(content)
            os.chmod(path, 0o700)  # the wrapper must be executable; only by us
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


def op_find(args, proxy):
    """DIRAC job ids matching conditions, e.g. {"JobGroup": "gridgate.<job id>"}."""
    ids = _value(
        _client("WorkloadManagement/JobMonitoring", proxy).getJobs(args["conditions"]), "getJobs"
    )
    return sorted(int(i) for i in ids)


def op_status(args, proxy):
    """Status, minor status and application status of many jobs in one call."""
    ids = [int(i) for i in args["ids"]]
    if not ids:
        return {}
    monitoring = _client("WorkloadManagement/JobMonitoring", proxy)
    # Status, MinorStatus and ApplicationStatus of every job, in one call.
    attributes = _value(monitoring.getJobsStates(ids), "getJobsStates")
    return {str(k): v for k, v in attributes.items()}


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
        raise BridgeError(f"job {job} has no output sandbox")
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
    """The dirac-proxymanager provider: a user's proxy for a group, from the ProxyManager."""
    from DIRAC.FrameworkSystem.Client.ProxyManagerClient import ProxyManagerClient

    chain = _value(
        ProxyManagerClient().downloadProxy(
            args["dn"], args["group"], requiredTimeLeft=int(args["lifetime_s"])
        ),
        "downloadProxy",
    )
    return _value(chain.dumpAllToString(), "dump proxy")


def op_user_dn(args, proxy):
    """The DIRAC user for an IAM sub, and their DNs, from the CS registry."""
    from DIRAC.ConfigurationSystem.Client.Helpers import Registry

    sub = args["sub"]
    for user in Registry.getAllUsers():
        ids = Registry.getUserOption(user, "ID", "")
        if sub and sub in [i.strip() for i in str(ids).split(",")]:
            return {"user": user, "dns": Registry.getDNsForUsername(user).get("Value", [])}
    return None


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
