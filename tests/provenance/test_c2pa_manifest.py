"""Signed C2PA manifests with the real c2pa-python SDK: round trip and tampering."""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from PIL import Image
from provenance_helpers import ASSET_ID, join_chunks, make_settings, make_spec, png_bytes, split_chunks

from shield.provenance import (
    ManifestReadError,
    SigningError,
    init_keystore,
    open_keystore,
    read_manifest,
    sign_image,
)
from shield.provenance.certs import LEAF_VALIDITY
from shield.provenance.manifest import DIGITAL_SOURCE_UNSPECIFIED, SHIELD_ASSERTION_LABEL, SOFT_BINDING_ALG

@pytest.fixture(scope="module")
def signed(dev_keys):
    return sign_image(png_bytes(1), make_spec(dev_keys), dev_keys, now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))


def test_round_trip_is_trusted_with_our_anchors(signed, dev_keys):
    report = read_manifest(signed.data, "image/png", dev_keys.trust_anchors_pem)
    assert report.state == "trusted", [c.code for c in report.failures]
    assert report.has_code("signingCredential.trusted") and report.has_code("assertion.dataHash.match")
    assert not report.failures
    assert report.active_label == signed.active_label and report.active_label.startswith("urn:c2pa:")
    assert report.actions == ("c2pa.created", "c2pa.edited", "c2pa.watermarked")
    assert report.title == "portrait.shield.png" and report.claim_generator.startswith("shield/")
    # shield's assertion, typed
    assert report.shield is not None
    assert report.shield.asset_id == ASSET_ID
    assert report.shield.watermark_public_key == dev_keys.watermark_public_key
    assert report.shield.watermark_scheme == "shield-fragile-v1"
    assert report.shield.ledger.chain_id == 31337 and report.shield.ledger.publisher == dev_keys.eth_address
    assert report.shield.protection["models"] == ["fomm", "simswap"]
    assert report.shield.signed_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert report.soft_binding_asset_id == ASSET_ID
    # signer and hashes agree between signing and reading
    assert report.signer.common_name == dev_keys.publisher_name + " [DEVELOPMENT KEY]"  # development keys say so
    assert "root CA" in report.signer.issuer and report.signer.alg
    assert report.signer.cert_fingerprint == dev_keys.cert_fingerprint
    assert report.manifest_hash == signed.manifest_hash and len(signed.manifest_hash) == 32
    for code in report.codes:
        assert code.explanation and code.severity in ("failure", "warning", "info")


def test_manifest_content_as_the_sdk_sees_it(signed, dev_keys):
    import c2pa

    reader = c2pa.Reader("image/png", io.BytesIO(signed.data))
    active = reader.get_active_manifest()
    labels = {a["label"]: a["data"] for a in active["assertions"]}
    created = labels["c2pa.actions.v2"]["actions"][0]
    assert created["action"] == "c2pa.created" and created["digitalSourceType"] == DIGITAL_SOURCE_UNSPECIFIED
    soft = labels["c2pa.soft-binding"]
    assert soft["alg"] == SOFT_BINDING_ALG and base64.b64decode(soft["blocks"][0]["value"]) == ASSET_ID
    assert labels[SHIELD_ASSERTION_LABEL]["asset_id"] == ASSET_ID.hex()
    assert "thumbnail" not in active  # no copy of the picture inside the manifest
    reader.close()


def test_without_anchors_the_signer_is_untrusted_but_valid(signed):
    report = read_manifest(signed.data, "image/png", None)
    assert report.state == "valid"
    assert [c.code for c in report.failures] == ["signingCredential.untrusted"]


def test_other_anchors_do_not_trust_us(signed, tmp_path):
    other = init_keystore(tmp_path / "other", password=None, name="Mallory")
    report = read_manifest(signed.data, "image/png", other.trust_anchors_path.read_bytes())
    assert report.state == "valid" and report.has_code("signingCredential.untrusted")


def test_one_flipped_pixel_breaks_the_data_hash(signed, dev_keys):
    pixels = np.array(Image.open(io.BytesIO(signed.data)).convert("RGB"))
    pixels[10, 20, 1] ^= 1
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    new_idat = [(t, p) for t, p in split_chunks(buf.getvalue()) if t == b"IDAT"]
    chunks, out = split_chunks(signed.data), []
    for ctype, payload in chunks:  # keep IHDR, caBX (the manifest) and IEND byte for byte
        if ctype == b"IDAT":
            out.extend(new_idat)
            new_idat = []
        else:
            out.append((ctype, payload))
    tampered = join_chunks(out)
    assert [t for t, _ in split_chunks(tampered)][:2] == [b"IHDR", b"caBX"]
    report = read_manifest(tampered, "image/png", dev_keys.trust_anchors_pem)
    assert report.state == "invalid"
    assert "assertion.dataHash.mismatch" in [c.code for c in report.failures]
    assert report.manifest_hash == signed.manifest_hash  # the manifest itself is untouched


