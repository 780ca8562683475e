"""Create DIRAC databases with DIRAC's own installer (what ``dirac-install-db`` runs).

Usage (server role, master CS running): install_dbs.py ROOT_PW DIRAC_PW DB [DB ...]

``installDatabase`` loads DIRAC's shipped ``<DB>.sql`` and GRANTs to ``'Dirac'@'%'``; unlike
``dirac-install-db`` it does not register the install with ComponentMonitoring, which the
testbed does not run. The CS already names the databases (configure.py).
"""

import sys

from DIRAC.Core.Base.Script import Script

root_pw, dirac_pw, *databases = sys.argv[1:]
sys.argv = sys.argv[:1]
Script.parseCommandLine(ignoreErrors=True)

from DIRAC.FrameworkSystem.Client.ComponentInstaller import gComponentInstaller  # noqa: E402

gComponentInstaller.exitOnError = False
gComponentInstaller.setMySQLPasswords(root=root_pw, dirac=dirac_pw)
failed = 0
for db in databases:
    result = gComponentInstaller.installDatabase(db)
    print(db, "OK" if result["OK"] else result["Message"])
    failed += not result["OK"]
sys.exit(1 if failed else 0)
