#!/usr/bin/env bash
# Start the gridgate DiracX 0.7.0 testbed on loopback (idempotent).
#
# DiracX (the DIRAC 9 line's token-only HTTP API) with every database on SQLite, its job
# parameters in DiracX's SQLite stand-in for OpenSearch, a configuration repository with two
# VOs (cta: alice; km3net: bob), the legacy-exchange key enabled, the task runner (worker and
# scheduler) on the machine's Redis (its own database number) with DiracX's dummy job executor,
# and moto's S3 server as the sandbox store. See README.md for what is real and what is not.
#
#   GRIDGATE_TESTBED_DIR        (default <repo>/var/testbeds); state in $GRIDGATE_TESTBED_DIR/diracx/
#   GRIDGATE_DIRACX_PORT        DiracX's HTTP port (default 8710)
#   GRIDGATE_DIRACX_S3_PORT     the S3 server's port (default 8711)
#   GRIDGATE_DIRACX_REDIS_URL   the task runner's Redis (default redis://127.0.0.1:6379/7)
#   GRIDGATE_DIRACX_VENV        reuse this DiracX venv (a second instance of the testbed)
#   GRIDGATE_DIRACX_IDP_CLIENT_ID, GRIDGATE_DIRACX_ALICE_SUB, GRIDGATE_DIRACX_BOB_SUB
#                               the VOs' IdP client and the users' IdP subjects (device flow)
#   GRIDGATE_DIRACX_ACCESS_MINUTES, GRIDGATE_DIRACX_REFRESH_MINUTES  token lifetimes (20, 60)
#   PYTHON                      base interpreter for the venv (default python3; 3.11 or newer)
#
# Prints the client environment and writes it to $STATE/env.sh. down.sh stops what this started.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"

say() { echo "diracx up.sh: $*" >&2; }
die() { say "$*"; exit 1; }

exit_if_running() {
    if [[ -f "$VENV/.installed" && -f "$STATE/env.sh" ]] && all_running && answering; then
        cat "$STATE/env.sh"
        exit 0
    fi
}
exit_if_running
mkdir -p "$STATE" "$RUN_DIR" "$LOG_DIR"
# one up.sh at a time; the other may have brought everything up meanwhile
exec 9>"$STATE/.up.lock"
flock 9
exit_if_running

# ---------------------------------------------------------------------------------------------
# DiracX's own venv: its pins (pydantic-settings, fastapi, joserfc, ...) are not gridgate's.
ensure_venv() {
    local want
    want="$(sha256sum "$HERE/requirements.txt" | cut -c1-16)"
    [[ -f "$VENV/.installed" && "$(cat "$VENV/.installed")" == "$want" ]] && return 0
    local py="${PYTHON:-python3}"
    "$py" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' \
        || die "$py is older than Python 3.11 (DiracX needs 3.11 or newer)"
    rm -rf "$VENV"
    say "creating $VENV"
    if command -v uv >/dev/null; then
        { uv venv -q -p "$py" "$VENV" && uv pip install -q -p "$VENV/bin/python" \
            -r "$HERE/requirements.txt"; } >"$LOG_DIR/pip.log" 2>&1
    else
        { "$py" -m venv "$VENV" && "$VENV/bin/pip" install -q -r "$HERE/requirements.txt"; } \
            >"$LOG_DIR/pip.log" 2>&1
    fi || { tail -n 30 "$LOG_DIR/pip.log" >&2; die "install failed (log: $LOG_DIR/pip.log)"; }
    "$VENV/bin/python" -c 'import diracx.routers, diracx.tasks, diracx.client, moto' \
        || die "the DiracX venv is incomplete ($VENV)"
    echo "$want" >"$VENV/.installed"
}

# ---------------------------------------------------------------------------------------------
# Signing keys, the legacy-exchange key, the session-state key: made once, kept private.
ensure_keys() {
    umask 077
    mkdir -p "$KEYS"
    [[ -s "$KEYS/jwks.json" ]] || "$VENV/bin/python" -m diracx.logic rotate-jwk \
        --jwks-path "$KEYS/jwks.json" >"$LOG_DIR/keys.log" 2>&1 || die "rotate-jwk failed"
    [[ -s "$KEYS/legacy-exchange.key" ]] || "$VENV/bin/python" -c \
        'import secrets; print(secrets.token_urlsafe(32))' >"$KEYS/legacy-exchange.key"
    [[ -s "$KEYS/state.key" ]] || "$VENV/bin/python" -c \
        'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' \
        >"$KEYS/state.key"
    umask 022
}

