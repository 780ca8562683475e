# Shared by the testbed's scripts: paths, ports, component table and the process helpers.
# Sourced after HERE (the testbed's directory) is set; never executed.

REPO="$(cd "$HERE/../.." && pwd)"
TESTBED_DIR="${GRIDGATE_TESTBED_DIR:-$REPO/var/testbeds}"
STATE="$TESTBED_DIR/dirac"

DIRAC_VERSION=8.0.86
VENV="$STATE/venv"
RUN_DIR="$STATE/run"
LOG_DIR="$STATE/logs"
MYSQL_DIR="$STATE/mysql"
SERVER_ROOT="$STATE/server"
CLIENT_ROOT="$STATE/client"
ROBOT_ROOT="$STATE/robot"
CERT_DIR="$STATE/certificates"     # X509_CERT_DIR of every role: CA certs, hash links, CRLs
CA_DIR="$STATE/ca"
USERS_DIR="$STATE/users"
PROXY_DIR="$STATE/proxies"
MYSQL_PORT=13306
# test-only credentials of the private MariaDB (loopback only)
DB_ROOT_PW=rootpw
DB_DIRAC_PW=diracpw
SITE=DIRAC.Testbed.local
# JobAgents per VO: a host-certificate pilot serves a single VO (the Matcher requires it), and
# each agent runs one job at a time (InProcess CE) and matches at most one job per 10 s
PILOT_VOS=(cta km3net)
AGENTS_PER_VO=${GRIDGATE_DIRAC_AGENTS_PER_VO:-2}
[[ "$AGENTS_PER_VO" =~ ^[1-9]$ ]] || { echo "GRIDGATE_DIRAC_AGENTS_PER_VO must be 1-9" >&2; exit 2; }
JOBAGENTS=()
for _vo in "${PILOT_VOS[@]}"; do
    for _i in $(seq 1 "$AGENTS_PER_VO"); do JOBAGENTS+=("$_vo-$_i"); done
done
unset _vo _i

# name, port ("-" = none), command; started in this order (see up.sh)
SERVICES=(
    "CS 9135 dirac-service Configuration/Server"
    "ProxyManager 9152 dirac-service Framework/ProxyManager"
    "JobMonitoring 9130 dirac-service WorkloadManagement/JobMonitoring"
    "JobStateUpdate 9136 dirac-service WorkloadManagement/JobStateUpdate"
    "Matcher 9170 dirac-service WorkloadManagement/Matcher"
    "WMSAdministrator 9145 dirac-service WorkloadManagement/WMSAdministrator"
    "PilotManager 9171 dirac-service WorkloadManagement/PilotManager"
    "SandboxStore 9196 dirac-service WorkloadManagement/SandboxStore"
    "DataStore 9133 dirac-service Accounting/DataStore"
    "OptimizationMind 9175 dirac-service WorkloadManagement/OptimizationMind"
    "Optimizers - dirac-executor WorkloadManagement/JobPath WorkloadManagement/JobSanity WorkloadManagement/InputData WorkloadManagement/JobScheduling"
    "JobManager 9132 dirac-service WorkloadManagement/JobManager"
)
DATABASES=(ProxyDB JobDB JobLoggingDB TaskQueueDB SandboxMetadataDB PilotAgentsDB AccountingDB)
# every process up.sh starts, in stop order for down.sh (JobAgent first, MariaDB last)
COMPONENTS=("${JOBAGENTS[@]/#/JobAgent-}" JobManager Optimizers OptimizationMind DataStore SandboxStore PilotManager
            WMSAdministrator Matcher JobStateUpdate JobMonitoring ProxyManager CS mariadb)

die() { echo "dirac $(basename "$0"): $*" >&2; exit 1; }

# The environment of each DIRAC role, as an `env` command line in ENV_CMD (so that launch can
# run it in a new session too). Variables a caller may have set for another DIRAC (proxy, extra
# config files) are dropped so they cannot leak into the testbed.
LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
role_env() {
    local root
    case $1 in
        server) root=$SERVER_ROOT ;;
        client) root=$CLIENT_ROOT ;;
        pilot-*) root="$STATE/$1" ;;
        robot) root=$ROBOT_ROOT ;;
    esac
    ENV_CMD=(env -u X509_USER_PROXY -u X509_USER_CERT -u X509_USER_KEY -u DIRACSYSCONFIG
             -u PYTHONPATH -u PYTHONHOME
             DIRAC_ROOT_PATH="$root" X509_CERT_DIR="$CERT_DIR" X509_VOMS_DIR="$CERT_DIR"
             PATH="$VENV/bin:$PATH")
    # servers get the loopback-only bind shim (DISET has no listen-address option)
    [[ $1 == server ]] && ENV_CMD+=(PYTHONPATH="$LIB_DIR/shim")
    return 0
}
server_env() { role_env server; "${ENV_CMD[@]}" "$@"; }
client_env() { role_env client; "${ENV_CMD[@]}" "$@"; }
robot_env() { role_env robot; "${ENV_CMD[@]}" "$@"; }

# pid file: line 1 the pid, line 2 a string its /proc/<pid>/cmdline must contain (guards
# against a recycled pid); the pid leads its own process group (setsid), so down.sh can stop
# the process together with its children (job wrappers, the agent under its loop).
component_pid() {
    local f="$RUN_DIR/$1.pid" pid pattern
    [[ -f "$f" ]] || return 1
    { read -r pid; read -r pattern; } <"$f" || true
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern" || return 1
    echo "$pid"
}
component_alive() { component_pid "$1" >/dev/null; }
all_running() {
    local c
    for c in "${COMPONENTS[@]}"; do component_alive "$c" || return 1; done
}