def test_edited_assertion_breaks_its_hashed_uri(signed, dev_keys):
    chunks = split_chunks(signed.data)
    store = next(p for t, p in chunks if t == b"caBX")
    needle = ASSET_ID.hex().encode()  # stored once, inside org.shield.protection
    assert store.count(needle) == 1
    forged = store.replace(needle, b"ff" + needle[2:])
    tampered = join_chunks([(t, forged if t == b"caBX" else p) for t, p in chunks])
    report = read_manifest(tampered, "image/png", dev_keys.trust_anchors_pem)
    assert report.state == "invalid"
    mismatches = [c for c in report.failures if c.code == "assertion.hashedURI.mismatch"]
    assert mismatches and SHIELD_ASSERTION_LABEL in (mismatches[0].url or "")
    assert report.manifest_hash != signed.manifest_hash


def test_manifest_copied_onto_another_image_fails(signed, dev_keys):
    store = next(p for t, p in split_chunks(signed.data) if t == b"caBX")
    other = split_chunks(png_bytes(2))
    grafted = join_chunks([other[0], (b"caBX", store), *other[1:]])
    report = read_manifest(grafted, "image/png", dev_keys.trust_anchors_pem)
    assert report.state == "invalid"
    assert "assertion.dataHash.mismatch" in [c.code for c in report.failures]


def test_unsigned_image_has_no_manifest(signed, dev_keys, tmp_path):
    from shield.provenance import has_manifest

    assert read_manifest(png_bytes(3), "image/png", None).state == "absent"
    assert not has_manifest(png_bytes(3)) and has_manifest(signed.data)
    path = tmp_path / "signed.png"
    path.write_bytes(signed.data)
    assert has_manifest(path) and not has_manifest(tmp_path / "missing.png")
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(png_bytes(3))).save(jpeg, "JPEG")
    assert not has_manifest(jpeg.getvalue()) and not has_manifest(b"not an image")
    signed_jpeg = sign_image(jpeg.getvalue(), make_spec(dev_keys, format="image/jpeg"), dev_keys, mime="image/jpeg")
    assert has_manifest(signed_jpeg.data)
    assert read_manifest(signed_jpeg.data, "image/jpeg", dev_keys.trust_anchors_pem).state == "trusted"


def test_not_an_image_is_a_typed_error():
    with pytest.raises(ManifestReadError):
        read_manifest(b"this is not an image at all", "image/png", None)


def test_original_as_ingredient(dev_keys, tmp_path):
    original = tmp_path / "original.png"
    original.write_bytes(png_bytes(4))
    spec = make_spec(dev_keys, ingredient_path=original)
    report = read_manifest(sign_image(png_bytes(5), spec, dev_keys).data, "image/png", dev_keys.trust_anchors_pem)
    assert report.state == "trusted", [c.code for c in report.failures]
    assert report.actions[0] == "c2pa.opened" and report.ingredients == ("original.png",)


def test_no_picture_of_the_original_inside_the_manifest(dev_keys, tmp_path):
    """The unprotected original must not ride along as a thumbnail (it would undo the protection)."""
    import c2pa

    original = tmp_path / "face.png"
    original.write_bytes(png_bytes(10, 300, 400))
    signed = sign_image(png_bytes(11, 300, 400), make_spec(dev_keys, ingredient_path=original), dev_keys)
    reader = c2pa.Reader("image/png", io.BytesIO(signed.data))
    active = reader.get_active_manifest()
    reader.close()
    assert "thumbnail" not in active
    assert all("thumbnail" not in ingredient for ingredient in active["ingredients"])
    assert len(signed.manifest_bytes) < 16_000  # a thumbnail would be tens of kilobytes


