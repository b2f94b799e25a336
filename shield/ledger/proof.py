"""Publisher proof: evidence, stored on chain with the registration, that the address
registering a certificate fingerprint and a watermark key holds both private keys.

Pure functions on bytes (no chain, no files): the ledger stores the proof, verifiers and
auditors check it with :func:`check_proof`.

Signed message (both signatures sign the same 162 bytes)::

    b"shield.publisher-proof.v1\\0" | u256 chain id | 20 B registry | 20 B publisher |
    32 B certificate fingerprint | 32 B watermark public key

Proof bytes::

    u8 version (1) | u16 certificate length | leaf certificate DER |
    64 B ECDSA P-256 signature r||s (SHA-256) by the certificate's key |
    64 B Ed25519 signature by the watermark key

Binding the chain id, the registry and the publisher address makes a proof useless to
anyone else: copied to another address, chain or registry it no longer verifies.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID

__all__ = [
    "PROOF_VERSION",
    "MAX_PROOF_BYTES",
    "ProofCheck",
    "proof_message",
    "make_proof",
    "check_proof",
    "sign_p256_raw",
    "watermark_fingerprint",
    "chains_to",
]

PROOF_VERSION = 1
#: Same bound as the contract's MAX_PUBLISHER_PROOF_BYTES.
MAX_PROOF_BYTES = 2048
_DOMAIN = b"shield.publisher-proof.v1\0"
_SIG = 64


def watermark_fingerprint(watermark_key: bytes) -> bytes:
    """8-byte fingerprint of a watermark public key: what the watermark's records carry
    (shield.watermark.record.key_fingerprint) and what the contract indexes claimants by."""
    return hashlib.sha256(b"shield.fragile.v1/key\0" + watermark_key).digest()[:8]


def proof_message(chain_id: int, registry: str | bytes, publisher: str | bytes, cert_fingerprint: bytes,
                  watermark_key: bytes) -> bytes:
    """The bytes both keys sign (module docstring). Addresses as 0x-hex or 20 bytes."""
    reg, pub = _addr(registry), _addr(publisher)
    if len(cert_fingerprint) != 32 or len(watermark_key) != 32:
        raise TypeError("cert_fingerprint and watermark_key must be 32 bytes")
    if not 0 <= chain_id < 2**256:
        raise ValueError("chain_id out of range")
    return _DOMAIN + chain_id.to_bytes(32, "big") + reg + pub + cert_fingerprint + watermark_key


def _addr(value: str | bytes) -> bytes:
    raw = value if isinstance(value, bytes) else bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 20:
        raise TypeError("an address is 20 bytes")
    return raw


def sign_p256_raw(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """ECDSA P-256 / SHA-256 signature as raw r||s (64 bytes)."""
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def make_proof(message: bytes, certificate_der: bytes, sign_c2pa: Callable[[bytes], bytes],
               watermark_key: ed25519.Ed25519PrivateKey) -> bytes:
    """Assemble the proof for ``message``.

    Args:
        message: :func:`proof_message` output.
        certificate_der: the C2PA leaf certificate, DER.
        sign_c2pa: signs bytes with the certificate's key, returning raw r||s (64 bytes).
        watermark_key: the Ed25519 watermark private key.
    Raises:
        ValueError: the result would exceed MAX_PROOF_BYTES, or a signature has the wrong size.
    """
    p256 = sign_c2pa(message)
    if len(p256) != _SIG:
        raise ValueError("the C2PA signer must return a 64-byte r||s signature")
    proof = struct.pack(">BH", PROOF_VERSION, len(certificate_der)) + certificate_der + p256 + watermark_key.sign(message)
    if len(proof) > MAX_PROOF_BYTES:
        raise ValueError(f"publisher proof of {len(proof)} bytes exceeds {MAX_PROOF_BYTES}")
    return proof


@dataclass(frozen=True)
class ProofCheck:
    """Result of :func:`check_proof`.

    Attributes:
        valid: both signatures verify, the certificate hashes to the registered fingerprint.
        reason: why not, in words ("" when valid).
        certificate: the leaf certificate carried by the proof, when it parses.
    """

    valid: bool
    reason: str = ""
    certificate: x509.Certificate | None = None

    @property
    def subject(self) -> str | None:
        if self.certificate is None:
            return None
        attrs = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        value = attrs[0].value if attrs else self.certificate.subject.rfc4514_string()
        return value if isinstance(value, str) else value.decode("utf-8", "replace")


def check_proof(proof: bytes, chain_id: int, registry: str | bytes, publisher: str | bytes,
                cert_fingerprint: bytes, watermark_key: bytes) -> ProofCheck:
    """Check a registration's proof; never raises on hostile bytes.

    Returns:
        ProofCheck: valid only when the certificate's SHA-256 is ``cert_fingerprint``, its
        P-256 key signed the message and ``watermark_key`` signed it too.
    """
    if not proof:
        return ProofCheck(False, "the publisher registered no proof of its keys")
    if len(proof) > MAX_PROOF_BYTES or len(proof) < 3:
        return ProofCheck(False, f"publisher proof of {len(proof)} bytes is malformed")
    version, n = struct.unpack_from(">BH", proof)
    if version != PROOF_VERSION or len(proof) != 3 + n + 2 * _SIG:
        return ProofCheck(False, "publisher proof is malformed (version or length)")
    der, p256, ed = proof[3:3 + n], proof[3 + n:3 + n + _SIG], proof[3 + n + _SIG:]
    try:
        message = proof_message(chain_id, registry, publisher, cert_fingerprint, watermark_key)
    except (TypeError, ValueError):
        return ProofCheck(False, "registration fields are malformed")
    if hashlib.sha256(der).digest() != cert_fingerprint:
        return ProofCheck(False, "the proof's certificate is not the registered certificate fingerprint")
    try:
        cert = x509.load_der_x509_certificate(der)
        key = cert.public_key()
    except ValueError:
        return ProofCheck(False, "the proof's certificate does not parse")
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return ProofCheck(False, "the proof's certificate has no P-256 key", cert)
    try:
        sig = encode_dss_signature(int.from_bytes(p256[:32], "big"), int.from_bytes(p256[32:], "big"))
        key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return ProofCheck(False, "the C2PA signing key did not sign this registration", cert)
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(watermark_key).verify(ed, message)
    except (InvalidSignature, ValueError):
        return ProofCheck(False, "the watermark key did not sign this registration", cert)
    return ProofCheck(True, "", cert)


def chains_to(cert: x509.Certificate, anchors_pem: bytes | None, *, at: object = None) -> bool:
    """True when ``cert`` is issued directly by one of the PEM trust anchors (the shield
    profile: root CA -> signing certificate) or is one of them, and the anchor's signature
    on it verifies. ``at`` (a datetime) additionally requires both to be valid then."""
    from datetime import datetime

    if not anchors_pem:
        return False
    try:
        anchors = x509.load_pem_x509_certificates(anchors_pem)
    except ValueError:
        return False
    for anchor in anchors:
        try:
            if cert == anchor:
                ok = True
            else:
                cert.verify_directly_issued_by(anchor)
                ok = True
        except (ValueError, TypeError, InvalidSignature):
            ok = False
        if ok and isinstance(at, datetime):
            ok = all(c.not_valid_before_utc <= at <= c.not_valid_after_utc for c in (cert, anchor))
        if ok:
            return True
    return False
