"""Files of the keystore: names, atomic 0600 writes, encryption at rest, checks.

Encryption at rest (keystore format 2): each private key's unencrypted PKCS#8 DER is
sealed with AES-256-GCM (NIST SP 800-38D) under the 32-byte scrypt (RFC 7914) stretch
of the user's password with a per-keystore salt; the file name is authenticated data,
so a key file moved to another name fails too. ``keystore.json`` keeps an HMAC-SHA256
password check derived from the same key, so a wrong password (the check fails) is told
apart from a damaged file (the check passes, the GCM tag fails).

Format 1 keystores (PKCS#8 ``BestAvailableEncryption``, i.e. unauthenticated CBC,
under the hex of the same scrypt output) are read as before and migrated to format 2
the first time they are opened with the right password (:func:`migrate_keys`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import stat
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from shield.imaging.save import atomic_write_bytes
from shield.provenance.errors import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    InsecurePermissionsError,
    KeystoreCorruptError,
    KeystoreMissingError,
    WrongPasswordError,
)

__all__ = [
    "KEYSTORE_FORMAT",
    "META",
    "ROOT_CERT",
    "ROOT_KEY",
    "SIGN_CHAIN",
    "SIGN_KEY",
    "ETH_ACCOUNT",
    "WATERMARK_KEY",
    "TRUST_ANCHORS",
    "DEV_PASSWORD",
    "ARCHIVE",
    "PRIVATE_FILES",
    "C2PA_ALG",
    "SCRYPT_N",
    "SCRYPT_R",
    "SCRYPT_P",
    "ETH_SCRYPT_N",
    "write_private",
    "read_file",
    "passphrase",
    "encrypt_pkcs8",
    "decrypt_pkcs8",
    "seal_key",
    "open_key",
    "password_check",
    "verify_password",
    "migrate_keys",
    "LEGACY_FORMAT",
    "load_meta",
    "write_meta",
    "keystore_exists",
    "check_permissions",
    "check_validity",
]

KEYSTORE_FORMAT = 2
#: The format 1 keystores that are still read (and migrated on open).
LEGACY_FORMAT = 1
#: First line of a sealed key file (format 2).
SEALED_MAGIC = b"shield sealed private key v2 (AES-256-GCM, scrypt)\n"
_CHECK_LABEL = b"shield keystore password check v2"
META = "keystore.json"
ROOT_CERT = "root-ca.pem"
ROOT_KEY = "root-ca.key.pem"
SIGN_CHAIN = "c2pa-chain.pem"
SIGN_KEY = "c2pa-signing.key.pem"
ETH_ACCOUNT = "eth-account.json"
WATERMARK_KEY = "watermark.key.pem"
TRUST_ANCHORS = "trust-anchors.pem"
DEV_PASSWORD = "dev-password"
ARCHIVE = "archive"
PRIVATE_FILES = (ROOT_KEY, SIGN_KEY, ETH_ACCOUNT, WATERMARK_KEY)
C2PA_ALG = "es256"

#: scrypt cost for the PKCS#8 passphrase: N=2^15, r=8 (32 MiB, ~0.1 s on a laptop core).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
#: scrypt cost inside the Ethereum keystore JSON (same order; Web3 default 2^18 takes ~1 s).
ETH_SCRYPT_N = 2**15


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` atomically with mode 0600 (never world-readable, even briefly).

    Raises:
        OutputError: the file cannot be written.
    """
    atomic_write_bytes(data, path, overwrite=True, mode=0o600)


def read_file(keys_dir: Path, name: str) -> bytes:
    try:
        return (keys_dir / name).read_bytes()
    except FileNotFoundError as exc:
        raise KeystoreMissingError(f"keystore file {keys_dir / name} is missing") from exc
    except OSError as exc:
        raise KeystoreCorruptError(f"cannot read {keys_dir / name}: {exc.strerror}") from exc


def passphrase(password: str, kdf: Mapping[str, Any]) -> bytes:
    """Hex scrypt stretch of the password: the PKCS#8 passphrase (RFC 7914)."""
    try:
        salt = bytes.fromhex(str(kdf["salt"]))
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
    except (KeyError, ValueError) as exc:
        raise KeystoreCorruptError("keystore.json has no valid kdf parameters") from exc
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)
    return digest.hex().encode("ascii")


def encrypt_pkcs8(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey, passphrase: bytes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(passphrase)
    )


def decrypt_pkcs8(keys_dir: Path, name: str, passphrase: bytes) -> Any:
    data = read_file(keys_dir, name)
    try:
        return serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError) as exc:
        # a wrong password usually fails the padding ("bad decrypt / password") but now and
        # then decrypts to bytes that fail the ASN.1 parse instead: both mean wrong password
        if b"ENCRYPTED" in data:
            raise WrongPasswordError(f"wrong password for the keystore in {keys_dir}") from exc
        raise KeystoreCorruptError(f"{keys_dir / name} is not a readable private key") from exc


