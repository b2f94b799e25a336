"""A platform that keeps the C2PA manifest but recompresses the picture: the copy's bytes no
longer match the signed ones and its fragile watermark is gone, yet the robust mark and the
PDQ fingerprint lead back to the record the manifest names, so the verdict is ``re-encoded``,
never ``authentic``. The same manifest on another picture, a local edit, or a publisher the
verifier does not trust are not re-encoded copies. Real protect, devnet and c2pa, as in
test_soft_binding.py.
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from shield import softbinding
from shield.pipeline import verify_file
from shield.provenance import ensure_keystore
from shield.report import Verdict, render_text

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not os.access(REPO / "node_modules" / ".bin" / "anvil", os.X_OK),
                                reason="needs node_modules/.bin/anvil (run `npm ci` or `make setup`)")

DATA_HASH = "assertion.dataHash.mismatch"


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _manifest_chunk(png: bytes) -> bytes:
    """The whole ``caBX`` chunk (length, type, payload, CRC) of a signed PNG."""
    pos = 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        if png[pos + 4:pos + 8] == b"caBX":
            return png[pos:pos + 12 + length]
        pos += 12 + length
    raise AssertionError("no caBX chunk in the protected PNG")


def _png_with_manifest(rgb: np.ndarray, chunk: bytes, path: Path) -> Path:
    """``rgb`` saved as PNG with the publisher's manifest chunk copied in before IEND."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    data = buf.getvalue()
    end = data.rindex(b"\x00\x00\x00\x00IEND")
    path.write_bytes(data[:end] + chunk + data[end:])
    return path


def _jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def kept(published: Any) -> tuple[np.ndarray, bytes]:
    """The protected pixels and the publisher's manifest chunk."""
    out = published.outcome.output
    return _pixels(out), _manifest_chunk(out.read_bytes())


def test_reencoded_copy_with_its_manifest_is_reencoded(published: Any, kept: tuple[np.ndarray, bytes],
                                                       tmp_path: Path) -> None:
    rgb, chunk = kept
    copy = _png_with_manifest(_jpeg_roundtrip(rgb, 95), chunk, tmp_path / "reencoded.png")

    report = verify_file(copy, published.settings)

    assert report.verdict is Verdict.REENCODED and report.exit_code == 1, report.reasons
    assert report.c2pa.state == "invalid" and report.c2pa.bytes_changed
    assert report.asset_id == published.outcome.asset_id == report.soft_binding.asset_id
    assert report.ledger.found and report.ledger.tx == published.outcome.ledger["tx"]
    assert report.ledger.publisher_consistent is True and report.ledger.publisher_trusted is True
    first = report.reasons[0]
    assert first.startswith("published by ") and published.outcome.ledger["tx"] in first
    assert ("this copy was re-compressed or resized after signing, so exact integrity cannot be certified; "
            "the manifest is the publisher's; visual match ") in first
    text = render_text(report)
    assert text.startswith("RE-ENCODED: ")
    assert text.count(DATA_HASH) == 1, text  # the SDK reports it twice: said once
    assert "hashes not compared" in text


@pytest.mark.parametrize("marked", [False, True], ids=["plain", "with-the-copied-mark"])
def test_manifest_copied_onto_another_picture_is_invalid(published: Any, kept: tuple[np.ndarray, bytes],
                                                         tmp_path: Path, marked: bool) -> None:
    """The mark's key is public: a forger can copy the asset id too, not the picture."""
    from skimage import data

    rgb, chunk = kept
    other = np.ascontiguousarray(np.asarray(Image.fromarray(data.coffee()).resize((rgb.shape[1], rgb.shape[0]))))
    if marked:
        other = softbinding.embed(other, bytes.fromhex(published.outcome.asset_id), softbinding.DEFAULT_KEY)
    copy = _png_with_manifest(_jpeg_roundtrip(other, 95), chunk, tmp_path / "copied.png")

    report = verify_file(copy, published.settings)

    assert report.verdict is Verdict.INVALID and report.exit_code == 1, report.reasons
    assert [r for r in report.reasons if r.startswith("C2PA: ")] == [
        "C2PA: The image bytes differ from the ones that were signed: the image was modified, or the manifest"
        " was copied from another image."]
    if marked:
        assert report.soft_binding.matched is False
        assert any("does not look like the recorded one" in r for r in report.reasons), report.reasons
    else:
        assert not report.soft_binding.found


def test_painted_square_with_the_manifest_kept_is_modified(published: Any, kept: tuple[np.ndarray, bytes],
                                                          tmp_path: Path) -> None:
    rgb, chunk = kept
    painted = Image.fromarray(rgb)
    ImageDraw.Draw(painted).rectangle((200, 120, 260, 170), fill=(250, 200, 180))
    copy = _png_with_manifest(np.asarray(painted), chunk, tmp_path / "painted.png")

    report = verify_file(copy, published.settings)

    assert report.verdict is Verdict.MODIFIED, report.reasons
    assert report.watermark.status == "tampered" and report.watermark.tampered_regions


def test_reencoded_copy_of_an_untrusted_publisher_is_not_reencoded(published: Any, kept: tuple[np.ndarray, bytes],
                                                                   tmp_path: Path) -> None:
    """The trust decision of re-encoded-match: the verifier's anchors, not the manifest's word."""
    strangers = ensure_keystore(dataclasses.replace(published.settings, keys_dir=tmp_path / "stranger-keys"))
    rgb, chunk = kept
    copy = _png_with_manifest(_jpeg_roundtrip(rgb, 95), chunk, tmp_path / "reencoded.png")

    report = verify_file(copy, published.settings, trust_anchors=strangers.trust_anchors_pem)

    assert report.verdict is Verdict.INVALID and report.exit_code == 1, report.reasons
    assert report.ledger.found and report.ledger.publisher_proven and not report.ledger.publisher_trusted
    assert any("not in your trust anchors" in r for r in report.reasons), report.reasons


def test_reencoded_copy_offline_is_not_reencoded(published: Any, kept: tuple[np.ndarray, bytes],
                                                 tmp_path: Path) -> None:
    rgb, chunk = kept
    copy = _png_with_manifest(_jpeg_roundtrip(rgb, 95), chunk, tmp_path / "reencoded.png")
    report = verify_file(copy, published.settings, use_ledger=False)
    assert report.verdict is Verdict.INVALID, report.reasons
    assert any("--offline" in r for r in report.reasons), report.reasons
