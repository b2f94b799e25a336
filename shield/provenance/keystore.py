"""The local keystore: C2PA signing certificate chain, Ethereum account, watermark key.

Layout of ``Settings.keys_dir`` (see keys/README.md for the user-facing description)::

    keystore.json          metadata: format, publisher, KDF salt, public fingerprints
    root-ca.pem            local root CA certificate (public)
    root-ca.key.pem        root CA private key, sealed PKCS#8 (AES-256-GCM)
    c2pa-chain.pem         C2PA signing certificate chain, leaf first, root excluded
    c2pa-signing.key.pem   C2PA signing private key (P-256), sealed PKCS#8 (AES-256-GCM)
    eth-account.json       Ethereum account, Web3 Secret Storage (scrypt) JSON
    watermark.key.pem      Ed25519 key that signs fragile-watermark blocks, sealed PKCS#8 (AES-256-GCM)
    trust-anchors.pem      what verifiers trust: the root CA certificate
    dev-password           only for development keys: the generated password
    archive/<UTC time>/    signing certificates and keys replaced by `shield keys rotate`

Encryption at rest: each private key file is an AES-256-GCM envelope of its PKCS#8
DER under the scrypt (RFC 7914) stretch of the password with a per-keystore salt, so
each password guess costs one scrypt evaluation and any change to a file is detected;
an HMAC password check in keystore.json tells a wrong password from a damaged file
(see keyfiles.py). Format 1 keystores (PKCS#8 CBC) are migrated on first open. The Ethereum keystore is the standard Web3 Secret Storage
format with its own scrypt KDF, readable by any Ethereum wallet with the plain password.
Folder 0700, files 0600; looser permissions are refused on open.

"Development keys": created when no password was supplied. The generated password is
stored next to the keys (0600) so everything works out of the box, which also means
anyone who can read the folder can sign as this publisher. Do not publish with them.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from shield.config import Settings
from shield.errors import OutputError
from shield.imaging.save import atomic_write_bytes
from shield.provenance import certs
from shield.provenance.errors import (
    KeystoreCorruptError,
    KeystoreExistsError,
    KeystoreMissingError,
    PasswordUnavailableError,
    WrongPasswordError,
)
from shield.provenance.keyfiles import (
    ARCHIVE,
    C2PA_ALG,
    DEV_PASSWORD,
    ETH_ACCOUNT,
    ETH_SCRYPT_N,
    KEYSTORE_FORMAT,
    ROOT_CERT,
    ROOT_KEY,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    SIGN_CHAIN,
    SIGN_KEY,
    TRUST_ANCHORS,
    WATERMARK_KEY,
    check_permissions,
    check_validity,
    keystore_exists,
    load_meta,
    migrate_keys,
    open_key,
    passphrase,
    password_check,
    seal_key,
    verify_password,
    read_file,
    write_meta,
    write_private,
)

__all__ = [
    "KEYSTORE_FORMAT",
    "KeystoreInfo",
    "UnlockedKeys",
    "RotationResult",
    "init_keystore",
    "open_keystore",
    "ensure_keystore",
    "rotate_keystore",
    "keystore_info",
    "export_trust",
    "keystore_exists",
    "default_publisher_name",
    "password_from_env",
    "development_notice",
    "check_permissions",
    "local_trust_anchors",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeystoreInfo:
    """Public facts about a keystore (no password needed). Times are UTC."""

    keys_dir: Path
    development: bool
    publisher_name: str
    c2pa_alg: str
    cert_fingerprint: str  # hex SHA-256 of the leaf certificate DER
    cert_subject: str
    cert_issuer: str
    cert_not_before: datetime
    cert_not_after: datetime
    root_not_after: datetime
    eth_address: str
    watermark_public_key: str  # hex, 32 raw bytes
    trust_anchors_path: Path
    created_at: datetime
    rotations: int


@dataclass(frozen=True)
class UnlockedKeys:
    """Decrypted keys, in memory only. Private material is kept out of ``repr``.

    ``c2pa_sign``: optional callback ``bytes -> signature`` (raw r||s for ES256) used
    instead of ``c2pa_private_key_pem``; this is where a hardware key or a cloud KMS
    plugs in (see keys/README.md).
    """

    keys_dir: Path
    development: bool
    publisher_name: str
    c2pa_cert_chain_pem: bytes
    c2pa_private_key_pem: bytes = field(repr=False)
    c2pa_alg: str
    cert_fingerprint: bytes
    cert_not_after: datetime
    trust_anchors_pem: bytes
    eth_private_key: bytes = field(repr=False)
    eth_address: str
    watermark_key: ed25519.Ed25519PrivateKey = field(repr=False)
    c2pa_sign: Callable[[bytes], bytes] | None = field(default=None, repr=False)

    @property
    def watermark_public_key(self) -> bytes:
        """Raw 32-byte Ed25519 public key of the watermark signer."""
        return self.watermark_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class RotationResult:
    """What `rotate` did. The ledger knows the publisher by the old fingerprint until updated."""

    old_fingerprint: str
    new_fingerprint: str
    archived_to: Path
    cert_not_after: datetime
    ledger_update_needed: bool = True


# -- small helpers -----------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now


def default_publisher_name(env: Mapping[str, str] | None = None) -> str:
    """The login name ($USER / $USERNAME), else 'shield publisher'."""
    env = os.environ if env is None else env
    return env.get("USER") or env.get("USERNAME") or "shield publisher"


def development_notice(keys_dir: Path) -> str:
    """The one-line warning every command that uses development keys prints."""
    return (
        f"the keys in {keys_dir} are development keys (their password is stored next to them): "
        "fine for trying shield, not for publishing; see keys/README.md"
    )


def password_from_env(settings: Settings, env: Mapping[str, str] | None = None) -> str | None:
    """The keystore password from the variable named by ``settings.keys_password_env``."""
    env = os.environ if env is None else env
    value = env.get(settings.keys_password_env)
    return value if value else None


def _resolve_password(settings: Settings, meta: Mapping[str, Any], password: str | None, env: Mapping[str, str] | None) -> str:
    if password:
        return password
    from_env = password_from_env(settings, env)
    if from_env:
        return from_env
    if meta.get("development"):
        return read_file(settings.keys_dir, DEV_PASSWORD).decode("utf-8").strip()
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f"Password for the keystore in {settings.keys_dir}: ")
    raise PasswordUnavailableError(
        f"the keystore in {settings.keys_dir} needs a password and no terminal is attached to ask for it",
        fix=f"set {settings.keys_password_env} to the keystore password",
    )


# -- public API --------------------------------------------------------------------


def init_keystore(keys_dir: Path, *, password: str | None, name: str, now: datetime | None = None) -> KeystoreInfo:
    """Create a keystore: root CA, C2PA signing chain, Ethereum account, watermark key.

    Args:
        keys_dir: folder to create (0700); may already hold only a README.
        password: encrypts the private keys. None creates *development* keys with a
            random password stored 0600 in ``keys_dir/dev-password``.
        name: publisher name, the signing certificate's subject CN.
        now: UTC time the certificates' validity starts from (tests pass past dates).

    Raises:
        KeystoreExistsError: ``keys_dir`` already holds a keystore.
        OutputError: the folder cannot be created or written.
    """
    from eth_account import Account

    now = _now(now)
    name = name.strip()
    if not name:
        raise ValueError("name must be a non-empty publisher name")
    if keystore_exists(keys_dir):
        raise KeystoreExistsError(f"a keystore already exists in {keys_dir}")
    try:
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(keys_dir, 0o700)
    except OSError as exc:
        raise OutputError(f"cannot create the keystore folder {keys_dir}: {exc.strerror}") from exc
    development = password is None
    if password is None:
        password = secrets.token_urlsafe(32)
        write_private(keys_dir / DEV_PASSWORD, password.encode("utf-8"))
    kdf: dict[str, Any] = {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": secrets.token_hex(16)}
    pkcs8_pass = passphrase(password, kdf)
    kdf["check"] = password_check(pkcs8_pass)

    root = certs.make_root_ca(name, now, development=development)
    leaf = certs.issue_signing_cert(root, name, now, development=development)
    watermark = ed25519.Ed25519PrivateKey.generate()
    account = Account.create()
    eth_json = Account.encrypt(account.key, password, kdf="scrypt", iterations=ETH_SCRYPT_N)

    write_private(keys_dir / ROOT_CERT, certs.cert_pem(root.cert))
    write_private(keys_dir / ROOT_KEY, seal_key(root.key, pkcs8_pass, ROOT_KEY))
    write_private(keys_dir / SIGN_CHAIN, certs.cert_pem(leaf.cert))
    write_private(keys_dir / SIGN_KEY, seal_key(leaf.key, pkcs8_pass, SIGN_KEY))
    write_private(keys_dir / WATERMARK_KEY, seal_key(watermark, pkcs8_pass, WATERMARK_KEY))
    write_private(keys_dir / ETH_ACCOUNT, json.dumps(eth_json).encode("utf-8"))
    write_private(keys_dir / TRUST_ANCHORS, certs.cert_pem(root.cert))
    wm_pub = watermark.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    meta = {
        "format": KEYSTORE_FORMAT,
        "development": development,
        "publisher_name": name,
        "created_at": now.isoformat(),
        "c2pa_alg": C2PA_ALG,
        "kdf": kdf,
        "eth_address": account.address,
        "watermark_public_key": wm_pub.hex(),
        "cert_fingerprint": certs.fingerprint(leaf.cert).hex(),
        "rotations": [],
    }
    write_meta(keys_dir, meta)  # written last: its presence marks a complete keystore
    log.info("created %s keystore in %s for %r", "development" if development else "protected", keys_dir, name)
    return keystore_info(keys_dir)


def keystore_info(keys_dir: Path) -> KeystoreInfo:
    """Public facts about the keystore in ``keys_dir`` (no password needed).

    Raises:
        KeystoreMissingError, KeystoreCorruptError.
    """
    meta = load_meta(keys_dir)
    try:
        leaf = certs.load_pem_chain(read_file(keys_dir, SIGN_CHAIN))[0]
        root = certs.load_pem_chain(read_file(keys_dir, TRUST_ANCHORS))[0]
        return KeystoreInfo(
            keys_dir=keys_dir,
            development=bool(meta["development"]),
            publisher_name=str(meta["publisher_name"]),
            c2pa_alg=str(meta["c2pa_alg"]),
            cert_fingerprint=certs.fingerprint(leaf).hex(),
            cert_subject=leaf.subject.rfc4514_string(),
            cert_issuer=leaf.issuer.rfc4514_string(),
            cert_not_before=leaf.not_valid_before_utc,
            cert_not_after=leaf.not_valid_after_utc,
            root_not_after=root.not_valid_after_utc,
            eth_address=str(meta["eth_address"]),
            watermark_public_key=str(meta["watermark_public_key"]),
            trust_anchors_path=keys_dir / TRUST_ANCHORS,
            created_at=datetime.fromisoformat(str(meta["created_at"])),
            rotations=len(meta.get("rotations", [])),
        )
    except (KeyError, ValueError, IndexError) as exc:
        raise KeystoreCorruptError(f"the keystore in {keys_dir} is incomplete or damaged") from exc


def open_keystore(
    settings: Settings,
    password: str | None = None,
    *,
    now: datetime | None = None,
    env: Mapping[str, str] | None = None,
) -> UnlockedKeys:
    """Unlock the keystore at ``settings.keys_dir``.

    Password order: ``password``, the variable named by ``settings.keys_password_env``
    (read from ``env``, default the process environment), the stored development
    password, an interactive prompt when stdin is a terminal.

    Raises:
        KeystoreMissingError, KeystoreCorruptError, InsecurePermissionsError,
        PasswordUnavailableError, WrongPasswordError, CertificateExpiredError,
        CertificateNotYetValidError.
    """
    from eth_account import Account

    now = _now(now)
    keys_dir = settings.keys_dir
    meta = load_meta(keys_dir)
    check_permissions(keys_dir)
    secret = _resolve_password(settings, meta, password, env)
    pkcs8_pass = passphrase(secret, meta.get("kdf", {}))
    verify_password(keys_dir, meta, pkcs8_pass)
    sign_key = open_key(keys_dir, SIGN_KEY, pkcs8_pass)
    chain_pem = read_file(keys_dir, SIGN_CHAIN)
    trust_pem = read_file(keys_dir, TRUST_ANCHORS)
    try:
        chain = certs.load_pem_chain(chain_pem)
        root = certs.load_pem_chain(trust_pem)[0]
    except ValueError as exc:
        raise KeystoreCorruptError(f"the certificates in {keys_dir} cannot be parsed") from exc
    leaf = chain[0]
    if not isinstance(sign_key, ec.EllipticCurvePrivateKey) or sign_key.public_key() != leaf.public_key():
        raise KeystoreCorruptError(f"{keys_dir / SIGN_KEY} does not belong to the certificate in {keys_dir / SIGN_CHAIN}")
    check_validity(leaf, "C2PA signing", now)
    check_validity(root, "root CA", now)
    watermark = open_key(keys_dir, WATERMARK_KEY, pkcs8_pass)
    if not isinstance(watermark, ed25519.Ed25519PrivateKey):
        raise KeystoreCorruptError(f"{keys_dir / WATERMARK_KEY} is not an Ed25519 key")
    try:
        eth_key = bytes(Account.decrypt(json.loads(read_file(keys_dir, ETH_ACCOUNT)), secret))
    except ValueError as exc:
        raise WrongPasswordError(f"the password does not unlock {keys_dir / ETH_ACCOUNT}") from exc
    eth_address = Account.from_key(eth_key).address
    if meta.get("format") != KEYSTORE_FORMAT:
        # every key opened with this password: re-seal the legacy CBC files (AEAD, format 2)
        write_meta(keys_dir, migrate_keys(keys_dir, meta, pkcs8_pass, (ROOT_KEY, SIGN_KEY, WATERMARK_KEY)))
        log.info("migrated the keystore in %s to format %d (AES-256-GCM)", keys_dir, KEYSTORE_FORMAT)
    return UnlockedKeys(
        keys_dir=keys_dir,
        development=bool(meta.get("development")),
        publisher_name=certs.common_name(leaf.subject).replace(certs.DEVELOPMENT_MARK, ""),
        c2pa_cert_chain_pem=chain_pem,
        c2pa_private_key_pem=sign_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        c2pa_alg=str(meta.get("c2pa_alg", C2PA_ALG)),
        cert_fingerprint=certs.fingerprint(leaf),
        cert_not_after=leaf.not_valid_after_utc,
        trust_anchors_pem=trust_pem,
        eth_private_key=eth_key,
        eth_address=eth_address,
        watermark_key=watermark,
    )


def ensure_keystore(
    settings: Settings, *, now: datetime | None = None, env: Mapping[str, str] | None = None
) -> UnlockedKeys:
    """Open the keystore, creating it first when there is none (what `shield protect` calls).

    A new keystore is protected by the password in ``settings.keys_password_env`` when
    that variable is set, and is a development keystore otherwise.
    """
    if not keystore_exists(settings.keys_dir):
        init_keystore(
            settings.keys_dir, password=password_from_env(settings, env), name=default_publisher_name(env), now=now
        )
    return open_keystore(settings, now=now, env=env)


def rotate_keystore(
    settings: Settings,
    password: str | None = None,
    *,
    name: str | None = None,
    now: datetime | None = None,
    env: Mapping[str, str] | None = None,
) -> RotationResult:
    """Issue a new C2PA signing key and certificate from the same root CA.

    The old certificate and key move to ``archive/<UTC time>/``. Works when the old
    certificate has expired (that is what rotation is for); the root CA must be valid.
    The publisher's ledger registration names the old fingerprint until updated.
    """
    now = _now(now)
    keys_dir = settings.keys_dir
    meta = load_meta(keys_dir)
    check_permissions(keys_dir)
    secret = _resolve_password(settings, meta, password, env)
    pkcs8_pass = passphrase(secret, meta.get("kdf", {}))
    verify_password(keys_dir, meta, pkcs8_pass)
    open_key(keys_dir, SIGN_KEY, pkcs8_pass)  # proves the password before anything moves
    root_key = open_key(keys_dir, ROOT_KEY, pkcs8_pass)
    try:
        root_cert = certs.load_pem_chain(read_file(keys_dir, ROOT_CERT))[0]
        old_leaf = certs.load_pem_chain(read_file(keys_dir, SIGN_CHAIN))[0]
    except ValueError as exc:
        raise KeystoreCorruptError(f"the certificates in {keys_dir} cannot be parsed") from exc
    check_validity(root_cert, "root CA", now)
    publisher = (name or certs.common_name(old_leaf.subject).replace(certs.DEVELOPMENT_MARK, "")).strip()
    leaf = certs.issue_signing_cert(certs.IssuedCert(root_cert, root_key), publisher, now,
                                    development=bool(meta.get("development")))

    archive = keys_dir / ARCHIVE / now.strftime("%Y%m%dT%H%M%S%fZ")
    archive.mkdir(parents=True, mode=0o700)
    os.chmod(keys_dir / ARCHIVE, 0o700)
    for fname in (SIGN_CHAIN, SIGN_KEY):
        shutil.copy2(keys_dir / fname, archive / fname)
        os.chmod(archive / fname, 0o600)
    if meta.get("format") != KEYSTORE_FORMAT:
        meta = migrate_keys(keys_dir, meta, pkcs8_pass, (ROOT_KEY, WATERMARK_KEY))
    write_private(keys_dir / SIGN_KEY, seal_key(leaf.key, pkcs8_pass, SIGN_KEY))
    write_private(keys_dir / SIGN_CHAIN, certs.cert_pem(leaf.cert))
    old_fp, new_fp = certs.fingerprint(old_leaf).hex(), certs.fingerprint(leaf.cert).hex()
    meta["rotations"] = [*meta.get("rotations", []), {"at": now.isoformat(), "old": old_fp, "new": new_fp}]
    meta["cert_fingerprint"] = new_fp
    meta["publisher_name"] = publisher
    write_meta(keys_dir, meta)
    log.info("rotated the C2PA signing certificate in %s: %s -> %s", keys_dir, old_fp[:16], new_fp[:16])
    return RotationResult(old_fp, new_fp, archive, leaf.cert.not_valid_after_utc)


def local_trust_anchors(settings: Settings) -> bytes | None:
    """The trust-anchor PEM of the local keystore, or None when there is no keystore.

    Needs no password: this is what `shield verify` trusts by default on the machine
    that holds the keys.
    """
    if not keystore_exists(settings.keys_dir):
        return None
    try:
        return read_file(settings.keys_dir, TRUST_ANCHORS)
    except (KeystoreMissingError, KeystoreCorruptError):
        return None


def export_trust(keys_dir: Path, out: Path) -> Path:
    """Copy the trust-anchor PEM (the root CA certificate) to ``out`` for verifiers.

    Raises:
        KeystoreMissingError: no keystore; OutputError: ``out`` cannot be written.
    """
    load_meta(keys_dir)
    data = read_file(keys_dir, TRUST_ANCHORS)
    return atomic_write_bytes(data, out, overwrite=True, mode=0o644)
