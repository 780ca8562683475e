#!/usr/bin/env bash
# Rehearse what gridgate's auth service ("local CA") will need from this DIRAC: a user whose
# certificate comes from a CA the testbed did not make. A second CA issues carol's certificate;
# before the CA is trusted her proxy is refused; after trust_ca.sh + register_user.sh, smoke.py
# runs a job as carol to Done. Exit 0 = PASS. Idempotent (the CA and carol are kept).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"
EXTRA="$STATE/extra-ca"
DN="/O=gridgate/OU=local-ca/CN=carol"

"$HERE/up.sh" >/dev/null
"$HERE/lib/certs.sh" --new-ca "$EXTRA/ca" "gridgate local CA (testbed rehearsal)"
"$HERE/lib/certs.sh" --issue "$EXTRA/ca" "$EXTRA/carol" "$DN"
smoke=("$HERE/smoke.sh" --user carol --group cta_user --timeout 120
       --cert "$EXTRA/carol/usercert.pem" --key "$EXTRA/carol/userkey.pem")

hash=$(openssl x509 -in "$EXTRA/ca/ca.cert.pem" -noout -hash)
if [[ ! -e "$STATE/certificates/$hash.0" ]]; then
    echo "--- before trust_ca.sh: carol's proxy must be refused"
    if "${smoke[@]}" >"$STATE/logs/local_ca_untrusted.log" 2>&1; then
        echo "FAIL: a proxy from an untrusted CA was accepted"; exit 1
    fi
    grep -m1 -o -E "(unknown ca|certificate verify failed|Can't connect|Handshake)[^\"']*" \
        "$STATE/logs/local_ca_untrusted.log" || tail -n 3 "$STATE/logs/local_ca_untrusted.log"
fi
echo "--- trust_ca.sh + register_user.sh"
"$HERE/trust_ca.sh" "$EXTRA/ca/ca.cert.pem" "$EXTRA/ca/ca.crl.pem"
"$HERE/register_user.sh" carol "$DN" cta_user
echo "--- smoke as carol"
"${smoke[@]}"
