# syntax=docker/dockerfile:1
# One image per service: docker build --build-arg SERVICE=gateway -t gridgate-gateway .
#   SERVICE      gateway | auth | submitter | monitor | results | notifier
#   BASE_IMAGE   a Debian bookworm with CPython 3.11 as python3.11 on PATH, and ca-certificates.
#                Without Docker Hub, testbeds/docker/base-image.sh builds one (debootstrap).
#   BUILD_IMAGE  the build stage's image; BASE_IMAGE unless the site must add its own CA
#                certificates for the build to reach the package index (a TLS-inspecting proxy).
#   UV_IMAGE     an image with the uv binary at /uv (Astral publishes one per release).
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG BUILD_IMAGE=${BASE_IMAGE}
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# --- build: a virtual environment with the service and its locked dependencies, nothing else
FROM ${BUILD_IMAGE} AS build
ARG SERVICE
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON=python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/gridgate/venv
WORKDIR /src
# --frozen: exactly uv.lock; --no-default-groups: no dev, bench or test tools. Third-party
# packages first, in a layer of their own that stays cached until uv.lock changes.
COPY pyproject.toml uv.lock ./
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<gateway|auth|submitter|monitor|results|notifier>"; exit 1; } \
 && uv sync --frozen --no-default-groups --no-install-workspace --package "gridgate-${SERVICE}"
# Then gridgate's own packages; --no-editable copies them into the venv, so the final image
# needs no source tree.
COPY libs/ libs/
COPY services/ services/
RUN uv sync --frozen --no-default-groups --no-editable --package "gridgate-${SERVICE}" \
 && /opt/gridgate/venv/bin/python -c "import gridgate.${SERVICE}" \
 && test -x "/opt/gridgate/venv/bin/gridgate-${SERVICE}"

# --- runtime: the base image, the venv and an unprivileged user
FROM ${BASE_IMAGE}
ARG SERVICE
# Numeric ids, so that Kubernetes' runAsNonRoot can check them without reading /etc/passwd.
# The data directories exist, owned by that user, so that a fresh named volume mounted there
# (compose) takes their owner: the local facility, the results store, the auth service's keys.
RUN groupadd --system --gid 10001 gridgate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/gridgate --create-home \
        --shell /usr/sbin/nologin gridgate \
 && install -d -o 10001 -g 10001 -m 0750 \
        /var/lib/gridgate/facility /var/lib/gridgate/results /var/lib/gridgate/auth
COPY --from=build /opt/gridgate/venv /opt/gridgate/venv
ENV PATH=/opt/gridgate/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GRIDGATE_SERVICE=${SERVICE}
LABEL org.opencontainers.image.title="gridgate-${SERVICE}" \
      org.opencontainers.image.description="gridgate ${SERVICE} service"
WORKDIR /var/lib/gridgate
USER 10001:10001
# The console script gridgate-<SERVICE>; 'exec' replaces the shell, so the service is PID 1 and
# receives SIGTERM itself (workers stop consuming, finish in-flight messages, close).
ENTRYPOINT ["/bin/sh", "-c", "exec \"gridgate-$GRIDGATE_SERVICE\" \"$@\"", "gridgate"]
