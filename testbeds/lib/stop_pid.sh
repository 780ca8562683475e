# shellcheck shell=bash
# Stopping a testbed daemon by its PID file, shared by the testbeds' down.sh scripts.
#
#   stop_by_pid_file LABEL PID_FILE CMDLINE_MARK [WAIT_TENTHS]
#
# Signals the PID only while its command line still contains CMDLINE_MARK (a PID may have been
# reused since up.sh wrote it): SIGTERM, up to WAIT_TENTHS tenths of a second to exit, then
# SIGKILL to its process group (daemons started with setsid) or to the process itself.
# Removes the PID file in every case.
stop_by_pid_file() {
    local label=$1 pid_file=$2 mark=$3 wait_tenths=${4:-100} pid
    if [[ ! -f "$pid_file" ]]; then
        echo "$label: not running (no $pid_file)"
        return 0
    fi
    pid="$(cat "$pid_file" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
        && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$mark"; then
        kill -TERM "$pid"
        for _ in $(seq 1 "$wait_tenths"); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "$label: stopped pid $pid"
    else
        echo "$label: pid ${pid:-?} not running"
    fi
    rm -f "$pid_file"
}
