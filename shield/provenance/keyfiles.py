"""Files of the keystore: names, atomic 0600 writes, encryption at rest, checks.

Private material is encrypted with PKCS#8 ``BestAvailableEncryption`` under a
passphrase that is the hex scrypt (RFC 7914) stretch of the user's password, so every
password guess costs one scrypt evaluation whatever the PKCS#8 KDF.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
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
    "load_meta",
    "write_meta",
    "keystore_exists",
    "check_permissions",
    "check_validity",
]

KEYSTORE_FORMAT = 1
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


def load_meta(keys_dir: Path) -> dict[str, Any]:
    path = keys_dir / META
    if not path.is_file():
        raise KeystoreMissingError(f"no keystore in {keys_dir}")
    try:
        meta = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise KeystoreCorruptError(f"{path} is not valid JSON") from exc
    if not isinstance(meta, dict) or meta.get("format") != KEYSTORE_FORMAT:
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
