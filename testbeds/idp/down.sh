#!/usr/bin/env bash
# Stop the gridgate OIDC provider testbed started by up.sh (no-op if not running).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TESTBED_DIR="${GRIDGATE_TESTBED_DIR:-$REPO/var/testbeds}"
PID_FILE="$TESTBED_DIR/idp/pid"

# shellcheck source=../lib/stop_pid.sh
. "$HERE/../lib/stop_pid.sh"
# our node server.mjs
stop_by_pid_file "idp down.sh" "$PID_FILE" "server.mjs" 50
