"""The verdict from typed evidence (issue 18, failure 6) and the rendering-metadata
reader, without files, keys or a chain."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pytest
from PIL import Image
from skimage import data

from shield.imaging import encode_png
from shield.imaging.rendering import rendering_metadata
from shield.report import (
    C2paEvidence,
    ImageEvidence,
    LedgerEvidence,
    Verdict,
    VerifyReport,
    WatermarkEvidence,
    decide,
    render_text,
    summary_for,
)

TRUSTED = C2paEvidence(state="trusted", signer="alice")
INTACT = WatermarkEvidence(present=True, status="intact", intact_fraction=1.0)


def _ledger(**kw: object) -> LedgerEvidence:
    base: dict[str, object] = dict(reachable=True, found=True, chain_id=31337, block=3, publisher="0x" + "ab" * 20,
                                   timestamp=datetime(2026, 12, 3, tzinfo=UTC), publisher_proven=True,
                                   publisher_trusted=True, publisher_signer="alice")
    base.update(kw)
    return LedgerEvidence(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "verdict", "words"), [
    (dict(hashes_match=False, pixels_match=True, file_match=False, manifest_match=True), Verdict.INVALID, "file hash differs"),
    (dict(hashes_match=False, pixels_match=True, file_match=True, manifest_match=False), Verdict.INVALID, "manifest hash differs"),
    (dict(hashes_match=False, pixels_match=False, file_match=False, manifest_match=True), Verdict.MODIFIED, "pixels differ"),
    (dict(hashes_match=False), Verdict.INVALID, "file or manifest hash differs"),
    (dict(hashes_match=True, pixels_match=True, file_match=True, manifest_match=True, publisher_consistent=True),
     Verdict.AUTHENTIC, "trusted"),
    (dict(hashes_match=True, publisher_proven=False), Verdict.INVALID, "cannot prove"),
])
def test_each_hash_mismatch_has_its_own_reason(kw: dict[str, object], verdict: Verdict, words: str) -> None:
    got, reasons, _ = decide(TRUSTED, INTACT, _ledger(**kw))
    assert got is verdict and words in " ".join(reasons), reasons


def test_stripped_path_applies_trust() -> None:
    absent = C2paEvidence(state="absent")
    ok = _ledger(hashes_match=True, pixels_match=True)
    assert decide(absent, INTACT, ok)[0] is Verdict.AUTHENTIC_STRIPPED
    verdict, reasons, skipped = decide(absent, INTACT, _ledger(pixels_match=True, publisher_trusted=False))
    assert verdict is Verdict.UNCHECKED and verdict.exit_code == 3
    assert "not in your trust anchors" in " ".join(reasons) and any("trust" in s for s in skipped)


def test_frames_and_rendering_metadata_are_modifications() -> None:
    ok = _ledger(hashes_match=True, pixels_match=True)
    image = ImageEvidence("x.png", 8, 8, "PNG", frames=2)
    assert decide(TRUSTED, INTACT, ok, image)[0] is Verdict.MODIFIED
    image = ImageEvidence("x.png", 8, 8, "PNG", rendering_metadata=("gAMA",))
    verdict, reasons, _ = decide(C2paEvidence(state="absent"), INTACT, ok, image)
    assert verdict is Verdict.MODIFIED and verdict.exit_code == 1 and "gAMA" in reasons[0]


def test_report_text_names_development_keys_and_publisher_proof() -> None:
    c2pa = C2paEvidence(state="trusted", signer="alice [DEVELOPMENT KEY]", development=True)
    ledger = _ledger(hashes_match=True, pixels_match=True, file_match=True, manifest_match=True,
                     publisher_signer="alice [DEVELOPMENT KEY]", publisher_development=True, publisher_consistent=True)
    verdict, reasons, skipped = decide(c2pa, INTACT, ledger)
    text = render_text(VerifyReport(verdict, "aa" * 16, summary_for(verdict), c2pa, INTACT, ledger, reasons, skipped))
    assert verdict is Verdict.AUTHENTIC
    assert "DEVELOPMENT KEY: the signer's password" in text and "proves its keys, trusted" in text


def test_rendering_metadata_of_shield_output_is_empty() -> None:
    png = encode_png(data.astronaut()[:64, :64])
    assert rendering_metadata(png, "PNG").items == () and not rendering_metadata(png, "PNG").changes_rendering


def test_rendering_metadata_finds_apng_icc_and_orientation() -> None:
    rgb = data.astronaut()[:64, :64]
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", save_all=True, append_images=[Image.fromarray(np.flipud(rgb))])
    found = rendering_metadata(buf.getvalue(), "PNG")
    assert found.frames == 2 and {"acTL", "fcTL", "fdAT"} <= set(found.items)
    exif = Image.Exif()
    exif[0x0112] = 6
    jpg, webp = io.BytesIO(), io.BytesIO()
    Image.fromarray(rgb).save(jpg, format="JPEG", exif=exif.tobytes(), icc_profile=b"\0" * 128)
    Image.fromarray(rgb).save(webp, format="WEBP", lossless=True, exif=exif.tobytes())
    assert set(rendering_metadata(jpg.getvalue(), "JPEG").items) == {"JPEG APP2 ICC_PROFILE", "JPEG APP1 EXIF orientation"}
    assert rendering_metadata(webp.getvalue(), "WEBP").items == ("WebP EXIF orientation",)


@pytest.mark.parametrize("junk", [b"", b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n\xff\xff\xff\xffacTL", b"\xff\xd8\xff\xe1\x00"])
def test_rendering_metadata_never_raises_on_junk(junk: bytes) -> None:
    for fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        rendering_metadata(junk, fmt)
