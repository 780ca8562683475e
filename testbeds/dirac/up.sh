#!/usr/bin/env bash
# Start the gridgate DIRAC 8.0.86 testbed on loopback (idempotent).
#
# A private MariaDB, a private CA with host and user certificates, a master CS with VOs cta and
# km3net, the WMS services and optimizers, and JobAgents per VO (InProcess CE, one job at a
# time each) that run every matched job.
# When everything already runs it only prints the client environment.
#
#   GRIDGATE_TESTBED_DIR  (default <repo>/var/testbeds); state in $GRIDGATE_TESTBED_DIR/dirac/
#   PYTHON                base interpreter for the DIRAC venv (default python3; must be 3.11)
#   GRIDGATE_DIRAC_AGENTS_PER_VO  JobAgents per VO, i.e. jobs a VO runs at once (default 2)
#
# Prints the client environment and writes it to $STATE/env.sh. down.sh stops what this started.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"

T_START=$(date +%s.%N)
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.1f}')" "$(date +%s.%N)" "$1"; }
step() { echo "dirac up.sh: $*" >&2; }

# ---------------------------------------------------------------------------------------------
# Fast path: nothing to do when every component we started is alive (and the venv is complete).
exit_if_running() {
    if [[ -f "$VENV/.installed" ]] && all_running && [[ -f "$STATE/env.sh" ]]; then
        cat "$STATE/env.sh"
        step "already running ($(elapsed "$T_START") s)"
        exit 0
    fi
}
exit_if_running
mkdir -p "$STATE" "$RUN_DIR" "$LOG_DIR"
# one up.sh at a time (two would start every component twice); the other may have finished
exec 9>"$STATE/.up.lock"
flock 9
exit_if_running

# ---------------------------------------------------------------------------------------------
# System packages: only the missing ones, and `apt-get update` only when apt does not know one.
APT_PACKAGES=(mariadb-server mariadb-client libmariadb-dev pkg-config swig libssl-dev
              build-essential python3-dev openssl iproute2)
