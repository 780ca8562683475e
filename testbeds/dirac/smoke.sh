#!/usr/bin/env bash
# Run smoke.py (proxy, submit, JobAgent runs it, Done, output sandbox) against the testbed,
# starting the testbed first if needed (up.sh returns at once when it already runs).
#   smoke.sh [smoke.py options]   e.g. smoke.sh --user bob
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STATE="${GRIDGATE_TESTBED_DIR:-$REPO/var/testbeds}/dirac"

"$HERE/up.sh" >/dev/null
# shellcheck source=/dev/null
. "$STATE/env.sh"
# a proxy or config meant for another DIRAC must not leak in
unset X509_USER_PROXY DIRACSYSCONFIG PYTHONPATH
exec "$GRIDGATE_DIRAC_PYTHON" "$HERE/smoke.py" "$@"
