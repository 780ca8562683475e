#!/usr/bin/env bash
# Stop the WebDAV storage testbed started by up.sh (no-op if not running).
#   --purge   also delete the stored files, certificates and config ($GRIDGATE_TESTBED_DIR/storage)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TESTBED_DIR="${GRIDGATE_TESTBED_DIR:-$REPO/var/testbeds}"
STATE="$TESTBED_DIR/storage"
PID_FILE="$STATE/run/httpd.pid"
PURGE=0
for arg in "$@"; do
    case "$arg" in
        --purge) PURGE=1 ;;
        *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
    esac
done

# shellcheck source=../lib/stop_pid.sh
. "$HERE/../lib/stop_pid.sh"
# httpd started with our config; the parent stops its children, then exits
stop_by_pid_file "storage down.sh" "$PID_FILE" "$STATE/httpd.conf" 100

if [[ $PURGE -eq 1 ]]; then
    rm -rf "$STATE"
    echo "storage down.sh: removed $STATE"
fi
