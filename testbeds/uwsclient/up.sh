#!/usr/bin/env bash
# Install the AIP uws-client 1.1.11 (Python 2 only) from PyPI into var/uws-client-py27, with
# pyenv's Python 2.7. The tests drive it against a running gridgate, unchanged (uwsclient/
# lifecycle.py only hands it a bearer token header). Idempotent; prints the target directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
python="${UWS_CLIENT_PYTHON:-/root/.pyenv/versions/2.7.18/bin/python}"
target="${UWS_CLIENT_TARGET:-$root/var/uws-client-py27}"
version="1.1.11"
if [[ ! -x "$python" ]]; then
    echo "no Python 2.7 at $python (set UWS_CLIENT_PYTHON)" >&2
    exit 2
fi
if [[ ! -f "$target/.installed-$version" ]]; then
    rm -rf "$target.tmp"
    "$python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
        --target "$target.tmp" "uws-client==$version" >&2
    rm -rf "$target"
    mv "$target.tmp" "$target"
    touch "$target/.installed-$version"
fi
echo "$target"
