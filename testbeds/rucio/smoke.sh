#!/usr/bin/env bash
# Smoke test of the Rucio testbed (and the WebDAV storage testbed behind WEBDAV-LOCAL) with the
# official Rucio client, in the testbed's own venv. Both testbeds must be up (up.sh of each).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TESTBED_DIR="${GRIDGATE_TESTBED_DIR:-$REPO/var/testbeds}"
for env in "$TESTBED_DIR/rucio/env.sh" "$TESTBED_DIR/storage/env.sh"; do
    [[ -f "$env" ]] || { echo "rucio smoke.sh: $env missing; run testbeds/{storage,rucio}/up.sh" >&2; exit 1; }
    # shellcheck disable=SC1090
    . "$env"
done
curl -fsS -o /dev/null --max-time 5 "$GRIDGATE_RUCIO_URL/ping" \
    || { echo "rucio smoke.sh: no Rucio server at $GRIDGATE_RUCIO_URL; run testbeds/rucio/up.sh" >&2; exit 1; }
curl -fsS -o /dev/null --max-time 5 "$GRIDGATE_STORAGE_URL" \
    || { echo "rucio smoke.sh: no WebDAV server at $GRIDGATE_STORAGE_URL; run testbeds/storage/up.sh" >&2; exit 1; }
export GRIDGATE_RUCIO_WORK="$TESTBED_DIR/rucio/work"
mkdir -p "$GRIDGATE_RUCIO_WORK"
exec "$GRIDGATE_RUCIO_PYTHON" "$HERE/smoke.py" "$@"
