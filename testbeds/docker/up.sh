#!/usr/bin/env bash
# Start a real Docker engine (Debian's dockerd) and a real image registry (Debian's
# docker-registry, the CNCF distribution) on this machine, for the deployment tests.
# Idempotent: an engine that already answers on the socket, or a registry that already answers
# on $GRIDGATE_REGISTRY, is reused and never stopped by down.sh. Needs root (apt-get, dockerd).
#
#   GRIDGATE_DOCKER_STATE  (default /var/lib/gridgate-testbeds/docker) engine data root, registry
#                          storage, PID files and logs. Machine-wide on purpose: the base image in
#                          the registry and the engine's layer cache outlive a fresh clone, so CI
#                          builds the base image once per machine.
#   GRIDGATE_REGISTRY      (default 127.0.0.1:5000) plain HTTP on loopback, no authentication.
#   DOCKER_HOST            (default unix:///var/run/docker.sock)
#
# Prints shell assignments (DOCKER_HOST=..., GRIDGATE_REGISTRY=...) on stdout; progress on stderr.
set -euo pipefail

STATE="${GRIDGATE_DOCKER_STATE:-/var/lib/gridgate-testbeds/docker}"
REGISTRY="${GRIDGATE_REGISTRY:-127.0.0.1:5000}"
DOCKER_HOST="${DOCKER_HOST:-unix:///var/run/docker.sock}"
SOCKET="${DOCKER_HOST#unix://}"
PACKAGES="docker.io docker-registry debootstrap curl"

die() { echo "docker up.sh: $*" >&2; exit 1; }
say() { echo "docker up.sh: $*" >&2; }
alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
registry_answers() { curl -fsS -o /dev/null --max-time 2 "http://$REGISTRY/v2/" 2>/dev/null; }
engine_answers() { curl -fsS -o /dev/null --max-time 2 --unix-socket "$SOCKET" http://docker/_ping 2>/dev/null; }
wait_until() {  # wait_until SECONDS COMMAND...
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do (( SECONDS < deadline )) || return 1; sleep 0.2; done
}

[[ "$DOCKER_HOST" == unix://* ]] || die "DOCKER_HOST must be a unix socket here, not $DOCKER_HOST"
[[ "$(id -u)" == 0 ]] || die "needs root (apt-get, dockerd)"
mkdir -p "$STATE/registry" "$STATE/logs"

# Install only what is missing: 'apt-get install X' on an installed X would upgrade it too.
missing=""
for package in $PACKAGES; do
    dpkg -s "$package" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$missing $package"
done
if [[ -n "$missing" ]]; then
    say "installing$missing"
    # One apt-get at a time on this machine: other testbeds may install packages meanwhile.
    flock /var/lock/gridgate-apt.lock apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive flock /var/lock/gridgate-apt.lock apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing \
        >"$STATE/logs/apt.log" 2>&1 || { tail -n 20 "$STATE/logs/apt.log" >&2; die "apt-get failed"; }
fi

if registry_answers; then
    alive "$STATE/registry.pid" || say "reusing the registry already answering on $REGISTRY"
else
    rm -f "$STATE/registry.pid"
    cat >"$STATE/registry/config.yml" <<CONF
version: 0.1
log: {level: warn}
storage:
  cache: {blobdescriptor: inmemory}
  filesystem: {rootdirectory: $STATE/registry/data}
  delete: {enabled: true}
http:
  addr: $REGISTRY
CONF
    nohup docker-registry serve "$STATE/registry/config.yml" >>"$STATE/logs/registry.log" 2>&1 </dev/null &
    echo $! >"$STATE/registry.pid"
    wait_until 20 registry_answers || { tail -n 20 "$STATE/logs/registry.log" >&2; die "the registry did not answer on $REGISTRY"; }
    say "registry up on $REGISTRY (pid $(cat "$STATE/registry.pid"))"
fi

if engine_answers; then
    alive "$STATE/dockerd.pid" || say "reusing the engine already answering on $SOCKET"
else
    rm -f "$STATE/dockerd.pid"
    mkdir -p "$STATE/data"
    # dockerd starts its own containerd. It creates docker0 and iptables NAT rules; loopback
    # registries are insecure (plain HTTP) by default, the flag says so explicitly.
    nohup dockerd --data-root "$STATE/data" -H "unix://$SOCKET" --pidfile "$STATE/dockerd.pid" \
        --storage-driver overlay2 --insecure-registry "$REGISTRY" \
        >>"$STATE/logs/dockerd.log" 2>&1 </dev/null &
    wait_until 60 engine_answers || { tail -n 30 "$STATE/logs/dockerd.log" >&2; die "dockerd did not answer on $SOCKET"; }
    say "dockerd up on $SOCKET (pid $(cat "$STATE/dockerd.pid"))"
fi

echo "DOCKER_HOST=unix://$SOCKET"
echo "GRIDGATE_REGISTRY=$REGISTRY"
