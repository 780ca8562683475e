"""Add a user (or a group to a user) in the running testbed's CS; run by register_user.sh.

Usage: register_user.py STATE_DIR NAME DN GROUP [SUB] [--no-wait]

Acts as the testbed's ``admin`` (group dirac_admin, CSAdministrator) through CSAPI, the same
calls as ``dirac-admin-add-user``, but keeps the user's other groups. SUB, the user's IAM
subject, becomes the user's ``ID`` option (how DIRAC links an IdP ``sub`` to a user; one sub
names one user). Then, unless --no-wait,
waits until every service accepts the user:

- a service re-reads the CS when a request finds its copy older than RefreshTime (5 s here),
  in a background thread: the script pings every service once RefreshTime has passed;
- each service's AuthManager then still answers from its own caches for up to 60 s (a group's
  member list, a DN's user name, also "unknown DN"; hard-coded TTL): a request from the new
  user within that minute is refused with "Unauthorized query". The script waits it out.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

from DIRAC.Core.Base.Script import Script

wait = "--no-wait" not in sys.argv
positional = [a for a in sys.argv[2:] if a != "--no-wait"]
if len(positional) not in (3, 4):
    sys.exit("usage: register_user.py STATE_DIR NAME DN GROUP [SUB] [--no-wait]")
state = Path(sys.argv[1])
name, dn, group = positional[:3]
sub = positional[3] if len(positional) == 4 else None
sys.argv = sys.argv[:1]
AUTH_CACHE_TTL_S = 60  # DIRAC.Core.DISET.AuthManager TTLCache(ttl=60)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from proxies import group_proxy_pem, load_credentials, ok, write_proxy  # noqa: E402

admin = state / "users" / "admin"
tmp = Path(tempfile.mkdtemp(prefix="register-user-"))
write_proxy(
    tmp / "proxy",
    group_proxy_pem(load_credentials(admin / "usercert.pem", admin / "userkey.pem"), "dirac_admin"),
)
os.environ["X509_USER_PROXY"] = str(tmp / "proxy")
try:
    Script.parseCommandLine(ignoreErrors=True)
    from DIRAC import gConfig
    from DIRAC.ConfigurationSystem.Client.CSAPI import CSAPI
    from DIRAC.ConfigurationSystem.Client.Helpers import Registry
    from DIRAC.Core.Base.Client import Client

    csapi = CSAPI()
    groups = ok(csapi.listGroups(), "listGroups")
    if group not in groups:
        sys.exit(f"register_user: no group {group!r}; the CS has {', '.join(groups)}")
    owner = Registry.getUsernameForDN(dn)
    if owner["OK"] and owner["Value"] != name:
        sys.exit(f"register_user: {dn} is already user {owner['Value']!r}")
    if sub:
        holder = Registry.getUsernameForID(sub)
        if holder["OK"] and holder["Value"] != name:
            sys.exit(f"register_user: sub {sub} already names user {holder['Value']!r}")
    described = ok(csapi.describeUsers([name]), "describeUsers")
    current = set(described.get(name, {}).get("Groups", []))
    properties = {"DN": dn, "Email": f"{name}@localhost", "Groups": sorted(current | {group})}
    if sub:
        properties["ID"] = sub
    changed = ok(csapi.modifyUser(name, properties, createIfNonExistant=True), "modifyUser")
    if changed:
        ok(csapi.commitChanges(), "commitChanges")
    if changed and wait:
        # let RefreshTime pass, then make every service start its refresh
        time.sleep(gConfig.getValue("/DIRAC/Configuration/RefreshTime", 5) + 1)
        wms = gConfig.getOptionsDict("/Systems/WorkloadManagement/Production/URLs")["Value"]
        for url in [f"WorkloadManagement/{u}" for u in wms] + [
            "Framework/ProxyManager",
            "Accounting/DataStore",
        ]:
            Client(url=url).ping()
        print(f"committed; waiting {AUTH_CACHE_TTL_S + 2} s for the services' auth caches")
        time.sleep(AUTH_CACHE_TTL_S + 2)
    ok(gConfig.forceRefresh(), "refresh")
    print(f"{name} ({dn}) is in {', '.join(Registry.getGroupsForUser(name)['Value'])}")
    if sub:
        print(f"{name} has ID {Registry.getUserOption(name, 'ID')}")
finally:
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
