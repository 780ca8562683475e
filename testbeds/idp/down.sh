#!/usr/bin/env bash
# Stop the gridgate OIDC provider testbed started by up.sh (no-op if not running).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TESTBED_DIR="${GRIDGATE_TESTBED_DIR:-$REPO/var/testbeds}"
PID_FILE="$TESTBED_DIR/idp/pid"

if [[ ! -f "$PID_FILE" ]]; then
    echo "idp down.sh: not running (no $PID_FILE)"
    exit 0
fi

pid="$(cat "$PID_FILE" 2>/dev/null || true)"
if [[ ! "$pid" =~ ^[0-9]+$ ]]; then
    rm -f "$PID_FILE"
    echo "idp down.sh: removed invalid PID file"
    exit 0
fi

# only signal the PID if it is still our node server.mjs (guards against PID reuse)
if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'server\.mjs'; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "idp down.sh: stopped pid $pid"
else
    echo "idp down.sh: pid $pid not running"
fi
rm -f "$PID_FILE"
