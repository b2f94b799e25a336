"""The JUMBF/CBOR reader: RFC 8949 vectors, limits, and agreement with the SDK's bytes."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from provenance_helpers import make_spec, png_bytes

from shield.provenance import jumbf


@pytest.mark.parametrize(
    ("hex_", "value"),
    [  # RFC 8949 Appendix A
        ("00", 0),
        ("17", 23),
        ("1903e8", 1000),
        ("1bffffffffffffffff", 2**64 - 1),
        ("20", -1),
        ("3903e7", -1000),
        ("4401020304", b"\x01\x02\x03\x04"),
        ("6449455446", "IETF"),
        ("83010203", [1, 2, 3]),
        ("a201020304", {1: 2, 3: 4}),
        ("c074323031332d30332d32315432303a30343a30305a", "2013-03-21T20:04:00Z"),
        ("f4", False),
        ("f5", True),
        ("f6", None),
    ],
)
def test_cbor_vectors(hex_, value):
    assert jumbf.cbor_decode(bytes.fromhex(hex_)) == value


@pytest.mark.parametrize("hex_", ["", "19", "44010203", "5f", "a1"])
def test_cbor_rejects_truncated_or_unsupported(hex_):
    with pytest.raises(jumbf.CborError):
        jumbf.cbor_decode(bytes.fromhex(hex_))


def test_cbor_depth_limit():
    with pytest.raises(jumbf.CborError, match="deep"):
        jumbf.cbor_decode(b"\x81" * (jumbf.MAX_CBOR_DEPTH + 2) + b"\x00")


def test_png_without_manifest():
    assert jumbf.png_manifest_store(png_bytes(0)) is None
    assert jumbf.png_manifest_store(b"GIF89a") is None
    assert jumbf.active_manifest_signature(b"garbage") is None
    assert jumbf.cose_certificate_chain(b"\xff") == []


def test_store_and_certificate_from_a_signed_png(dev_keys):
    from shield.provenance import sign_image

    signed = sign_image(png_bytes(1), make_spec(dev_keys), dev_keys)
    store = jumbf.png_manifest_store(signed.data)
    assert store == signed.manifest_bytes
    assert hashlib.sha256(store).digest() == signed.manifest_hash
    label, cose = jumbf.active_manifest_signature(store)
    assert label == signed.active_label
    chain = jumbf.cose_certificate_chain(cose)
    assert hashlib.sha256(chain[0]).digest() == dev_keys.cert_fingerprint
    subject = x509.load_der_x509_certificate(chain[0]).subject.rfc4514_string()
    assert dev_keys.publisher_name + " [DEVELOPMENT KEY]" in subject  # development certificates say so
