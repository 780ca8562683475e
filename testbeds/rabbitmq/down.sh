#!/usr/bin/env bash
# Stop the chaos suite's RabbitMQ node started by up.sh (no-op if not running). --purge also
# removes its data directory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
NODE="${GRIDGATE_CHAOS_BROKER_NODE:-gridgate-chaos@localhost}"
TESTBED_DIR="${GRIDGATE_TESTBED_DIR:-$REPO/var/testbeds}"
STATE="$TESTBED_DIR/rabbitmq"
PID_FILE="$STATE/pid"

if [[ -f "$PID_FILE" ]] && command -v rabbitmqctl >/dev/null; then
    # A clean stop first: 'stop PIDFILE' returns once the node's process has exited.
    timeout 60 rabbitmqctl -n "$NODE" -q stop "$PID_FILE" >/dev/null 2>&1 || true
fi
# shellcheck source=../lib/stop_pid.sh
. "$HERE/../lib/stop_pid.sh"
# our Erlang VM (its command line does not name the node)
stop_by_pid_file "rabbitmq down.sh" "$PID_FILE" "beam.smp" 100
if [[ "${1:-}" == "--purge" ]]; then
    rm -rf "$STATE"
fi
