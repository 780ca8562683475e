#!/usr/bin/env bash
# Stop the dockerd and registry that up.sh started, by their recorded PIDs only; an engine or
# registry that up.sh found already running is left alone. Images and the registry's storage
# stay in $GRIDGATE_DOCKER_STATE (delete that directory to start from nothing).
set -euo pipefail

STATE="${GRIDGATE_DOCKER_STATE:-/var/lib/gridgate-testbeds/docker}"

stop() {  # stop NAME PIDFILE EXPECTED-COMMAND
    local name=$1 pid_file=$2 expected=$3 pid
    [[ -f "$pid_file" ]] || { echo "docker down.sh: $name not started by up.sh"; return 0; }
    pid="$(cat "$pid_file" 2>/dev/null || true)"
    # Guard against PID reuse: signal only if the PID still runs the program we started.
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
        && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$expected"; then
        kill -TERM "$pid"
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "docker down.sh: $name (pid $pid) still running after 15 s"
            return 1
        fi
        echo "docker down.sh: stopped $name (pid $pid)"
    else
        echo "docker down.sh: $name (pid $pid) not running"
    fi
    rm -f "$pid_file"
}

stop dockerd "$STATE/dockerd.pid" dockerd
stop registry "$STATE/registry.pid" docker-registry
