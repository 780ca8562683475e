#!/usr/bin/env bash
# Build the Python base image the Dockerfile's BASE_IMAGE names, without Docker Hub: a minimal
# Debian bookworm made by debootstrap (its python3 is CPython 3.11, ca-certificates for TLS to
# the token issuer), imported with 'docker import' and pushed to the local registry.
# Cached there: when the registry already holds the tag, nothing is built (pulled if the engine
# lacks it). The tag carries a digest of this script, so a changed recipe builds a new image.
#
#   GRIDGATE_REGISTRY      (default 127.0.0.1:5000)
#   GRIDGATE_DOCKER_STATE  (default /var/lib/gridgate-testbeds/docker) work directory
#   DEBIAN_MIRROR          (default http://deb.debian.org/debian)
#
# Needs root (debootstrap) and a running engine and registry (testbeds/docker/up.sh).
# Prints the image reference on stdout; progress and timings on stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REGISTRY="${GRIDGATE_REGISTRY:-127.0.0.1:5000}"
STATE="${GRIDGATE_DOCKER_STATE:-/var/lib/gridgate-testbeds/docker}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
RECIPE="$(sha256sum "$HERE/base-image.sh" | cut -c1-12)"
REPOSITORY="gridgate/python"
TAG="3.11-bookworm-$RECIPE"
IMAGE="$REGISTRY/$REPOSITORY:$TAG"
ACCEPT="application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json"

say() { echo "base-image.sh: $*" >&2; }
die() { say "$*"; exit 1; }
# One build at a time: a second caller waits, then finds the image in the registry.
mkdir -p "$STATE"
exec 8>"$STATE/.base-image.lock"
flock 8

in_registry() {
    curl -fs -o /dev/null -I -H "Accept: $ACCEPT" "http://$REGISTRY/v2/$REPOSITORY/manifests/$TAG"
}

if in_registry; then
    docker image inspect "$IMAGE" >/dev/null 2>&1 || docker pull -q "$IMAGE" >&2
    say "cached: $IMAGE"
    echo "$IMAGE"
    exit 0
fi

[[ "$(id -u)" == 0 ]] || die "needs root (debootstrap)"
command -v debootstrap >/dev/null || die "debootstrap missing: run testbeds/docker/up.sh"
started=$SECONDS
work="$STATE/base-build"
rm -rf "$work"
mkdir -p "$work"
rootfs="$work/rootfs"
debootstrap --variant=minbase --include=python3,ca-certificates bookworm "$rootfs" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
say "debootstrap done in $((SECONDS - started)) s"

# Nothing the services use: package lists and caches, documentation, man pages, locales.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
python_version="$(chroot "$rootfs" /usr/bin/python3 -c 'import sys; print(sys.version.split()[0])')"

tar --numeric-owner -C "$rootfs" -c . | docker import \
    -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["/usr/bin/python3"]' \
    -m "debootstrap --variant=minbase bookworm + python3 $python_version (testbeds/docker/base-image.sh)" \
    - "$IMAGE" >&2
docker push -q "$IMAGE" >&2 || die "push to $REGISTRY failed"
in_registry || die "the registry does not list $IMAGE after the push"
rm -rf "$work"
say "built $IMAGE (python $python_version, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')) in $((SECONDS - started)) s"
echo "$IMAGE"
