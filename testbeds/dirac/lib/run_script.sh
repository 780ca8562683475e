#!/usr/bin/env bash
# Run one of the testbed's Python checks with DIRAC's own Python, starting the testbed first if
# needed (up.sh returns at once when it already runs).   lib/run_script.sh SCRIPT.py [options]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"

"$HERE/up.sh" >/dev/null
# shellcheck source=/dev/null
. "$STATE/env.sh"
# a proxy or config meant for another DIRAC must not leak in
unset X509_USER_PROXY DIRACSYSCONFIG PYTHONPATH
script="$1"
shift
exec "$GRIDGATE_DIRAC_PYTHON" "$HERE/$script" "$@"
