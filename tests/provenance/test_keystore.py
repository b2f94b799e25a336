"""Keystore: layout, encryption at rest, typed errors, rotation. Real crypto, no mocks."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from shield.provenance import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    InsecurePermissionsError,
    KeystoreCorruptError,
    KeystoreExistsError,
    KeystoreMissingError,
    PasswordUnavailableError,
    WrongPasswordError,
    ensure_keystore,
    export_trust,
    init_keystore,
    keystore_info,
    open_keystore,
    rotate_keystore,
)
from shield.provenance.certs import DOCUMENT_SIGNING_EKU, LEAF_VALIDITY, fingerprint

from provenance_helpers import make_settings

PASSWORD = "correct horse battery staple"


def test_dev_keystore_layout_and_permissions(dev_keys, prov_settings):
    keys_dir = prov_settings.keys_dir
    assert dev_keys.development
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    for path in keys_dir.iterdir():
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (keys_dir / "dev-password").is_file()
    for name in ("root-ca.key.pem", "c2pa-signing.key.pem", "watermark.key.pem"):
        assert (keys_dir / name).read_bytes().startswith(b"shield sealed private key v2 (AES-256-GCM")
    eth = json.loads((keys_dir / "eth-account.json").read_text())
    assert eth["crypto"]["kdf"] == "scrypt"
    # the private keys never appear in clear text on disk
    raw_key = serialization.load_pem_private_key(dev_keys.c2pa_private_key_pem, None)
    clear = raw_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    for path in keys_dir.iterdir():
        if path.is_file():
            data = path.read_bytes()
            assert clear[-32:] not in data and dev_keys.eth_private_key not in data


def test_certificate_profile(dev_keys):
    chain = x509.load_pem_x509_certificates(dev_keys.c2pa_cert_chain_pem)
    root = x509.load_pem_x509_certificates(dev_keys.trust_anchors_pem)[0]
    leaf = chain[0]
    assert len(chain) == 1  # leaf only: the root is the verifier's trust anchor, not sent
    assert leaf.version == x509.Version.v3 and leaf.issuer == root.subject != leaf.subject
    bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku and DOCUMENT_SIGNING_EKU in eku
    assert ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku
    leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    root_bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert root_bc.critical and root_bc.value.ca
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= LEAF_VALIDITY + timedelta(minutes=10)
    leaf.verify_directly_issued_by(root)
    assert dev_keys.cert_fingerprint == fingerprint(leaf) and len(dev_keys.cert_fingerprint) == 32


def test_unlocked_key_fields(dev_keys):
    from eth_account import Account

    assert Account.from_key(dev_keys.eth_private_key).address == dev_keys.eth_address
    assert len(dev_keys.watermark_public_key) == 32
    assert dev_keys.c2pa_alg == "es256"
    text = repr(dev_keys)
    assert "PRIVATE KEY" not in text and dev_keys.eth_private_key.hex() not in text


def test_protected_keystore_and_wrong_password(tmp_path):
    settings = make_settings(tmp_path)
    info = init_keystore(settings.keys_dir, password=PASSWORD, name="Alice Example")
    assert not info.development and not (settings.keys_dir / "dev-password").exists()
    keys = open_keystore(settings, PASSWORD, env={})
    assert keys.publisher_name == "Alice Example" and not keys.development
    with pytest.raises(WrongPasswordError) as err:
        open_keystore(settings, "not the password", env={})
    assert err.value.fix and err.value.exit_code == 15
    # the password can come from the variable the settings name
    assert open_keystore(settings, env={settings.keys_password_env: PASSWORD}).eth_address == keys.eth_address


def test_no_password_and_no_terminal_is_a_typed_error(tmp_path, monkeypatch):
    settings = make_settings(tmp_path)
    init_keystore(settings.keys_dir, password=PASSWORD, name="Alice")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(PasswordUnavailableError) as err:
        open_keystore(settings, env={})
    assert settings.keys_password_env in err.value.fix


def test_missing_and_existing_keystore(tmp_path):
    settings = make_settings(tmp_path)
    with pytest.raises(KeystoreMissingError):
        open_keystore(settings, env={})
    with pytest.raises(KeystoreMissingError):
        keystore_info(settings.keys_dir)
    init_keystore(settings.keys_dir, password=None, name="Bob")
    with pytest.raises(KeystoreExistsError):
        init_keystore(settings.keys_dir, password=None, name="Bob")
    (settings.keys_dir / "c2pa-signing.key.pem").unlink()
    with pytest.raises(KeystoreMissingError):
        open_keystore(settings, env={})


@pytest.mark.parametrize("target", ["c2pa-signing.key.pem", "dev-password", "."])
def test_permissions_too_open(tmp_path, target):
    settings = make_settings(tmp_path)
    init_keystore(settings.keys_dir, password=None, name="Carol")
    path = settings.keys_dir / target
    os.chmod(path, 0o755 if path.is_dir() else 0o644)
    with pytest.raises(InsecurePermissionsError) as err:
        open_keystore(settings, env={})
    assert "chmod" in err.value.fix


def test_expired_and_not_yet_valid_certificates(tmp_path):
    settings = make_settings(tmp_path)
    then = datetime.now(UTC) - timedelta(days=400)
    init_keystore(settings.keys_dir, password=None, name="Dana", now=then)
    with pytest.raises(CertificateExpiredError) as err:
        open_keystore(settings, env={})
    assert "rotate" in err.value.fix
    assert open_keystore(settings, env={}, now=then + timedelta(days=1)).publisher_name == "Dana"
    with pytest.raises(CertificateNotYetValidError):
        open_keystore(settings, env={}, now=then - timedelta(days=1))


def test_rotate_renews_an_expired_leaf_and_archives_it(tmp_path):
    settings = make_settings(tmp_path)
    then = datetime.now(UTC) - timedelta(days=400)
    init_keystore(settings.keys_dir, password=None, name="Erin", now=then)
    before = keystore_info(settings.keys_dir)
    result = rotate_keystore(settings, env={})
    assert result.old_fingerprint == before.cert_fingerprint != result.new_fingerprint
    assert result.ledger_update_needed
    assert (result.archived_to / "c2pa-chain.pem").read_bytes() != (settings.keys_dir / "c2pa-chain.pem").read_bytes()
    assert stat.S_IMODE((result.archived_to / "c2pa-signing.key.pem").stat().st_mode) == 0o600
    keys = open_keystore(settings, env={})  # valid again, same root, same accounts
    assert keys.cert_fingerprint.hex() == result.new_fingerprint
    assert keys.trust_anchors_pem == (settings.keys_dir / "trust-anchors.pem").read_bytes()
    assert keys.eth_address == before.eth_address
    assert keystore_info(settings.keys_dir).rotations == 1


def test_rotate_with_wrong_password_changes_nothing(tmp_path):
    settings = make_settings(tmp_path)
    init_keystore(settings.keys_dir, password=PASSWORD, name="Finn")
    chain = (settings.keys_dir / "c2pa-chain.pem").read_bytes()
    with pytest.raises(WrongPasswordError):
        rotate_keystore(settings, "wrong", env={})
    assert (settings.keys_dir / "c2pa-chain.pem").read_bytes() == chain
    assert not (settings.keys_dir / "archive").exists()


def test_ensure_keystore_uses_env_password_when_set(tmp_path):
    settings = make_settings(tmp_path)
    keys = ensure_keystore(settings, env={settings.keys_password_env: PASSWORD, "USER": "gina"})
    assert not keys.development and keys.publisher_name == "gina"
    assert ensure_keystore(settings, env={settings.keys_password_env: PASSWORD}).eth_address == keys.eth_address


def test_export_trust(dev_keys, prov_settings, tmp_path):
    out = export_trust(prov_settings.keys_dir, tmp_path / "anchors.pem")
    assert out.read_bytes() == dev_keys.trust_anchors_pem
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_unlock_is_fast(dev_keys, prov_settings):
    import time

    start = time.perf_counter()
    open_keystore(prov_settings, env={})
    assert time.perf_counter() - start < 1.5  # < 1 s target, slack for a loaded CI machine


def test_naive_now_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="timezone"):
        init_keystore(Path(tmp_path / "k"), password=None, name="x", now=datetime(2020, 1, 1))


def test_local_trust_anchors(dev_keys, prov_settings, tmp_path):
    from shield.provenance import local_trust_anchors

    assert local_trust_anchors(prov_settings) == dev_keys.trust_anchors_pem
    assert local_trust_anchors(make_settings(tmp_path)) is None


def test_damaged_key_file_is_told_apart_from_a_wrong_password(tmp_path):
    settings = make_settings(tmp_path)
    init_keystore(settings.keys_dir, password=PASSWORD, name="Gina")
    path = settings.keys_dir / "watermark.key.pem"
    data = bytearray(path.read_bytes())
    data[-10] = ord("A") if data[-10] != ord("A") else ord("B")  # one base64 character of the ciphertext
    path.write_bytes(bytes(data))
    with pytest.raises(KeystoreCorruptError):
        open_keystore(settings, PASSWORD, env={})
    with pytest.raises(WrongPasswordError):
        open_keystore(settings, "not the password", env={})


def test_format_1_keystore_is_migrated_to_aead_on_open(tmp_path):
    """A keystore written the old way (PKCS#8 BestAvailableEncryption, format 1)."""
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, Encoding, PrivateFormat

    from shield.provenance.keyfiles import load_meta, passphrase, write_meta

    settings = make_settings(tmp_path)
    init_keystore(settings.keys_dir, password=PASSWORD, name="Hal")
    before = open_keystore(settings, PASSWORD, env={})
    meta = load_meta(settings.keys_dir)
    pkcs8 = passphrase(PASSWORD, meta["kdf"])
    root = before  # the root key is re-read below through the legacy path
    legacy = {
        "c2pa-signing.key.pem": serialization.load_pem_private_key(before.c2pa_private_key_pem, None),
        "watermark.key.pem": before.watermark_key,
    }
    for name, key in legacy.items():
        (settings.keys_dir / name).write_bytes(
            key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(pkcs8)))
    meta["format"] = 1
    del meta["kdf"]["check"]
    write_meta(settings.keys_dir, meta)
    with pytest.raises(WrongPasswordError):
        open_keystore(settings, "wrong", env={})
    after = open_keystore(settings, PASSWORD, env={})
    assert after.watermark_public_key == root.watermark_public_key and after.cert_fingerprint == root.cert_fingerprint
    migrated = load_meta(settings.keys_dir)
    assert migrated["format"] == 2 and "check" in migrated["kdf"]
    for name in legacy:
        assert (settings.keys_dir / name).read_bytes().startswith(b"shield sealed private key v2")
    assert open_keystore(settings, PASSWORD, env={}).eth_address == before.eth_address