ensure_apt() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    step "apt-get install ${missing[*]}"
    # One apt-get at a time on this machine: other testbeds may install packages meanwhile.
    local unknown=0
    for p in "${missing[@]}"; do
        [[ -n "$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)"')" ]] || unknown=1
    done
    if [[ $unknown -eq 1 ]]; then $sudo flock /var/lock/gridgate-apt.lock apt-get -o DPkg::Lock::Timeout=600 update -qq; fi
    DEBIAN_FRONTEND=noninteractive $sudo flock /var/lock/gridgate-apt.lock apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# ---------------------------------------------------------------------------------------------
# DIRAC's own venv: its pins (SQLAlchemy 1.4-era code, tornado 5.1) clash with gridgate's.
ensure_venv() {
    [[ -f "$VENV/.installed" && "$(cat "$VENV/.installed")" == "$DIRAC_VERSION" ]] && return 0
    local py="${PYTHON:-python3}" t0
    t0=$(date +%s.%N)
    "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
        || die "$py is not Python 3.11 (DIRAC $DIRAC_VERSION is tested with 3.11)"
    rm -rf "$VENV"
    step "creating $VENV (pip install, builds M2Crypto / mysqlclient / tornado from source)"
    "$py" -m venv --copies "$VENV"
    # The JobAgent's job wrapper runs os.path.realpath(sys.executable): a symlinked venv python
    # resolves to the base interpreter, which cannot import DIRAC. Make it a real file.
    if [[ "$(readlink -f "$VENV/bin/python3.11")" != "$VENV/bin/python3.11" ]]; then
        local base
        base="$("$py" -c 'import os, sys; print(os.path.realpath(sys.executable))')"
        rm -f "$VENV/bin/python" "$VENV/bin/python3" "$VENV/bin/python3.11"
        cp "$base" "$VENV/bin/python3.11"
        ln -s python3.11 "$VENV/bin/python3"
        ln -s python3.11 "$VENV/bin/python"
    fi
    # gfal2-python is left out: it does not build against Debian bookworm's gfal2 and only the
    # GFAL2 storage plugins need it. So: pinned requirements first, then DIRAC without deps.
    { "$VENV/bin/pip" install -q -r "$HERE/requirements.txt" &&
      "$VENV/bin/pip" install -q --no-deps "DIRAC==$DIRAC_VERSION"; } >"$LOG_DIR/pip.log" 2>&1 \
        || { tail -n 30 "$LOG_DIR/pip.log" >&2; die "pip install failed (log: $LOG_DIR/pip.log)"; }
    "$VENV/bin/python" -c 'import DIRAC, M2Crypto, MySQLdb' \
        || die "DIRAC venv is incomplete ($VENV)"
    echo "$DIRAC_VERSION" >"$VENV/.installed"
    step "venv ready in $(elapsed "$t0") s"
}

# ---------------------------------------------------------------------------------------------
# Private MariaDB: own datadir, socket and port, loopback only; the machine's MariaDB (3306)
# and its /etc/mysql configuration are never touched (--defaults-file only).
mysql_root() { mariadb --defaults-file="$MYSQL_DIR/my.cnf" -uroot -p"$DB_ROOT_PW" "$@"; }
ensure_mariadb() {
    mkdir -p "$MYSQL_DIR/data" "$MYSQL_DIR/run"
    cat >"$MYSQL_DIR/my.cnf" <<CNF
[mysqld]
datadir=$MYSQL_DIR/data
socket=$MYSQL_DIR/run/mysqld.sock
pid-file=$MYSQL_DIR/run/mysqld.pid
port=$MYSQL_PORT
bind-address=127.0.0.1
user=$(id -un)
skip-name-resolve
innodb_buffer_pool_size=128M
max_connections=300
log-error=$MYSQL_DIR/mysqld.err
[client]
socket=$MYSQL_DIR/run/mysqld.sock
port=$MYSQL_PORT
CNF
    local fresh=0
    if [[ ! -d "$MYSQL_DIR/data/mysql" ]]; then
        mariadb-install-db --defaults-file="$MYSQL_DIR/my.cnf" \
            --auth-root-authentication-method=normal >"$MYSQL_DIR/install.log" 2>&1 \
            || die "mariadb-install-db failed (see $MYSQL_DIR/install.log)"
        fresh=1
    fi
    if ! component_alive mariadb; then
        port_free "$MYSQL_PORT" || die "port $MYSQL_PORT is taken by a process we did not start"
        launch mariadb mariadbd --defaults-file="$MYSQL_DIR/my.cnf"
    fi
    local i
    for i in $(seq 1 120); do
        if [[ $fresh -eq 1 ]]; then
            mariadb --defaults-file="$MYSQL_DIR/my.cnf" -uroot -e 'select 1' >/dev/null 2>&1 && break
        else
            mysql_root -e 'select 1' >/dev/null 2>&1 && break
        fi
        component_alive mariadb || die "mariadbd exited (see $MYSQL_DIR/mysqld.err)"
        sleep 0.25
    done
    [[ $i -lt 120 ]] || die "mariadbd does not answer (see $MYSQL_DIR/mysqld.err)"
    if [[ $fresh -eq 1 ]]; then
        # DIRAC's installDatabase() GRANTs to 'Dirac'@'%': a more specific Dirac@localhost or
        # Dirac@127.0.0.1 (or an anonymous user) would win at login and lack the grants.
        mariadb --defaults-file="$MYSQL_DIR/my.cnf" -uroot <<SQL
ALTER USER 'root'@'localhost' IDENTIFIED BY '$DB_ROOT_PW';
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '$DB_ROOT_PW';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$DB_ROOT_PW';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
DROP USER IF EXISTS ''@'localhost';
DROP USER IF EXISTS ''@'$(hostname)';
DROP USER IF EXISTS 'Dirac'@'127.0.0.1';
DROP USER IF EXISTS 'Dirac'@'localhost';
CREATE USER IF NOT EXISTS 'Dirac'@'%' IDENTIFIED BY '$DB_DIRAC_PW';
FLUSH PRIVILEGES;
SQL
    fi
    # what DIRAC will do: log in over TCP (DIRAC retries a refused login for minutes)
    local user pw
    for user in root Dirac; do
        pw=$DB_ROOT_PW
        [[ $user == Dirac ]] && pw=$DB_DIRAC_PW
        mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$MYSQL_PORT" -u"$user" -p"$pw" \
            -e 'select 1' >/dev/null 2>&1 || die "MariaDB refuses $user@127.0.0.1:$MYSQL_PORT"
    done
}

# ---------------------------------------------------------------------------------------------
# Certificates: a private CA, the host (CN=localhost) and one certificate per test user.
ensure_certs() {
    "$HERE/lib/certs.sh" "$STATE" >/dev/null
}

# ---------------------------------------------------------------------------------------------
# Services, one process each (no runit), in the order that avoids start-up retries:
# OptimizationMind and the optimizers before JobManager, which connects to them at start.
start_services() {
    local entry name port cmd
    for entry in "${SERVICES[@]}"; do
        read -r name port cmd <<<"$entry"
        if ! component_alive "$name"; then
            if [[ "$port" != "-" ]]; then
                port_free "$port" || die "port $port ($name) is taken by a process we did not start"
            fi
            role_env server
            # shellcheck disable=SC2086  # cmd is a word list on purpose
            (cd "$SERVER_ROOT" && launch "$name" "${ENV_CMD[@]}" $cmd)
            [[ "$port" == "-" ]] || wait_port "$name" "$port"
        fi
        # the DBs need the master CS (installDatabase reads it) and the services need the DBs
        if [[ "$name" == "CS" ]]; then ensure_dbs; fi
    done
}

ensure_dbs() {
    local existing missing=() db
    existing="$(mysql_root -N -e 'SHOW DATABASES')"
    for db in "${DATABASES[@]}"; do
        grep -qx "$db" <<<"$existing" || missing+=("$db")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    step "creating databases ${missing[*]}"
    (cd "$SERVER_ROOT" && server_env "$VENV/bin/python" "$HERE/lib/install_dbs.py" \
        "$DB_ROOT_PW" "$DB_DIRAC_PW" "${missing[@]}") >"$LOG_DIR/install_dbs.log" 2>&1 \
        || { tail -n 20 "$LOG_DIR/install_dbs.log" >&2; die "database creation failed"; }
}

# ---------------------------------------------------------------------------------------------
# First-use state in the services: the site in the WMS site mask, and the test users' proxies
# in the ProxyManager (the JobAgent downloads the job owner's proxy from there to run a job).
bootstrap() {
    (cd "$ROBOT_ROOT" && robot_env "$VENV/bin/python" "$HERE/lib/bootstrap.py" "$STATE") \
        >"$LOG_DIR/bootstrap.log" 2>&1 \
        || { tail -n 30 "$LOG_DIR/bootstrap.log" >&2; die "bootstrap failed"; }
}

start_jobagents() {
    local agent
    for agent in "${JOBAGENTS[@]}"; do
        component_alive "JobAgent-$agent" && continue
        mkdir -p "$STATE/pilot-$agent/work"
        role_env "pilot-$agent"
        (cd "$STATE/pilot-$agent/work" && LAUNCH_PATTERN="jobagent_loop.sh $agent" \
            launch "JobAgent-$agent" "${ENV_CMD[@]}" "$HERE/lib/jobagent_loop.sh" "$agent")
    done
}

# ---------------------------------------------------------------------------------------------
ensure_apt
ensure_venv
ensure_certs
# configs: local ones are rewritten each time; the testbed's CS content is merged into the CS
# file (users added at run time by register_user.sh survive), unless the CS runs: it owns the
# file then, and the merge waits for the next start
configure_args=(--agents "$AGENTS_PER_VO")
if component_alive CS; then configure_args+=(--cs-running); fi
"$VENV/bin/python" "$HERE/lib/configure.py" "$STATE" "${configure_args[@]}" \
    >"$LOG_DIR/configure.log" 2>&1 \
    || { cat "$LOG_DIR/configure.log" >&2; die "configuration failed"; }
ensure_mariadb
t_services=$(date +%s.%N)
start_services
step "services up in $(elapsed "$t_services") s"
bootstrap
start_jobagents
write_env_file
cat "$STATE/env.sh"
step "ready in $(elapsed "$T_START") s"
