#!/usr/bin/env bash
# Stop the Rucio testbed server started by up.sh (no-op if not running).
#   --purge   also drop its database and role and delete its state (configs, posix RSE files,
#             logs), keeping the venv ($STATE/venv; delete it by hand to reinstall)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TESTBED_DIR="${GRIDGATE_TESTBED_DIR:-$REPO/var/testbeds}"
STATE="$TESTBED_DIR/rucio"
PID_FILE="$STATE/server.pid"
PG_HOST="${GRIDGATE_RUCIO_PG_HOST:-127.0.0.1}"
PG_PORT="${GRIDGATE_RUCIO_PG_PORT:-5432}"
PG_ADMIN="${GRIDGATE_RUCIO_PG_ADMIN:-postgres}"
DB="${GRIDGATE_RUCIO_DB:-gridgate_rucio}"
PURGE=0
for arg in "$@"; do
    case "$arg" in
        --purge) PURGE=1 ;;
        *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
    esac
done

# shellcheck source=../lib/stop_pid.sh
. "$HERE/../lib/stop_pid.sh"
# our gunicorn master (in its own session): it stops its workers
stop_by_pid_file "rucio down.sh" "$PID_FILE" "$STATE/venv/bin/gunicorn" 150

if [[ $PURGE -eq 1 ]]; then
    psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_ADMIN" -d postgres -v ON_ERROR_STOP=1 -qtA \
        -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" -c "DROP ROLE IF EXISTS \"$DB\"" \
        && echo "rucio down.sh: dropped database and role $DB"
    find "$STATE" -mindepth 1 -maxdepth 1 ! -name venv -exec rm -rf {} +
    echo "rucio down.sh: removed $STATE (kept venv)"
fi
