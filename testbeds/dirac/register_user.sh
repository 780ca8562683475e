#!/usr/bin/env bash
# Register a user DN in the running testbed's CS, in an existing group (cta_user, km3net_user,
# dirac_admin), keeping the user's other groups; SUB (optional), the user's IAM subject, is set
# as the user's ID option (DIRAC's link from an IdP sub to a user). Returns once every service
# accepts the user: about 70 s, because each DIRAC service caches user/group lookups for 60 s
# (--no-wait: at once, and the user's requests may be refused as "Unauthorized query" for
# that minute).
#   register_user.sh NAME DN GROUP [SUB] [--no-wait]
#   e.g. register_user.sh carol "/O=gridgate/OU=local-ca/CN=carol" cta_user \
#            0d7c6b1e-2f4a-4c55-9e0b-ca201e000003
# The DN's CA must be trusted (trust_ca.sh) for the user's proxies to be accepted, and a proxy
# of the user must be uploaded to the ProxyManager before the JobAgent can run the user's jobs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"

positional=0
for arg in "$@"; do [[ $arg == --no-wait ]] || positional=$((positional + 1)); done
[[ $positional -eq 3 || $positional -eq 4 ]] \
    || { echo "usage: register_user.sh NAME DN GROUP [SUB] [--no-wait]" >&2; exit 2; }
component_alive CS || die "the testbed is not running (testbeds/dirac/up.sh)"
(cd "$CLIENT_ROOT" && client_env "$VENV/bin/python" "$HERE/lib/register_user.py" "$STATE" "$@")
