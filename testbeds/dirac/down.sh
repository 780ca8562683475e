#!/usr/bin/env bash
# Stop the DIRAC testbed processes that up.sh started, by their pid files (no-op if none runs).
# Each pid leads its own process group, so children (the JobAgent under its restart loop, a job
# wrapper it runs) stop with it. State (venv, DBs, certificates, CS) is kept: up.sh restarts in
# seconds. Remove $GRIDGATE_TESTBED_DIR/dirac after down.sh to start from nothing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"

[[ -d "$RUN_DIR" ]] || { echo "dirac down.sh: not running (no $RUN_DIR)"; exit 0; }

group_alive() { kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null; }

# stop NAME...: TERM each process group at once, wait up to 15 s for all, then KILL the rest
stop() {
    local name pid names=() pids=() i
    for name in "$@"; do
        if pid=$(component_pid "$name"); then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            names+=("$name")
            pids+=("$pid")
        fi
        rm -f "$RUN_DIR/$name.pid"
    done
    for _ in $(seq 1 150); do
        local left=0
        for pid in "${pids[@]}"; do group_alive "$pid" && left=1; done
        [[ $left -eq 0 ]] && break
        sleep 0.1
    done
    for i in "${!pids[@]}"; do
        if group_alive "${pids[$i]}"; then
            kill -KILL -- "-${pids[$i]}" 2>/dev/null || kill -KILL "${pids[$i]}" 2>/dev/null || true
            echo "dirac down.sh: killed ${names[$i]} (pid ${pids[$i]}) after 15 s"
        else
            echo "dirac down.sh: stopped ${names[$i]} (pid ${pids[$i]})"
        fi
    done
}

# the JobAgents first (no new matches, their job wrappers go with them), then the DIRAC
# services together, MariaDB last (services may still write on their way out). Every
# JobAgent pid file counts, also of agents an earlier layout or GRIDGATE_DIRAC_AGENTS_PER_VO
# started.
agents=() services=()
for name in "${COMPONENTS[@]}"; do
    case $name in
        JobAgent-*) agents+=("$name") ;;
        mariadb) ;;
        *) services+=("$name") ;;
    esac
done
for pidfile in "$RUN_DIR"/JobAgent-*.pid; do
    [[ -e "$pidfile" ]] || continue
    name=$(basename "$pidfile" .pid)
    [[ " ${agents[*]} " == *" $name "* ]] || agents+=("$name")
done
stop "${agents[@]}"
stop "${services[@]}"
stop mariadb
