"""First-use state in the running services (run by up.sh after the services, robot role:
it reads the CS as gridgate's robot and acts as each user with an in-memory proxy).

Usage: bootstrap.py STATE_DIR

- puts the testbed site in the WMS site mask (as ``admin``, group ``dirac_admin``); the
  Matcher gives no job to a pilot whose site is not in the mask;
- uploads a 30-day proxy of every test user to the ProxyManager, so that the JobAgent can
  run their jobs even if a client never ran dirac-proxy-init (it keeps the longest per DN);
- writes each user's group proxy to ``STATE_DIR/proxies/<user>`` (for the dirac-* commands).
"""

import sys
from pathlib import Path

from DIRAC.Core.Base.Script import Script

state = Path(sys.argv[1])
sys.argv = sys.argv[:1]
Script.parseCommandLine(ignoreErrors=True)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from DIRAC.WorkloadManagementSystem.Client.WMSAdministratorClient import (  # noqa: E402
    WMSAdministratorClient,
)
from proxies import (  # noqa: E402
    DAY_S,
    group_proxy_pem,
    load_credentials,
    ok,
    upload_proxy,
    write_proxy,
)

SITE = "DIRAC.Testbed.local"

for user_dir in sorted((state / "users").iterdir()):
    name, group = user_dir.name, (user_dir / "group").read_text().strip()
    chain = load_credentials(user_dir / "usercert.pem", user_dir / "userkey.pem")
    pem = group_proxy_pem(chain, group, 7 * DAY_S)
    upload_proxy(chain, pem, 30 * DAY_S)
    write_proxy(state / "proxies" / name, pem)
    print(f"proxy of {name} ({group}) uploaded and written to {state / 'proxies' / name}")
    if group == "dirac_admin":
        wms_admin = WMSAdministratorClient(useCertificates=False, proxyString=pem)
        if SITE not in ok(wms_admin.getSiteMask(), "getSiteMask"):
            ok(wms_admin.allowSite(SITE, "gridgate testbed"), "allowSite")
        print("site mask:", ok(wms_admin.getSiteMask(), "getSiteMask"))
