#!/usr/bin/env bash
# Make the testbed's DIRAC (servers and clients) trust another CA, such as gridgate's "local CA":
# its certificate, and its CRL if given, go into X509_CERT_DIR under their OpenSSL hash names
# (<hash>.0, <hash>.r0). The running services pick it up on the next handshake that needs it
# (OpenSSL looks CA directories up by hash on demand); no restart.
#   trust_ca.sh CA_CERT.pem [CA_CRL.pem]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
. "$HERE/lib/common.sh"

[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: trust_ca.sh CA_CERT.pem [CA_CRL.pem]" >&2; exit 2; }
[[ -d "$CERT_DIR" ]] || die "no $CERT_DIR: run up.sh first"
openssl x509 -in "$1" -noout >/dev/null || die "$1 is not a PEM certificate"
hash=$(openssl x509 -in "$1" -noout -hash)
cp "$1" "$CERT_DIR/ca-$hash.pem"
ln -sfn "ca-$hash.pem" "$CERT_DIR/$hash.0"
if [[ $# -eq 2 ]]; then
    cp "$2" "$CERT_DIR/ca-$hash.crl.pem"
    ln -sfn "ca-$hash.crl.pem" "$CERT_DIR/$hash.r0"
fi
echo "trusted $(openssl x509 -in "$1" -noout -subject -nameopt compat) as $CERT_DIR/$hash.0"
