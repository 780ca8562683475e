# shellcheck shell=bash
# Shared by up.sh and down.sh: where the DiracX testbed keeps its state, and its components.
REPO="$(cd "$HERE/../.." && pwd)"
TESTBED_DIR="${GRIDGATE_TESTBED_DIR:-$REPO/var/testbeds}"
mkdir -p "$TESTBED_DIR"
TESTBED_DIR="$(cd "$TESTBED_DIR" && pwd)"
STATE="$TESTBED_DIR/diracx"
# a second instance (other ports, GRIDGATE_TESTBED_DIR) may reuse the first one's venv
VENV="${GRIDGATE_DIRACX_VENV:-$STATE/venv}"
KEYS="$STATE/keys"
CS="$STATE/cs"
DB_DIR="$STATE/db"
RUN_DIR="$STATE/run"
LOG_DIR="$STATE/logs"
PORT="${GRIDGATE_DIRACX_PORT:-8710}"
S3_PORT="${GRIDGATE_DIRACX_S3_PORT:-8711}"
URL="http://127.0.0.1:$PORT"
S3_URL="http://127.0.0.1:$S3_PORT"
REDIS_URL="${GRIDGATE_DIRACX_REDIS_URL:-redis://127.0.0.1:6379/7}"
IDP_URL="http://127.0.0.1:${GRIDGATE_IDP_PORT:-9400}"
# the same IAM subjects as the DIRAC 8 testbed's alice and bob; an instance whose users log in
# at the IdP testbed (device flow) names that IdP's subjects instead ("alice", "bob")
ALICE_SUB="${GRIDGATE_DIRACX_ALICE_SUB:-5f0c2a61-7d3e-4b8a-9c1f-a11ce0000001}"
BOB_SUB="${GRIDGATE_DIRACX_BOB_SUB:-9b7e4d12-3c5a-4f6e-8d2b-b0b000000002}"
# DiracX's OAuth client at the VO's IdP: the IdP testbed registers "diracx" (authorization
# code + PKCE, redirects to DiracX's /api/auth/device/complete)
IDP_CLIENT_ID="${GRIDGATE_DIRACX_IDP_CLIENT_ID:-gridgate}"
# DiracX's token lifetimes in minutes (its defaults: access 20, refresh 60); tests of a link
# that runs out use short ones
ACCESS_MINUTES="${GRIDGATE_DIRACX_ACCESS_MINUTES:-20}"
REFRESH_MINUTES="${GRIDGATE_DIRACX_REFRESH_MINUTES:-60}"
COMPONENTS=(s3 diracx tasks-scheduler tasks-worker tasks-worker-medium)

# a component's pid, while it lives and is still ours (its command line runs from our venv)
component_pid() {
    local pid
    pid="$(cat "$RUN_DIR/$1.pid" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$VENV" || return 1
    echo "$pid"
}
component_alive() { component_pid "$1" >/dev/null; }
all_running() {
    local name
    for name in "${COMPONENTS[@]}"; do component_alive "$name" || return 1; done
}
answering() { curl -fsS -o /dev/null --max-time 3 "$URL/.well-known/openid-configuration" 2>/dev/null; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# launch NAME CMD...: in its own session (down.sh stops the group), output to logs/NAME.log
launch() {
    local name=$1
    shift
    # fd 9 is up.sh's lock: a daemon holding it would block every later up.sh
    setsid nohup "$@" >"$LOG_DIR/$name.log" 2>&1 </dev/null 9>&- &
    echo $! >"$RUN_DIR/$name.pid"
}
wait_for() {
    local label=$1 url=$2 name=$3 i
    for i in $(seq 1 120); do
        curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
        component_alive "$name" || { tail -n 20 "$LOG_DIR/$name.log" >&2; die "$label exited"; }
        sleep 0.25
    done
    die "$label does not answer $url (log: $LOG_DIR/$name.log)"
}
