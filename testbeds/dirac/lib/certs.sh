#!/usr/bin/env bash
# Certificates of the DIRAC testbed, modelled on DIRAC's own CI (tests/Jenkins/utilities.sh).
#
#   certs.sh STATE                    CA, host certificate and the test users (only what is missing)
#   certs.sh STATE --user NAME GROUP  one more user certificate from the testbed CA
#   certs.sh --new-ca DIR CN          a separate CA in DIR (stands in for another "local CA")
#   certs.sh --issue CA_DIR OUT_DIR CN  a user certificate from the CA in CA_DIR, into OUT_DIR
#
# Layout under STATE: ca/ (openssl CA: ca.cert.pem, ca.key.pem, index, serial),
# certificates/ (X509_CERT_DIR: CA cert, <hash>.0 link, CRL and <hash>.r0 link),
# server/etc/grid-security/host{cert,key}.pem (CN=localhost, SAN localhost and 127.0.0.1),
# robot/etc/grid-security/host{cert,key}.pem (CN=gridgate-robot, a client identity),
# users/<name>/{usercert.pem,userkey.pem,dn,group}. Keys are unencrypted: test-only.
set -euo pipefail

# DN prefix of every test user; the CN is the user name
USER_DN_BASE="/O=gridgate/OU=testbed"
TEST_USERS=("alice cta_user" "bob km3net_user" "admin dirac_admin")

# make_ca DIR CN: an openssl CA directory with a self-signed RSA 2048 / SHA-256 root
make_ca() {
    local dir=$1 cn=$2
    [[ -f "$dir/ca.cert.pem" ]] && return 0
    mkdir -p "$dir/newcerts"
    : >"$dir/index.txt"
    echo 1000 >"$dir/serial"
    echo 1000 >"$dir/crlnumber"
    cat >"$dir/openssl.cnf" <<CNF
[ ca ]
default_ca = CA_default
[ CA_default ]
dir               = $dir
new_certs_dir     = \$dir/newcerts
database          = \$dir/index.txt
serial            = \$dir/serial
private_key       = \$dir/ca.key.pem
certificate       = \$dir/ca.cert.pem
crlnumber         = \$dir/crlnumber
default_crl_days  = 3650
default_md        = sha256
default_days      = 3650
preserve          = no
policy            = policy_loose
copy_extensions   = copy
unique_subject    = no
[ policy_loose ]
countryName             = optional
stateOrProvinceName     = optional
localityName            = optional
organizationName        = optional
organizationalUnitName  = optional
commonName              = supplied
emailAddress            = optional
[ req ]
default_bits        = 2048
distinguished_name  = req_dn
string_mask         = utf8only
prompt              = no
default_md          = sha256
x509_extensions     = v3_ca
[ req_dn ]
O                   = gridgate
CN                  = $cn
[ v3_ca ]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always,issuer
basicConstraints = critical, CA:true
keyUsage = critical, digitalSignature, cRLSign, keyCertSign
[ usr_cert ]
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
keyUsage = critical, nonRepudiation, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
[ server_cert ]
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer:always
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
CNF
    openssl genrsa -out "$dir/ca.key.pem" 2048 2>/dev/null
    chmod 400 "$dir/ca.key.pem"
    openssl req -config "$dir/openssl.cnf" -key "$dir/ca.key.pem" -new -x509 -days 3650 \
        -sha256 -extensions v3_ca -out "$dir/ca.cert.pem"
    # an empty CRL, so that a CA directory that has one for every CA stays consistent
    openssl ca -config "$dir/openssl.cnf" -gencrl -out "$dir/ca.crl.pem" 2>/dev/null
}

# issue CA_DIR OUT_DIR SUBJECT KIND(usr_cert|server_cert) [SAN]
issue() {
    local ca=$1 out=$2 subject=$3 kind=$4 san=${5:-}
    mkdir -p "$out"
    local prefix=user
    [[ $kind == server_cert ]] && prefix=host
    [[ -f "$out/${prefix}cert.pem" ]] && return 0
    local ext
    ext=$(mktemp)
    {
        echo "[ req ]"
        echo "distinguished_name = req_dn"
        echo "[ req_dn ]"
        echo "[ v3_req ]"
        [[ -n "$san" ]] && echo "subjectAltName = $san"
        echo "subjectKeyIdentifier = hash"
    } >"$ext"
    openssl genrsa -out "$out/${prefix}key.pem" 2048 2>/dev/null
    chmod 400 "$out/${prefix}key.pem"
    openssl req -config "$ext" -reqexts v3_req -new -key "$out/${prefix}key.pem" \
        -subj "$subject" -out "$out/${prefix}.csr.pem"
    openssl ca -config "$ca/openssl.cnf" -extensions "$kind" -batch -days 3650 \
        -in "$out/${prefix}.csr.pem" -out "$out/${prefix}cert.pem" 2>/dev/null
    rm -f "$ext" "$out/${prefix}.csr.pem"
}

# trust CA_CERT [CRL] CERT_DIR: the CA and its CRL under their OpenSSL hash names
trust() {
    local cacert=$1 crl=$2 certdir=$3 hash name
    mkdir -p "$certdir"
    hash=$(openssl x509 -in "$cacert" -noout -hash)
    name="ca-$hash.pem"
    cp "$cacert" "$certdir/$name"
    ln -sfn "$name" "$certdir/$hash.0"
    if [[ -n "$crl" && -f "$crl" ]]; then
        cp "$crl" "$certdir/ca-$hash.crl.pem"
        ln -sfn "ca-$hash.crl.pem" "$certdir/$hash.r0"
    fi
}

user_cert() {  # user_cert STATE NAME GROUP
    local state=$1 name=$2 group=$3 dir="$1/users/$2"
    issue "$state/ca" "$dir" "$USER_DN_BASE/CN=$name" usr_cert
    openssl x509 -in "$dir/usercert.pem" -noout -subject -nameopt compat | sed 's/^subject=//' >"$dir/dn"
    echo "$group" >"$dir/group"
}

case "${1:-}" in
    --new-ca)
        make_ca "$2" "$3"
        ;;
    --issue)
        issue "$2" "$3" "$4" usr_cert
        ;;
    "")
        echo "usage: certs.sh STATE [--user NAME GROUP]" >&2
        exit 2
        ;;
    *)
        state=$1
        if [[ "${2:-}" == "--user" ]]; then
            user_cert "$state" "$3" "$4"
            exit 0
        fi
        make_ca "$state/ca" "gridgate DIRAC testbed CA"
        trust "$state/ca/ca.cert.pem" "$state/ca/ca.crl.pem" "$state/certificates"
        issue "$state/ca" "$state/server/etc/grid-security" "/O=gridgate/OU=testbed/CN=localhost" \
            server_cert "DNS:localhost,IP:127.0.0.1"
        # gridgate's own identity as a DIRAC client (a "robot" registered as a host): it lets
        # a process read the CS while acting for users with in-memory proxies
        issue "$state/ca" "$state/robot/etc/grid-security" "/O=gridgate/OU=testbed/CN=gridgate-robot" \
            server_cert
        for entry in "${TEST_USERS[@]}"; do
            read -r name group <<<"$entry"
            user_cert "$state" "$name" "$group"
        done
        openssl verify -CApath "$state/certificates" \
            "$state/server/etc/grid-security/hostcert.pem" \
            "$state/robot/etc/grid-security/hostcert.pem" "$state"/users/*/usercert.pem
        ;;
esac
