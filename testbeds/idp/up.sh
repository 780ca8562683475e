#!/usr/bin/env bash
# Start the gridgate OIDC provider testbed (idempotent).
#   GRIDGATE_IDP_PORT     (default 9400)
#   GRIDGATE_TESTBED_DIR  (default <repo>/var/testbeds); state in $GRIDGATE_TESTBED_DIR/idp/
#   GRIDGATE_IDP_ACCESS_TOKEN_TTL  (default 600) lifetime in seconds of its access tokens
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PORT="${GRIDGATE_IDP_PORT:-9400}"
TESTBED_DIR="${GRIDGATE_TESTBED_DIR:-$REPO/var/testbeds}"
STATE_DIR="$TESTBED_DIR/idp"
PID_FILE="$STATE_DIR/pid"
LOG_FILE="$STATE_DIR/server.log"
ISSUER="http://127.0.0.1:$PORT"
DISCOVERY="$ISSUER/.well-known/openid-configuration"

export GRIDGATE_IDP_PORT="$PORT" GRIDGATE_TESTBED_DIR="$TESTBED_DIR"

die() { echo "idp up.sh: $*" >&2; exit 1; }

command -v node >/dev/null || die "node not found"
command -v curl >/dev/null || die "curl not found"

answering() { curl -fsS -o /dev/null --max-time 2 "$DISCOVERY" 2>/dev/null; }
pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

mkdir -p "$STATE_DIR"

if [[ ! -d "$HERE/node_modules/oidc-provider" ]]; then
    echo "idp up.sh: installing node dependencies (npm ci)" >&2
    (cd "$HERE" && npm ci --no-audit --no-fund) >&2 || die "npm ci failed"
fi

if [[ -f "$PID_FILE" ]]; then
    old_pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    if pid_alive "$old_pid"; then
        if answering; then
            echo "$ISSUER"
            exit 0
        fi
        die "process $old_pid from $PID_FILE is alive but $DISCOVERY does not answer; run down.sh first (log: $LOG_FILE)"
    fi
    rm -f "$PID_FILE"  # stale
fi

if answering; then
    die "something else already answers on $ISSUER (not started by this script); refusing to start another"
fi

cd "$HERE"
nohup node server.mjs >>"$LOG_FILE" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$PID_FILE"

for _ in $(seq 1 60); do
    if answering; then
        echo "$ISSUER"
        exit 0
    fi
    if ! pid_alive "$pid"; then
        rm -f "$PID_FILE"
        tail -n 20 "$LOG_FILE" >&2 || true
        die "server exited during startup (log: $LOG_FILE)"
    fi
    sleep 0.5
done

kill "$pid" 2>/dev/null || true
rm -f "$PID_FILE"
tail -n 20 "$LOG_FILE" >&2 || true
die "server did not answer $DISCOVERY within 30 s (log: $LOG_FILE)"
