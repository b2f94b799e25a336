"""X.509 certificates for C2PA signing: a local root CA and its end-entity signing cert.

The profile follows the C2PA specification's certificate requirements ("Trust Model",
"X.509 Certificates", C2PA 2.x §14.5) as enforced by c2pa-rs:

- version 3, ECDSA P-256 with SHA-256 (COSE alg ES256);
- root: self-signed, basicConstraints CA:TRUE (critical), keyUsage keyCertSign+cRLSign
  (critical), subject key identifier;
- signing (leaf) cert: issued by the root, never self-signed; basicConstraints CA:FALSE
  (critical); keyUsage digitalSignature only (critical); extendedKeyUsage
  emailProtection + documentSigning and never anyExtendedKeyUsage; subject and
  authority key identifiers.

Validity windows are computed from an injected ``now`` so tests can mint expired or
future certificates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "ROOT_VALIDITY",
    "LEAF_VALIDITY",
    "CLOCK_SKEW",
    "DOCUMENT_SIGNING_EKU",
    "IssuedCert",
    "make_root_ca",
    "issue_signing_cert",
    "fingerprint",
    "cert_pem",
    "load_pem_chain",
    "common_name",
    "DEVELOPMENT_MARK",
    "is_development_name",
]

#: Root CA lifetime: long, it only ever signs the local leaf certificates.
ROOT_VALIDITY = timedelta(days=3650)
#: Signing certificate lifetime; renew with `shield keys rotate`.
LEAF_VALIDITY = timedelta(days=365)
#: notBefore is backdated this much so a verifier whose clock lags a little still accepts.
CLOCK_SKEW = timedelta(minutes=5)
#: id-kp-documentSigning (RFC 9336).
DOCUMENT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")

_ORG = "shield"
#: Appended to the subject common name of development certificates (keystores whose
#: password is stored next to the keys), so every verifier shows it with the signer.
DEVELOPMENT_MARK = " [DEVELOPMENT KEY]"
#: The subject organizational unit of development certificates.
_DEV_UNIT = "shield development keys, not for publishing"


def is_development_name(common: str | None) -> bool:
    """Whether a signer's common name marks a development certificate."""
    return bool(common) and DEVELOPMENT_MARK.strip() in str(common)


@dataclass(frozen=True)
class IssuedCert:
    """A certificate and its (unencrypted, in-memory) private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common: str, development: bool = False) -> x509.Name:
    if development and not is_development_name(common):
        common += DEVELOPMENT_MARK
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common), x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG)]
    if development:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _DEV_UNIT))
    return x509.Name(attrs)


def _key_usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signing,
        crl_sign=not signing,
        encipher_only=False,
        decipher_only=False,
    )


def make_root_ca(publisher: str, now: datetime, *, development: bool = False) -> IssuedCert:
    """A self-signed P-256 root CA named after the publisher, valid ``ROOT_VALIDITY`` from ``now``;
    ``development`` marks its subject as a development CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{publisher} root CA (shield)", development)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing=False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return IssuedCert(cert, key)


def issue_signing_cert(root: IssuedCert, publisher: str, now: datetime, validity: timedelta = LEAF_VALIDITY,
                       *, development: bool = False) -> IssuedCert:
    """A P-256 C2PA signing certificate for ``publisher``, issued by ``root``.

    ``development``: the subject says so (common name ends in :data:`DEVELOPMENT_MARK`,
    organizational unit "shield development keys, not for publishing").
    """
    key = ec.generate_private_key(ec.SECP256R1())
    root_ski = root.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(publisher, development))
        .issuer_name(root.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING_EKU]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
        .sign(root.key, hashes.SHA256())
    )
    return IssuedCert(cert, key)


def fingerprint(cert: x509.Certificate) -> bytes:
    """SHA-256 of the certificate's DER encoding (32 bytes): the publisher fingerprint."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_pem_chain(pem: bytes) -> list[x509.Certificate]:
    """All certificates of a PEM bundle, in file order (raises ValueError if none)."""
    return x509.load_pem_x509_certificates(pem)


def common_name(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = attrs[0].value if attrs else name.rfc4514_string()
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
