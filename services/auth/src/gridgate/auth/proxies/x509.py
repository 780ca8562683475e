"""Building RFC 3820 proxies and user certificates with ``cryptography``.

The shape follows what DIRAC itself writes (shared/notes/auth.md §5): subject = issuer subject
plus one ``CN=<serial>``; critical proxyCertInfo with id-ppl-inheritAll; critical keyUsage;
the DIRAC group as a non-critical IA5String extension ``1.2.42.42``; notBefore back-dated;
never beyond the issuer's notAfter; the chain is proxy, key, then issuers (no CA).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PROXY_CERT_INFO = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.14")
DIRAC_GROUP = x509.ObjectIdentifier("1.2.42.42")
# DER of ProxyCertInfo { proxyPolicy { policyLanguage id-ppl-inheritAll } }: a full proxy.
INHERIT_ALL_POLICY = bytes.fromhex("300C300A06082B06010505071501")
KEY_BITS = 2048
BACKDATE = timedelta(minutes=15)
# What DIRAC itself sets on user and proxy certificates: sign, and encipher keys and data.
END_ENTITY_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=True,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)

SHORT_NAMES = {
    "C": NameOID.COUNTRY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
    "DC": NameOID.DOMAIN_COMPONENT,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
}


def der_ia5(text: str) -> bytes:
    """DER IA5String, with the long length form when needed."""
    data = text.encode("ascii")
    length = len(data)
    if length < 0x80:
        return b"\x16" + bytes([length]) + data
    size = (length.bit_length() + 7) // 8
    return b"\x16" + bytes([0x80 | size]) + length.to_bytes(size, "big") + data


def parse_slash_dn(dn: str) -> x509.Name:
    """``/O=gridgate/OU=cta/CN=alice`` -> a Name with the RDNs in that order (as DIRAC prints)."""
    parts = [p for p in dn.split("/") if p]
    attributes = []
    for part in parts:
        key, _, value = part.partition("=")
        if key not in SHORT_NAMES or not value:
            raise ValueError(f"unsupported DN component {part!r}")
        attributes.append(
            x509.RelativeDistinguishedName([x509.NameAttribute(SHORT_NAMES[key], value)])
        )
    return x509.Name(attributes)


def slash_dn(name: x509.Name) -> str:
    """The DIRAC (OpenSSL oneline) spelling of a Name."""
    short = {oid: key for key, oid in SHORT_NAMES.items()}
    parts = []
    for rdn in name.rdns:
        for attribute in rdn:
            value = attribute.value
            text = value.decode() if isinstance(value, bytes) else value
            parts.append(f"/{short.get(attribute.oid, attribute.oid.dotted_string)}={text}")
    return "".join(parts)


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def user_certificate(
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    lifetime: timedelta,
) -> x509.Certificate:
    """An end-entity certificate for a user, signed by our CA (the local-ca provider)."""
    now = datetime.now(UTC)
    not_after = min(now + lifetime, ca_cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(END_ENTITY_KEY_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def proxy_certificate(
    issuer_key: rsa.RSAPrivateKey,
    issuer_cert: x509.Certificate,
    group: str | None,
    lifetime: timedelta,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A full (not limited) RFC 3820 proxy of ``issuer_cert``, with the DIRAC group if given."""
    key = new_key()
    serial = secrets.randbits(63) | 1
    subject = x509.Name(
        [
            *issuer_cert.subject.rdns,
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, str(serial))]),
        ]
    )
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(max(now - BACKDATE, issuer_cert.not_valid_before_utc))
        .not_valid_after(min(now + lifetime, issuer_cert.not_valid_after_utc))
        .add_extension(END_ENTITY_KEY_USAGE, critical=True)
        .add_extension(
            x509.UnrecognizedExtension(PROXY_CERT_INFO, INHERIT_ALL_POLICY), critical=True
        )
    )
    if group:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(DIRAC_GROUP, der_ia5(group)), critical=False
        )
    return key, builder.sign(issuer_key, hashes.SHA256())


def chain_pem(
    proxy: x509.Certificate, key: rsa.RSAPrivateKey, issuers: list[x509.Certificate]
) -> bytes:
    """Proxy certificate, its unencrypted PKCS#1 key, then the issuers (never the CA)."""
    return (
        proxy.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in issuers)
    )