# ---------------------------------------------------------------------------------------------
# The configuration repository (a git repository DiracX reads): VOs, groups, users by IdP sub.
ensure_cs() {
    # the layout's version: a change here rebuilds the repository
    local layout=3
    # a CS of other subjects or another IdP client is another layout
    [[ "$ALICE_SUB:$BOB_SUB:$IDP_CLIENT_ID" == "5f0c2a61-7d3e-4b8a-9c1f-a11ce0000001:9b7e4d12-3c5a-4f6e-8d2b-b0b000000002:gridgate" ]] \
        || layout="3:$ALICE_SUB:$BOB_SUB:$IDP_CLIENT_ID"
    [[ "$(cat "$CS/.gridgate-done" 2>/dev/null)" == "$layout" ]] && return 0
    rm -rf "$CS"
    local dirac="$VENV/bin/dirac" repo="git+file://$CS"
    {
        "$dirac" internal generate-cs "$repo"
        "$dirac" internal add-vo "$repo" --vo=cta --idp-url="$IDP_URL" \
            --idp-client-id="$IDP_CLIENT_ID" --default-group=cta_user
        "$dirac" internal add-vo "$repo" --vo=km3net --idp-url="$IDP_URL" \
            --idp-client-id="$IDP_CLIENT_ID" --default-group=km3net_user
        "$dirac" internal add-user "$repo" --vo=cta --group=cta_user \
            --sub="$ALICE_SUB" --preferred-username=alice
        "$dirac" internal add-user "$repo" --vo=km3net --group=km3net_user \
            --sub="$BOB_SUB" --preferred-username=bob
        # gridgate's robot, a JobAdministrator: bulk status (a group in each VO, so that either
        # VO's operator may hold it; DiracX 0.7.0 does not scope an administrator's search by VO)
        "$dirac" internal add-group "$repo" --vo=cta --group=cta_gridgate \
            --properties JobAdministrator
        "$dirac" internal add-group "$repo" --vo=km3net --group=km3net_gridgate \
            --properties JobAdministrator
        "$dirac" internal add-user "$repo" --vo=cta --group=cta_gridgate \
            --sub=gridgate-robot-cta --preferred-username=gridgate
        "$dirac" internal add-user "$repo" --vo=km3net --group=km3net_gridgate \
            --sub=gridgate-robot-km3net --preferred-username=gridgate
        # DiracX's default (GlobalJobsInfo: true) lets every user search every job, of every
        # VO; users here see their own jobs only, as on a production facility.
        "$VENV/bin/python" - "$CS" <<'PY'
import pathlib, sys
import git, yaml
repo = pathlib.Path(sys.argv[1])
path = repo / "default.yml"
config = yaml.safe_load(path.read_text())
for vo in ("cta", "km3net"):
    operations = config.setdefault("Operations", {}).setdefault(vo, {}) or {}
    config["Operations"][vo] = operations
    monitoring = operations.setdefault("Services", {}).setdefault("JobMonitoring", {})
    monitoring["GlobalJobsInfo"] = False
path.write_text(yaml.safe_dump(config, sort_keys=False))
git.Repo(repo).index.add(["default.yml"])
git.Repo(repo).index.commit("gridgate: users see only their own jobs")
PY
    } >"$LOG_DIR/cs.log" 2>&1 || { tail -n 20 "$LOG_DIR/cs.log" >&2; die "CS set-up failed"; }
    echo "$layout" >"$CS/.gridgate-done"
}

# ---------------------------------------------------------------------------------------------
# The server's environment, shared by DiracX and the task runner.
write_server_env() {
    local hashed urls
    hashed="$(tr -d '\n' <"$KEYS/legacy-exchange.key" | sha256sum | cut -d' ' -f1)"
    mkdir -p "$DB_DIR"
    urls="$("$VENV/bin/python" -m diracx.db generate-local-urls "$DB_DIR")"
    umask 077
    cat >"$STATE/server.env" <<ENV
# generated by testbeds/diracx/up.sh: the DiracX server's and task runner's environment
$urls
export DIRACX_CONFIG_BACKEND_URL="git+file://$CS"
export DIRACX_SERVICE_AUTH_TOKEN_KEYSTORE="file://$KEYS/jwks.json"
export DIRACX_SERVICE_AUTH_STATE_KEY="$(cat "$KEYS/state.key")"
export DIRACX_SERVICE_AUTH_TOKEN_ISSUER="$URL"
export DIRACX_SERVICE_AUTH_ALLOWED_REDIRECTS='["$URL/docs/oauth2-redirect"]'
export DIRACX_LEGACY_EXCHANGE_HASHED_API_KEY="$hashed"
export DIRACX_SERVICE_AUTH_ACCESS_TOKEN_EXPIRE_MINUTES="$ACCESS_MINUTES"
export DIRACX_SERVICE_AUTH_REFRESH_TOKEN_EXPIRE_MINUTES="$REFRESH_MINUTES"
export DIRACX_SANDBOX_STORE_BUCKET_NAME=sandboxes
export DIRACX_SANDBOX_STORE_AUTO_CREATE_BUCKET=true
export DIRACX_SANDBOX_STORE_S3_CLIENT_KWARGS='{"endpoint_url": "$S3_URL", "aws_access_key_id": "testbed", "aws_secret_access_key": "testbed-secret"}'
export DIRACX_TASKS_REDIS_URL="$REDIS_URL"
export DIRACX_TASKS_DUMMY_JOB_EXECUTOR_ENABLED=true
export DIRACX_TASKS_DUMMY_JOB_EXECUTOR_INTERVAL_SECONDS=5
ENV
    umask 022
}

