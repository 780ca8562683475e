"""Write the DIRAC 8.0 configuration of the testbed (run by up.sh with the DIRAC venv python).

Usage: configure.py STATE_DIR [--rewrite-cs] [--cs-running] [--agents N]

Writes, under STATE_DIR:

- ``server/etc/TestbedCS.cfg``: the master CS content, served by Configuration/Server. Written
  when absent (or with ``--rewrite-cs``); otherwise what this script manages is merged into
  it, so users and groups that register_user.sh added while the testbed ran are kept across
  restarts. With ``--cs-running`` the file is left alone: the running CS owns it (and would
  overwrite a change at its next commit); the merge happens at the next restart.
- ``{server,client,robot,pilot-<vo>-<n>}/etc/dirac.cfg``: the local
  configuration of each role (server: host certificate and DB credentials; client: only the CS
  URL; pilot-<vo>-<n>: what ``dirac-configure`` writes on a worker node, one per JobAgent,
  N per VO; robot: a client that authenticates as gridgate's robot certificate). Rewritten
  every time.

Users come from ``users/<name>/{dn,group}``, written by certs.sh; the test users' IAM
subjects (``TEST_USER_SUBS``) go to ``users/<name>/sub`` and to the CS (``ID``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import importlib_resources
from diraccfg import CFG

SETUP = "Testbed"
INSTANCE = "Production"
CS_NAME = "TestbedCS"
HOST = "localhost"  # the host certificate's CN; DIRAC builds service URLs from /DIRAC/Hostname
ROBOT = "gridgate-robot"
SITE = "DIRAC.Testbed.local"
CS_URL = f"dips://{HOST}:9135/Configuration/Server"
DB = {"User": "Dirac", "Password": "diracpw", "Host": "127.0.0.1", "Port": "13306"}
DB_ROOT_PASSWORD = "rootpw"
# the lifetime of the payload proxy a JobAgent asks the ProxyManager for (DIRAC's default);
# the ProxyManager must hold a proxy of the job owner with this + 4 h left, or the JobAgent
# reschedules the job ("Failed to setup proxy")
PROXY_LIFETIME_S = 24 * 3600
# the JobAgent offers this much normalised CPU work; each job's request (86400 by default)
# is deducted, so keep it far above what tests submit
CPU_WORK = 10**9
# services notice CS changes (register_user.sh) after at most this many seconds
CS_REFRESH_S = 5

VOS = ("cta", "km3net")
ADMIN_GROUP = "dirac_admin"
ADMIN_PROPERTIES = (
    "AlarmsManagement, ServiceAdministrator, CSAdministrator, JobAdministrator, "
    "FullDelegation, ProxyManagement, Operator, SiteManager, NormalUser"
)
# group -> (VO, properties); users are attached from users/<name>/group
GROUPS = {
    "cta_user": ("cta", "NormalUser"),
    "km3net_user": ("km3net", "NormalUser"),
    # for the site mask and CS changes (register_user.sh); DIRAC groups need one VO
    ADMIN_GROUP: ("cta", ADMIN_PROPERTIES),
}
# the IAM ``sub`` of the test users: DIRAC links an IdP subject to a user with the Registry
# option ``Users/<name>/ID`` (Registry.getUsernameForID); fixed, so tests can mint tokens
TEST_USER_SUBS = {
    "alice": "5f0c2a61-7d3e-4b8a-9c1f-a11ce0000001",
    "bob": "9b7e4d12-3c5a-4f6e-8d2b-b0b000000002",
}
# gridgate's robot (the services' DIRAC identity): TrustedHost to act for users; for the
# dirac-proxymanager provider FullDelegation (ProxyManager getProxy/getVOMSProxy hand it any
# user's full proxy) and ProxyManagement (getContents: how long each user's stored proxy
# lasts; without it the ProxyManager shows a caller only its own proxies)
ROBOT_PROPERTIES = "TrustedHost, FullDelegation, ProxyManagement"
HOST_PROPERTIES = (
    "TrustedHost, CSAdministrator, JobAdministrator, FullDelegation, ProxyManagement, "
    "Operator, ProductionManagement, GenericPilot, SiteManager"
)

# (System, Component, Port) of the services up.sh starts
SERVICES = [
    ("Configuration", "Server", 9135),
    ("Framework", "ProxyManager", 9152),
    ("WorkloadManagement", "JobManager", 9132),
    ("WorkloadManagement", "JobMonitoring", 9130),
    ("WorkloadManagement", "JobStateUpdate", 9136),
    ("WorkloadManagement", "Matcher", 9170),
    ("WorkloadManagement", "WMSAdministrator", 9145),
    ("WorkloadManagement", "PilotManager", 9171),
    ("WorkloadManagement", "SandboxStore", 9196),
    ("WorkloadManagement", "OptimizationMind", 9175),
    ("Accounting", "DataStore", 9133),  # accounting records the JobWrapper sends
]
EXECUTORS = ["Optimizers", "JobPath", "JobSanity", "InputData", "JobScheduling"]
DATABASES = [
    ("Framework", "ProxyDB"),
    ("WorkloadManagement", "JobDB"),
    ("WorkloadManagement", "JobLoggingDB"),
    ("WorkloadManagement", "TaskQueueDB"),
    ("WorkloadManagement", "SandboxMetadataDB"),
    ("WorkloadManagement", "PilotAgentsDB"),
    ("Accounting", "AccountingDB"),
]
SYSTEMS = [
    "Configuration",
    "Framework",
    "WorkloadManagement",
    "Accounting",
    "RequestManagement",
    "DataManagement",
    "ResourceStatus",
    "Monitoring",
    "StorageManagement",
    "Transformation",
]


def system_base(system: str) -> str:
    """CS section of a system in DIRAC 8.0: /Systems/<System>/<Instance>."""
    return f"/Systems/{system}/{INSTANCE}"


def _ensure_section(cfg: CFG, path: str) -> None:
    current = ""
    for part in [p for p in path.strip("/").split("/") if p]:
        current = f"{current}/{part}" if current else part
        if not cfg.isSection(current):
            cfg.createNewSection(current)


def setopt(cfg: CFG, path: str, value: str) -> None:
    """Set an option, creating its parent sections (CFG.setOption does not)."""
    section = path.strip("/").rpartition("/")[0]
    if section:
        _ensure_section(cfg, section)
    error = cfg.setOption(path.strip("/"), value)  # None on success
    if error:
        raise RuntimeError(f"could not set {path}: {error}")


def put_section(cfg: CFG, path: str, contents: CFG) -> None:
    parent = path.strip("/").rpartition("/")[0]
    if parent:
        _ensure_section(cfg, parent)
    cfg.createNewSection(path.strip("/"), contents=contents)


def template(system: str) -> CFG:
    """The component defaults DIRAC ships, as dirac-install-component copies them."""
    text = (
        importlib_resources.files(f"DIRAC.{system}System")
        .joinpath("ConfigTemplate.cfg")
        .read_text()
    )
    cfg = CFG()
    cfg.loadFromBuffer(text)
    return cfg


def subject(cert: Path) -> str:
    out = subprocess.check_output(
        ["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-nameopt", "compat"],
        text=True,
    )
    return out.strip().split("=", 1)[1]


def read_users(state: Path) -> dict[str, tuple[str, str]]:
    """name -> (DN, group) for every certificate certs.sh made."""
    users = {}
    for d in sorted((state / "users").iterdir()):
        if (d / "dn").is_file() and (d / "group").is_file():
            users[d.name] = ((d / "dn").read_text().strip(), (d / "group").read_text().strip())
    return users


def build_cs(state: Path) -> CFG:
    server_root = state / "server"
    cs = CFG()
    # no /DIRAC/VirtualOrganization: it would make every group belong to that one VO
    setopt(cs, "/DIRAC/Configuration/Name", CS_NAME)
    setopt(cs, "/DIRAC/Configuration/MasterServer", CS_URL)
    setopt(cs, "/DIRAC/Configuration/Servers", CS_URL)
    setopt(cs, "/DIRAC/Configuration/RefreshTime", str(CS_REFRESH_S))
    for system in SYSTEMS:
        setopt(cs, f"/DIRAC/Setups/{SETUP}/{system}", INSTANCE)

    templates: dict[str, CFG] = {}
    for system, comp, port in SERVICES:
        tmpl = templates.setdefault(system, template(system))
        section = tmpl["Services"][comp].clone()
        if section.isSection("Dependencies"):
            section.deleteKey("Dependencies")
        put_section(cs, f"{system_base(system)}/Services/{comp}", section)
        setopt(cs, f"{system_base(system)}/Services/{comp}/Port", str(port))
        setopt(cs, f"{system_base(system)}/URLs/{comp}", f"dips://{HOST}:{port}/{system}/{comp}")
    wms = system_base("WorkloadManagement")
    tmpl = templates.setdefault("WorkloadManagement", template("WorkloadManagement"))
    for comp in EXECUTORS:
        put_section(cs, f"{wms}/Executors/{comp}", tmpl["Executors"][comp].clone())
    put_section(cs, f"{wms}/Agents/JobAgent", tmpl["Agents"]["JobAgent"].clone())
    # JobAgents instead of pilots (jobagent_loop.sh restarts each one when it stops). An agent
    # cycle starts at most every 10 s (AgentReactor's minimum period, hard-coded); after a
    # cycle without a match the agent sleeps 2 * PollingTime * (misses so far), so an agent
    # idle for an hour would sleep minutes before its next match. Like a real pilot, it stops
    # after StopAfterFailedMatches misses and a fresh one (a new pilot) takes its place.
    for option, value in {
        "PollingTime": "2",
        "SubmissionDelay": "0",
        "FillingModeFlag": "true",
        "StopAfterFailedMatches": "2",
        "StopAfterHostFailures": "1000000000",
        "StopOnApplicationFailure": "false",
    }.items():
        setopt(cs, f"{wms}/Agents/JobAgent/{option}", value)
    # the job wrapper's watchdog wakes every PollingTime (default 10 s) and, once per
    # CheckingTime (default 30 min, at least MinCheckingTime, 20 min), sends a heartbeat with
    # the last MaxJobPeekLines (20) lines of stdout (job parameter StandardOutput) and picks up
    # kill signals: make both prompt for tests; do not kill jobs that sleep (their
    # CPU/wall-clock ratio is low)
    for option, value in {
        "PollingTime": "2",
        "CheckingTime": "5",
        "MinCheckingTime": "5",
        "CheckCPUConsumedFlag": "0",
    }.items():
        setopt(cs, f"{wms}/JobWrapper/{option}", value)
    sandbox_store = f"{wms}/Services/SandboxStore"
    setopt(cs, f"{sandbox_store}/BasePath", str(server_root / "storage" / "sandboxes"))
    setopt(cs, f"{sandbox_store}/LocalSE", "ProductionSandboxSE")
    setopt(cs, f"{sandbox_store}/Backend", "local")
    setopt(cs, f"{wms}/Services/JobManager/MaxParametricJobs", "1000")
    for system, db in DATABASES:
        setopt(cs, f"{system_base(system)}/Databases/{db}/DBName", db)

    # ---- Registry: VOs, groups, users, the host (which is also the pilot identity)
    users = read_users(state)
    setopt(cs, "/Registry/DefaultGroup", "cta_user, km3net_user")
    setopt(cs, "/Registry/DefaultProxyLifeTime", str(PROXY_LIFETIME_S))
    for vo in VOS:
        setopt(cs, f"/Registry/VO/{vo}/VOAdmin", "admin")
        setopt(cs, f"/Registry/VO/{vo}/VOAdminGroup", ADMIN_GROUP)
    for name, (dn, _group) in users.items():
        setopt(cs, f"/Registry/Users/{name}/DN", dn)
        setopt(cs, f"/Registry/Users/{name}/Email", f"{name}@localhost")
        if name in TEST_USER_SUBS:
            setopt(cs, f"/Registry/Users/{name}/ID", TEST_USER_SUBS[name])
    for group, (vo, properties) in GROUPS.items():
        members = [name for name, (_dn, g) in users.items() if g == group]
        setopt(cs, f"/Registry/Groups/{group}/Users", ", ".join(members))
        setopt(cs, f"/Registry/Groups/{group}/Properties", properties)
        setopt(cs, f"/Registry/Groups/{group}/VO", vo)
    host_dn = subject(server_root / "etc" / "grid-security" / "hostcert.pem")
    setopt(cs, f"/Registry/Hosts/{HOST}/DN", host_dn)
    setopt(cs, f"/Registry/Hosts/{HOST}/Properties", HOST_PROPERTIES)
    # gridgate's robot: any registered identity may read the CS and job states, parameters
    # ("authenticated"); TrustedHost also lets it act for a user with delegatedDN/delegatedGroup,
    # as DIRAC's web portal does; see ROBOT_PROPERTIES for the proxy download
    robot_dn = subject(state / "robot" / "etc" / "grid-security" / "hostcert.pem")
    setopt(cs, f"/Registry/Hosts/{ROBOT}/DN", robot_dn)
    setopt(cs, f"/Registry/Hosts/{ROBOT}/Properties", ROBOT_PROPERTIES)

    # ---- Resources: one site, one InProcess "CE", the sandbox SE served by SandboxStore
    site = f"/Resources/Sites/DIRAC/{SITE}"
    setopt(cs, f"{site}/Name", "testbed")
    setopt(cs, f"{site}/CE", HOST)
    setopt(cs, f"{site}/CEs/{HOST}/CEType", "InProcess")
    setopt(cs, f"{site}/CEs/{HOST}/Queues/default/maxCPUTime", str(CPU_WORK))
    se = "/Resources/StorageElements/ProductionSandboxSE"
    setopt(cs, f"{se}/BackendType", "DISET")
    for option, value in {
        "Host": HOST,
        "Port": "9196",
        "PluginName": "DIP",
        "Protocol": "dips",
        "Path": "/WorkloadManagement/SandboxStore",
        "Access": "remote",
    }.items():
        setopt(cs, f"{se}/AccessProtocol.1/{option}", value)

    # ---- Operations: no RSS (the site mask lives in the WMS), no platform check
    setopt(cs, "/Operations/Defaults/EMail/Production", "admin@localhost")
    setopt(cs, "/Operations/Defaults/ResourceStatus/Config/State", "InActive")
    setopt(cs, "/Operations/Defaults/JobScheduling/CheckPlatform", "False")
    return cs


def common_local(cfg: CFG) -> None:
    setopt(cfg, "/DIRAC/Setup", SETUP)
    setopt(cfg, "/DIRAC/Configuration/Servers", CS_URL)
    setopt(cfg, "/DIRAC/Configuration/RefreshTime", str(CS_REFRESH_S))
    for system in SYSTEMS:
        setopt(cfg, f"/DIRAC/Setups/{SETUP}/{system}", INSTANCE)


def server_local(state: Path) -> CFG:
    root = state / "server"
    grid_security = root / "etc" / "grid-security"
    cfg = CFG()
    common_local(cfg)
    setopt(cfg, "/DIRAC/Configuration/Name", CS_NAME)
    setopt(cfg, "/DIRAC/Configuration/Master", "yes")
    # service URLs are built from this name; the default (the FQDN) is not in the host cert
    setopt(cfg, "/DIRAC/Hostname", HOST)
    setopt(cfg, "/DIRAC/Security/UseServerCertificate", "yes")
    setopt(cfg, "/DIRAC/Security/CertFile", str(grid_security / "hostcert.pem"))
    setopt(cfg, "/DIRAC/Security/KeyFile", str(grid_security / "hostkey.pem"))
    for key, value in DB.items():
        setopt(cfg, f"/Systems/Databases/{key}", value)
    # the master CS cannot read its own Port from itself: its section must be local
    put_section(
        cfg,
        f"{system_base('Configuration')}/Services/Server",
        template("Configuration")["Services"]["Server"].clone(),
    )
    setopt(cfg, "/LocalSite/Site", SITE)
    setopt(cfg, "/LocalSite/InstancePath", str(root))
    for key, value in {
        "User": DB["User"],
        "Password": DB["Password"],
        "RootUser": "root",
        "RootPwd": DB_ROOT_PASSWORD,
        "Host": DB["Host"],
        "Port": DB["Port"],
    }.items():
        setopt(cfg, f"/LocalInstallation/Database/{key}", value)
    return cfg


def client_local() -> CFG:
    cfg = CFG()
    common_local(cfg)
    setopt(cfg, "/DIRAC/Security/UseServerCertificate", "no")
    return cfg


def robot_local(state: Path) -> CFG:
    """A client that reads the CS as gridgate's robot; user calls pass an in-memory proxy
    (``useCertificates=False, proxyString=pem``), since the default would be the robot."""
    grid_security = state / "robot" / "etc" / "grid-security"
    cfg = client_local()
    setopt(cfg, "/DIRAC/Security/UseServerCertificate", "yes")
    setopt(cfg, "/DIRAC/Security/CertFile", str(grid_security / "hostcert.pem"))
    setopt(cfg, "/DIRAC/Security/KeyFile", str(grid_security / "hostkey.pem"))
    return cfg


def merge_cs(existing: CFG, managed: CFG) -> CFG:
    """The running testbed's CS with this script's content merged in (this script wins),
    keeping users added at run time and their group memberships."""
    merged = existing.mergeWith(managed)
    groups = "Registry/Groups"
    if existing.isSection(groups):
        for group in existing[groups].listSections():
            path = f"{groups}/{group}/Users"
            old = [u.strip() for u in existing.getOption(path, "").split(",") if u.strip()]
            new = [u.strip() for u in merged.getOption(path, "").split(",") if u.strip()]
            union = new + [u for u in old if u not in new]
            if union:
                setopt(merged, path, ", ".join(union))
    return merged


def pilot_local(state: Path, vo: str, index: int) -> CFG:
    """What a pilot's dirac-configure writes: the host identity and the local resource.

    A pilot with a host certificate serves one VO: the Matcher requires the resource's
    VirtualOrganization and offers jobs of that VO's groups only. Hence JobAgents per VO; each
    runs one job at a time (InProcess CE) in a root of its own (work and control directories).
    """
    root = state / f"pilot-{vo}-{index}"
    grid_security = state / "server" / "etc" / "grid-security"
    cfg = client_local()
    setopt(cfg, "/DIRAC/Security/UseServerCertificate", "yes")
    setopt(cfg, "/DIRAC/Security/CertFile", str(grid_security / "hostcert.pem"))
    setopt(cfg, "/DIRAC/Security/KeyFile", str(grid_security / "hostkey.pem"))
    for key, value in {
        "VirtualOrganization": vo,
        "Site": SITE,
        "GridCE": HOST,
        "CEQueue": "default",
        "LocalCE": "InProcess",
        "CPUNormalizationFactor": "10.0",
        "CPUTime": str(CPU_WORK),
        "MaxCPUTime": str(CPU_WORK),
        "WorkingDirectory": str(root / "work"),
        "InstancePath": str(root),
    }.items():
        setopt(cfg, f"/LocalSite/{key}", value)
    return cfg


def main(argv: list[str]) -> int:
    state = Path(argv[1]).resolve()
    rewrite_cs = "--rewrite-cs" in argv
    agents = int(argv[argv.index("--agents") + 1]) if "--agents" in argv else 1
    pilots = [f"pilot-{vo}-{i}" for vo in VOS for i in range(1, agents + 1)]
    for role in ("server", "client", "robot", *pilots):
        etc = state / role / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        # every role finds the CAs where a grid node keeps them (X509_CERT_DIR wins anyway)
        link = etc / "grid-security" / "certificates"
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(state / "certificates")
    (state / "server" / "storage" / "sandboxes").mkdir(parents=True, exist_ok=True)
    for pilot in pilots:
        (state / pilot / "work").mkdir(parents=True, exist_ok=True)
    for name, sub in TEST_USER_SUBS.items():
        if (state / "users" / name).is_dir():
            (state / "users" / name / "sub").write_text(sub + "\n")
    cs_file = state / "server" / "etc" / f"{CS_NAME}.cfg"
    if rewrite_cs or not cs_file.exists():
        build_cs(state).writeToFile(str(cs_file))
        print("wrote", cs_file)
    elif "--cs-running" in argv:
        print("kept", cs_file, "(the CS runs; changes are merged at its next start)")
    else:
        existing = CFG()
        existing.loadFromFile(str(cs_file))
        merged = merge_cs(existing, build_cs(state))
        if str(merged) != str(existing):
            merged.writeToFile(str(cs_file))
            print("merged into", cs_file)
        else:
            print("kept", cs_file, "(up to date)")
    server_local(state).writeToFile(str(state / "server" / "etc" / "dirac.cfg"))
    client_local().writeToFile(str(state / "client" / "etc" / "dirac.cfg"))
    for vo in VOS:
        for i in range(1, agents + 1):
            pilot_local(state, vo, i).writeToFile(
                str(state / f"pilot-{vo}-{i}" / "etc" / "dirac.cfg")
            )
    robot_local(state).writeToFile(str(state / "robot" / "etc" / "dirac.cfg"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
