#!/usr/bin/env bash
# Run api_checks.py twice against the testbed (starting it if needed): in the client role with
# a proxy file, then in the robot role with in-memory proxies only. Exit 0 if both pass.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"

"$HERE/up.sh" >/dev/null
# shellcheck source=/dev/null
. "$STATE/env.sh"
unset X509_USER_PROXY DIRACSYSCONFIG PYTHONPATH
"$GRIDGATE_DIRAC_PYTHON" "$HERE/api_checks.py" "$@"
DIRAC_ROOT_PATH="$GRIDGATE_DIRAC_ROBOT_ROOT" "$GRIDGATE_DIRAC_PYTHON" "$HERE/api_checks.py" --robot "$@"