ensure_redis() {
    "$VENV/bin/python" - "$REDIS_URL" <<'PY' || die "Redis does not answer at $REDIS_URL"
import sys
import redis
redis.Redis.from_url(sys.argv[1], socket_timeout=3).ping()
PY
}

start_components() {
    if ! component_alive s3; then
        port_free "$S3_PORT" || die "port $S3_PORT is taken by a process we did not start"
        launch s3 "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT"
    fi
    wait_for "S3 server" "$S3_URL/" s3
    # shellcheck disable=SC1091
    . "$STATE/server.env"
    if ! component_alive diracx; then
        port_free "$PORT" || die "port $PORT is taken by a process we did not start"
        launch diracx "$VENV/bin/uvicorn" --factory diracx.testing.routers:create_app \
            --host 127.0.0.1 --port "$PORT"
    fi
    # the configuration cache answers 503 until it has read the repository once
    local i
    for i in $(seq 1 240); do
        answering && break
        component_alive diracx || { tail -n 20 "$LOG_DIR/diracx.log" >&2; die "DiracX exited"; }
        sleep 0.25
    done
    answering || die "DiracX does not answer $URL within 60 s (log: $LOG_DIR/diracx.log)"
    # the task runner after DiracX: DiracX's start creates the tables its tasks read
    component_alive tasks-scheduler || launch tasks-scheduler "$VENV/bin/diracx-tasks" scheduler
    component_alive tasks-worker || launch tasks-worker "$VENV/bin/diracx-tasks" worker \
        --max-concurrent-tasks 20 --worker-size small
    component_alive tasks-worker-medium || launch tasks-worker-medium "$VENV/bin/diracx-tasks" \
        worker --max-concurrent-tasks 20 --worker-size medium
}

write_client_env() {
    cat >"$STATE/env.sh" <<ENV
# DiracX 0.7.0 testbed: client environment (written by testbeds/diracx/up.sh)
export GRIDGATE_DIRACX_STATE="$STATE"
export GRIDGATE_DIRACX_URL="$URL"
export GRIDGATE_DIRACX_PYTHON="$VENV/bin/python"   # DiracX's own venv (not gridgate's)
export GRIDGATE_DIRACX_S3_URL="$S3_URL"
# the operator's legacy-exchange key (a secret: the file is 0600)
export GRIDGATE_DIRACX_LEGACY_KEY_FILE="$KEYS/legacy-exchange.key"
export GRIDGATE_DIRACX_ALICE_SUB="$ALICE_SUB"
export GRIDGATE_DIRACX_ALICE_USER="alice"
export GRIDGATE_DIRACX_ALICE_VO="cta"
export GRIDGATE_DIRACX_ALICE_GROUP="cta_user"
export GRIDGATE_DIRACX_BOB_SUB="$BOB_SUB"
export GRIDGATE_DIRACX_BOB_USER="bob"
export GRIDGATE_DIRACX_BOB_VO="km3net"
export GRIDGATE_DIRACX_BOB_GROUP="km3net_user"
# gridgate's robot (JobAdministrator, <vo>_gridgate): bulk status of every job
export GRIDGATE_DIRACX_ROBOT_USER="gridgate"
export GRIDGATE_DIRACX_ROBOT_VO="cta"
export GRIDGATE_DIRACX_ROBOT_GROUP="cta_gridgate"
ENV
    cat "$STATE/env.sh"
}

ensure_venv
ensure_keys
ensure_cs
write_server_env
ensure_redis
start_components
write_client_env
say "up: $URL (S3 $S3_URL, Redis $REDIS_URL)"
