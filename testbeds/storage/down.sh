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

if [[ -f "$PID_FILE" ]]; then
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    # only signal the PID if it is still our httpd with our config (guards against PID reuse)
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
        && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE/httpd.conf"; then
        kill -TERM "$pid"  # the parent stops its children, then removes the PID file
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "storage down.sh: stopped httpd $pid"
    else
        echo "storage down.sh: pid ${pid:-?} not running"
    fi
    rm -f "$PID_FILE"
else
    echo "storage down.sh: not running (no $PID_FILE)"
fi

if [[ $PURGE -eq 1 ]]; then
    rm -rf "$STATE"
    echo "storage down.sh: removed $STATE"
fi
