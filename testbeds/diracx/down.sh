#!/usr/bin/env bash
# Stop the DiracX testbed processes that up.sh started, by their pid files (no-op if none runs).
# State (venv, keys, configuration, SQLite databases) is kept: up.sh restarts in seconds.
#   --purge   also remove $GRIDGATE_TESTBED_DIR/diracx (the S3 store is in memory: gone anyway)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"
# shellcheck source=../lib/stop_pid.sh
. "$HERE/../lib/stop_pid.sh"
PURGE=0
for arg in "$@"; do
    case "$arg" in
        --purge) PURGE=1 ;;
        *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
    esac
done

# the task runner first (it writes to the databases), DiracX, then the S3 server
for name in tasks-worker tasks-worker-medium tasks-scheduler diracx s3; do
    stop_by_pid_file "diracx down.sh: $name" "$RUN_DIR/$name.pid" "$VENV" 100
done
if [[ $PURGE -eq 1 ]]; then
    # the task runner's streams in Redis (our database only) name jobs of the removed databases
    if [[ -x "$VENV/bin/python" ]]; then
        "$VENV/bin/python" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1]).flushdb()' \
            "$REDIS_URL" || echo "diracx down.sh: could not empty $REDIS_URL"
    fi
    rm -rf "$STATE"
    echo "diracx down.sh: removed $STATE"
fi