# launch NAME CMD...: start CMD in a new session, log to $LOG_DIR/NAME.log, pid to the pid file;
# the pid file's pattern is $LAUNCH_PATTERN, or CMD's last word
launch() {
    local name=$1; shift
    local pidfile="$RUN_DIR/$name.pid" i
    rm -f "$pidfile" "$pidfile.new"
    # the inner bash writes its own pid, then exec()s: the pid file holds the real process,
    # whether or not setsid had to fork
    # 9>&-: not up.sh's lock (fd 9); a component holding it would block every later up.sh
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile.new" "$@" \
        >>"$LOG_DIR/$name.log" 2>&1 </dev/null 9>&- &
    for i in $(seq 1 100); do [[ -s "$pidfile.new" ]] && break; sleep 0.05; done
    [[ -s "$pidfile.new" ]] || die "$name did not start"
    { cat "$pidfile.new"; echo "${LAUNCH_PATTERN:-${!#}}"; } >"$pidfile"
    rm -f "$pidfile.new"
}

port_free() { ! ss -ltnH "sport = :$1" | grep -q .; }

# wait until NAME listens on 127.0.0.1:PORT (DISET shows it as ::ffff:127.0.0.1)
wait_port() {
    local name=$1 port=$2 i
    for i in $(seq 1 1200); do
        if ! port_free "$port"; then return 0; fi
        component_alive "$name" || { tail -n 20 "$LOG_DIR/$name.log" >&2; die "$name exited during start-up (log: $LOG_DIR/$name.log)"; }
        sleep 0.1
    done
    die "$name does not listen on $port after 120 s (log: $LOG_DIR/$name.log)"
}

# everything a client (gridgate's DIRAC adapter, smoke.py, a developer's shell) needs
write_env_file() {
    local f="$STATE/env.sh" u uc
    {
        echo "# DIRAC $DIRAC_VERSION testbed: client environment (written by testbeds/dirac/up.sh)"
        echo "export GRIDGATE_DIRAC_STATE=\"$STATE\""
        echo "export GRIDGATE_DIRAC_PYTHON=\"$VENV/bin/python\"   # DIRAC's own venv (not gridgate's)"
        echo "export GRIDGATE_DIRAC_BIN=\"$VENV/bin\"              # dirac-* commands"
        echo "# DIRAC 8.0 finds its local config as \$DIRAC_ROOT_PATH/etc/dirac.cfg (set it before"
        echo "# importing DIRAC); DIRACSYSCONFIG=file1,file2 may add more files"
        echo "export DIRAC_ROOT_PATH=\"$CLIENT_ROOT\""
        echo "export DIRAC=\"$CLIENT_ROOT\""
        echo "export GRIDGATE_DIRAC_CFG=\"$CLIENT_ROOT/etc/dirac.cfg\""
        echo "# a process with no proxy file reads the CS as gridgate-robot: DIRAC_ROOT_PATH=robot root"
        echo "export GRIDGATE_DIRAC_ROBOT_ROOT=\"$ROBOT_ROOT\""
        echo "export GRIDGATE_DIRAC_ROBOT_CERT=\"$ROBOT_ROOT/etc/grid-security/hostcert.pem\""
        echo "export GRIDGATE_DIRAC_ROBOT_KEY=\"$ROBOT_ROOT/etc/grid-security/hostkey.pem\""
        echo "export X509_CERT_DIR=\"$CERT_DIR\"   # trusted CAs: <hash>.0 -> CA cert"
        echo "export X509_VOMS_DIR=\"$CERT_DIR\""
        echo "export GRIDGATE_DIRAC_CA_CERT=\"$CA_DIR/ca.cert.pem\""
        echo "export GRIDGATE_DIRAC_CA_KEY=\"$CA_DIR/ca.key.pem\""
        echo "export GRIDGATE_DIRAC_CS_URL=\"dips://localhost:9135/Configuration/Server\""
        echo "export GRIDGATE_DIRAC_SITE=\"$SITE\""
        echo "# test users: certificate, key (unencrypted), DN, group; proxies/<user> = group proxy"
        for u in "$USERS_DIR"/*/; do
            u=$(basename "$u")
            uc=${u^^}
            echo "export GRIDGATE_DIRAC_${uc}_CERT=\"$USERS_DIR/$u/usercert.pem\""
            echo "export GRIDGATE_DIRAC_${uc}_KEY=\"$USERS_DIR/$u/userkey.pem\""
            echo "export GRIDGATE_DIRAC_${uc}_DN=\"$(cat "$USERS_DIR/$u/dn")\""
            echo "export GRIDGATE_DIRAC_${uc}_GROUP=\"$(cat "$USERS_DIR/$u/group")\""
            echo "export GRIDGATE_DIRAC_${uc}_PROXY=\"$PROXY_DIR/$u\""
            # the user's IAM subject: the CS links it to the user (Registry/Users/<u>/ID)
            if [[ -f "$USERS_DIR/$u/sub" ]]; then
                echo "export GRIDGATE_DIRAC_${uc}_SUB=\"$(cat "$USERS_DIR/$u/sub")\""
            fi
        done
    } >"$f.new"
    mv "$f.new" "$f"
}