def _kek(passphrase: bytes) -> bytes:
    """The AES key: the raw scrypt output behind the hex passphrase."""
    try:
        kek = bytes.fromhex(passphrase.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise KeystoreCorruptError("keystore key derivation produced an unusable key") from exc
    if len(kek) != 32:
        raise KeystoreCorruptError("keystore key derivation produced an unusable key")
    return kek


def password_check(passphrase: bytes) -> str:
    """Hex HMAC-SHA256 tag stored in keystore.json: proves a password without decrypting."""
    return hmac.new(_kek(passphrase), _CHECK_LABEL, hashlib.sha256).hexdigest()


def verify_password(keys_dir: Path, meta: Mapping[str, Any], passphrase: bytes) -> None:
    """Raise WrongPasswordError when the stored password check does not match (format 2)."""
    stored = meta.get("kdf", {}).get("check")
    if isinstance(stored, str) and not hmac.compare_digest(stored, password_check(passphrase)):
        raise WrongPasswordError(f"wrong password for the keystore in {keys_dir}")


def seal_key(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey, passphrase: bytes, name: str) -> bytes:
    """AES-256-GCM envelope of the key's PKCS#8 DER (see the module docstring)."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    nonce = os.urandom(12)
    sealed = AESGCM(_kek(passphrase)).encrypt(nonce, der, SEALED_MAGIC + name.encode("utf-8"))
    return SEALED_MAGIC + base64.b64encode(nonce + sealed) + b"\n"


def open_key(keys_dir: Path, name: str, passphrase: bytes) -> Any:
    """Decrypt a key file: sealed (format 2), else legacy encrypted PKCS#8 (format 1).

    Raises:
        KeystoreCorruptError: the file was changed or damaged (GCM tag fails after the
            password check passed, or it does not parse).
        WrongPasswordError: a legacy file that the password does not open.
    """
    data = read_file(keys_dir, name)
    if not data.startswith(SEALED_MAGIC):
        return decrypt_pkcs8(keys_dir, name, passphrase)
    try:
        raw = base64.b64decode(data[len(SEALED_MAGIC):].strip(), validate=True)
        der = AESGCM(_kek(passphrase)).decrypt(raw[:12], raw[12:], SEALED_MAGIC + name.encode("utf-8"))
        return serialization.load_der_private_key(der, password=None)
    except (InvalidTag, binascii.Error, ValueError, TypeError) as exc:
        raise KeystoreCorruptError(f"{keys_dir / name} is damaged or was changed (its authentication tag fails)",
                                   fix="restore the keystore from a backup") from exc


def migrate_keys(keys_dir: Path, meta: dict[str, Any], passphrase: bytes, names: tuple[str, ...]) -> dict[str, Any]:
    """Re-seal legacy key files as format 2 and return the updated meta (written by the
    caller last, so a crash midway leaves a keystore both readers still open)."""
    for name in names:
        if not read_file(keys_dir, name).startswith(SEALED_MAGIC):
            write_private(keys_dir / name, seal_key(open_key(keys_dir, name, passphrase), passphrase, name))
    meta = dict(meta)
    meta["kdf"] = {**meta.get("kdf", {}), "check": password_check(passphrase)}
    meta["format"] = KEYSTORE_FORMAT
    return meta


def load_meta(keys_dir: Path) -> dict[str, Any]:
    path = keys_dir / META
    if not path.is_file():
        raise KeystoreMissingError(f"no keystore in {keys_dir}")
    try:
        meta = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise KeystoreCorruptError(f"{path} is not valid JSON") from exc
    if not isinstance(meta, dict) or meta.get("format") not in (KEYSTORE_FORMAT, LEGACY_FORMAT):
        raise KeystoreCorruptError(f"{path}: unknown keystore format {meta.get('format') if isinstance(meta, dict) else None!r}")
    return meta


def write_meta(keys_dir: Path, meta: Mapping[str, Any]) -> None:
    write_private(keys_dir / META, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def keystore_exists(keys_dir: Path) -> bool:
    return (keys_dir / META).is_file()


def check_permissions(keys_dir: Path) -> None:
    """Refuse a keystore whose folder or private files are open to group/others (POSIX).

    Raises:
        InsecurePermissionsError: naming the first offending path and its mode.
    """
    if os.name != "posix":
        return
    paths = [keys_dir] + [keys_dir / n for n in (*PRIVATE_FILES, DEV_PASSWORD, META)]
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            want = "700" if path.is_dir() else "600"
            raise InsecurePermissionsError(
                f"{path} has permissions {mode:03o}, readable by other users",
                fix=f"chmod {want} {path}",
            )


def check_validity(cert: x509.Certificate, what: str, now: datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise CertificateNotYetValidError(
            f"the {what} certificate is not valid until {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
    if now > cert.not_valid_after_utc:
        raise CertificateExpiredError(f"the {what} certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