def test_input_with_provenance_is_opened_and_chained(signed, dev_keys, tmp_path):
    previous = tmp_path / "previous.png"
    previous.write_bytes(signed.data)
    spec = make_spec(dev_keys, input_action="c2pa.opened", ingredient_path=previous, asset_id=os.urandom(16))
    report = read_manifest(sign_image(signed.data, spec, dev_keys).data, "image/png", dev_keys.trust_anchors_pem)
    assert report.state == "trusted", [c.code for c in report.failures]
    assert report.actions[0] == "c2pa.opened" and report.active_label != signed.active_label


def test_spec_validation(dev_keys):
    with pytest.raises(ValueError, match="asset_id"):
        make_spec(dev_keys, asset_id=b"short")
    with pytest.raises(ValueError, match="ingredient_path"):
        make_spec(dev_keys, input_action="c2pa.opened")
    with pytest.raises(ValueError, match="input_action"):
        make_spec(dev_keys, input_action="c2pa.placed")
    with pytest.raises(ValueError, match="JSON"):
        make_spec(dev_keys, protection={"x": object()})


def test_callback_signer_is_the_production_plug_in(dev_keys):
    """A hardware key / KMS signs through a callback; here the callback uses a local key."""
    key = serialization.load_pem_private_key(dev_keys.c2pa_private_key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    calls = []

    def sign(data: bytes) -> bytes:
        calls.append(len(data))
        r, s = utils.decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    remote = dataclasses.replace(dev_keys, c2pa_private_key_pem=b"", c2pa_sign=sign)
    report = read_manifest(sign_image(png_bytes(6), make_spec(dev_keys), remote).data, "image/png", dev_keys.trust_anchors_pem)
    assert calls and report.state == "trusted"


def test_broken_key_is_a_signing_error(dev_keys):
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SigningError):
        sign_image(png_bytes(7), make_spec(dev_keys), dataclasses.replace(dev_keys, c2pa_private_key_pem=other))


def test_expired_certificate_is_reported(tmp_path):
    """A certificate valid at signing time but expired at verification: c2pa says so."""
    settings = make_settings(tmp_path)
    lifetime = timedelta(seconds=6)
    init_keystore(settings.keys_dir, password=None, name="Shortlived", now=datetime.now(UTC) - LEAF_VALIDITY + lifetime)
    keys = open_keystore(settings, env={})
    signed = sign_image(png_bytes(8), make_spec(keys), keys)
    fresh = read_manifest(signed.data, "image/png", keys.trust_anchors_pem)
    assert fresh.state == "trusted"
    time.sleep(max(0.0, (keys.cert_not_after - datetime.now(UTC)).total_seconds()) + 1.5)
    report = read_manifest(signed.data, "image/png", keys.trust_anchors_pem)
    assert report.state == "invalid"
    expired = [c for c in report.failures if c.code == "signingCredential.expired"]
    assert expired and "expired" in expired[0].explanation


def test_another_publishers_photo_as_ingredient(tmp_path, dev_keys):
    from shield.provenance import ensure_keystore

    other = ensure_keystore(make_settings(tmp_path / "other"), env={})
    previous = tmp_path / "theirs.png"
    previous.write_bytes(sign_image(png_bytes(9), make_spec(other), other).data)
    spec = make_spec(dev_keys, input_action="c2pa.opened", ingredient_path=previous, asset_id=os.urandom(16))
    report = read_manifest(sign_image(previous.read_bytes(), spec, dev_keys).data, "image/png", dev_keys.trust_anchors_pem)
    assert report.state == "trusted", [c.code for c in report.failures]
    assert report.signer.cert_fingerprint == dev_keys.cert_fingerprint


def test_soft_binding_and_assertion_must_agree_on_the_asset_id():
    from shield.provenance.reading import ASSET_ID_MISMATCH, _report

    active = {
        "label": "urn:c2pa:x",
        "assertions": [
            {"label": SHIELD_ASSERTION_LABEL, "data": {"asset_id": ASSET_ID.hex()}},
            {"label": "c2pa.soft-binding", "data": {"alg": SOFT_BINDING_ALG, "blocks": [{"scope": {}, "value": base64.b64encode(b"\x01" * 16).decode()}]}},
        ],
    }
    results = {"activeManifest": {"success": [{"code": "signingCredential.trusted"}], "failure": []}}
    report = _report("Trusted", results, active, None, None)
    assert report.state == "invalid" and report.has_code(ASSET_ID_MISMATCH)
    active["assertions"][1]["data"]["blocks"][0]["value"] = base64.b64encode(ASSET_ID).decode()
    assert _report("Trusted", results, active, None, None).state == "trusted"
