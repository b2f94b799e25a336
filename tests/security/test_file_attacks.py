"""Attacks on the file (issue 18, failures 3 and 4, and the attacks that already held),
against a real anvil, each with the exact verdict and exit code."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shield.ledger import open_ledger
from shield.pipeline import verify_file
from shield.provenance import ensure_keystore
from shield.report import Verdict
from shield.watermark import BLOCK_SIZE
from tests.pipeline.conftest import HAS_ANVIL
from tests.security.conftest import Victim, build_png, chunks, pixels, save_pixels

pytestmark = [pytest.mark.chain, pytest.mark.skipif(not HAS_ANVIL, reason="needs node_modules/.bin/anvil (run npm ci)")]


def _insert_after_ihdr(data: bytes, extra: list[tuple[bytes, bytes]]) -> bytes:
    parts = chunks(data)
    return build_png(parts[:1] + extra + parts[1:])


def _check(victim: Victim, photo: Path, verdict: Verdict, exit_code: int, words: str = "") -> None:
    report = verify_file(photo, victim.settings)
    assert report.verdict is verdict and report.exit_code == exit_code, report.reasons
    assert words in " ".join(report.reasons), report.reasons


def _stripped(victim: Victim, tmp_path: Path, i: int = 0) -> Path:
    return save_pixels(pixels(victim.photos[i].output), tmp_path / f"stripped{i}.png")


def test_baselines_verify_authentic(victim: Victim, tmp_path: Path) -> None:
    _check(victim, victim.photos[0].output, Verdict.AUTHENTIC, 0)
    _check(victim, _stripped(victim, tmp_path), Verdict.AUTHENTIC_STRIPPED, 0)


# ------------------------------------------------------------------ failure 3: APNG


def _apng(first: np.ndarray, second: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(first).save(buf, format="PNG", save_all=True, append_images=[Image.fromarray(second)])
    return buf.getvalue()


def _edited(rgb: np.ndarray) -> np.ndarray:
    out = rgb.copy()
    out[200:300, 200:300] = (0, 0, 255)
    return out


def test_apng_with_an_edited_second_frame_stripped(victim: Victim, tmp_path: Path) -> None:
    rgb = pixels(victim.photos[0].output)
    photo = tmp_path / "anim.png"
    photo.write_bytes(_apng(rgb, _edited(rgb)))
    _check(victim, photo, Verdict.MODIFIED, 1, "holds 2 frames")


def test_apng_chunks_spliced_into_the_signed_file(victim: Victim, tmp_path: Path) -> None:
    rgb = pixels(victim.photos[0].output)
    anim = [c for c in chunks(_apng(rgb, _edited(rgb))) if c[0] in (b"acTL", b"fcTL", b"fdAT")]
    actl, fctl0 = anim[0], anim[1]
    rest = anim[2:]
    parts = chunks(victim.photos[0].output.read_bytes())
    idat = [i for i, c in enumerate(parts) if c[0] == b"IDAT"]
    spliced = parts[:idat[0]] + [actl, fctl0] + parts[idat[0]:idat[-1] + 1] + rest + parts[idat[-1] + 1:]
    photo = tmp_path / "anim-signed.png"
    photo.write_bytes(build_png(spliced))
    _check(victim, photo, Verdict.MODIFIED, 1, "frames")


# ------------------------------------------------------------------ failure 4: colour metadata


def _gama(gamma: float) -> tuple[bytes, bytes]:
    return b"gAMA", struct.pack(">I", round(gamma * 100_000))


def _iccp_swapped() -> tuple[bytes, bytes]:
    """An ICC profile named "sRGB" whose red and blue colorants are swapped."""
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = bytearray(profile)
    count = struct.unpack_from(">I", data, 128)[0]
    tags = {bytes(data[132 + 12 * i:136 + 12 * i]): 132 + 12 * i for i in range(count)}
    r, b = tags.get(b"rXYZ"), tags.get(b"bXYZ")
    if r is not None and b is not None:
        data[r + 4:r + 12], data[b + 4:b + 12] = data[b + 4:b + 12], data[r + 4:r + 12]
    return b"iCCP", b"sRGB\0\0" + zlib.compress(bytes(data))


@pytest.mark.parametrize("chunk", ["gAMA", "iCCP", "cHRM", "sRGB", "eXIf"])
def test_colour_chunk_on_the_stripped_photo(victim: Victim, tmp_path: Path, chunk: str) -> None:
    extra = {
        "gAMA": _gama(0.2),
        "iCCP": _iccp_swapped(),
        "cHRM": (b"cHRM", struct.pack(">8I", 31270, 32900, 15000, 6000, 30000, 60000, 64000, 33000)),
        "sRGB": (b"sRGB", b"\x00"),
        "eXIf": (b"eXIf", b"MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00"),
    }[chunk]
    photo = tmp_path / f"{chunk}.png"
    photo.write_bytes(_insert_after_ihdr(_stripped(victim, tmp_path).read_bytes(), [extra]))
    _check(victim, photo, Verdict.MODIFIED, 1, chunk)


def test_gamma_chunk_in_the_signed_file(victim: Victim, tmp_path: Path) -> None:
    photo = tmp_path / "gama-signed.png"
    photo.write_bytes(_insert_after_ihdr(victim.photos[0].output.read_bytes(), [_gama(0.2)]))
    _check(victim, photo, Verdict.MODIFIED, 1, "gAMA")


def test_webp_with_an_icc_profile(victim: Victim, tmp_path: Path) -> None:
    rgb = pixels(victim.photos[0].output)
    plain, tinted = tmp_path / "plain.webp", tmp_path / "tinted.webp"
    Image.fromarray(rgb).save(plain, format="WEBP", lossless=True)
    Image.fromarray(rgb).save(tinted, format="WEBP", lossless=True, icc_profile=zlib.decompress(_iccp_swapped()[1][6:]))
    _check(victim, plain, Verdict.AUTHENTIC_STRIPPED, 0)
    _check(victim, tinted, Verdict.MODIFIED, 1, "WebP ICCP")


def test_jpeg_with_an_icc_profile_is_not_authentic(victim: Victim, tmp_path: Path) -> None:
    photo = tmp_path / "tinted.jpg"
    Image.fromarray(pixels(victim.photos[0].output)).save(photo, quality=100,
                                                          icc_profile=zlib.decompress(_iccp_swapped()[1][6:]))
    report = verify_file(photo, victim.settings)
    # JPEG destroys the fragile mark; the soft binding still leads to the record (issue 19),
    # but the recolouring profile makes the copy modified, never a re-encoded match.
    assert report.verdict is Verdict.MODIFIED and report.exit_code == 1, report.reasons
    assert any("JPEG APP2 ICC_PROFILE" in r for r in report.reasons), report.reasons
    assert report.image is not None and "JPEG APP2 ICC_PROFILE" in report.image.rendering_metadata


def test_jpeg_with_an_srgb_profile_is_a_reencoded_match(victim: Victim, tmp_path: Path) -> None:
    """Social networks attach an sRGB profile to re-encoded JPEGs: it shows the same pixels."""
    from PIL import ImageCms

    photo = tmp_path / "posted.jpg"
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(pixels(victim.photos[0].output)).save(photo, quality=85, icc_profile=srgb)
    report = verify_file(photo, victim.settings)
    assert report.verdict is Verdict.REENCODED_MATCH and report.exit_code == 1, report.reasons
    assert report.asset_id == victim.photos[0].asset_id


# ------------------------------------------------------------------ attacks that already held


def test_lsb_flips(victim: Victim, tmp_path: Path) -> None:
    rgb = pixels(victim.photos[0].output)
    rgb[100:110, 100:110] ^= 1
    _check(victim, save_pixels(rgb, tmp_path / "lsb.png"), Verdict.MODIFIED, 1, "region")


def test_block_swap(victim: Victim, tmp_path: Path) -> None:
    rgb = pixels(victim.photos[0].output)
    b = BLOCK_SIZE
    a, c = rgb[0:b, 0:b].copy(), rgb[2 * b:3 * b, 2 * b:3 * b].copy()
    rgb[0:b, 0:b], rgb[2 * b:3 * b, 2 * b:3 * b] = c, a
    _check(victim, save_pixels(rgb, tmp_path / "swap.png"), Verdict.MODIFIED, 1, "region")


def test_collage_of_two_protected_photos(victim: Victim, tmp_path: Path) -> None:
    a, b = pixels(victim.photos[0].output), pixels(victim.photos[1].output)
    half = (a.shape[1] // (2 * BLOCK_SIZE)) * BLOCK_SIZE
    a[:, half:] = b[:, half:]
    report = verify_file(save_pixels(a, tmp_path / "collage.png"), victim.settings)
    assert report.verdict in (Verdict.MODIFIED, Verdict.INVALID) and report.exit_code == 1, report.reasons


def test_manifest_transplant(victim: Victim, tmp_path: Path) -> None:
    donor = [c for c in chunks(victim.photos[0].output.read_bytes()) if c[0] == b"caBX"]
    target = [c for c in chunks(victim.photos[1].output.read_bytes()) if c[0] != b"caBX"]
    photo = tmp_path / "transplant.png"
    photo.write_bytes(build_png(target[:1] + donor + target[1:]))
    report = verify_file(photo, victim.settings)
    assert report.verdict in (Verdict.INVALID, Verdict.MODIFIED) and report.exit_code == 1, report.reasons


def test_revoked_photo_replayed(victim: Victim, tmp_path: Path) -> None:
    """Last in the module: the publisher revokes photo 1; its copies stop verifying."""
    keys = ensure_keystore(victim.settings)
    ledger = open_ledger(victim.settings, keys.eth_private_key, start_devnet=False)
    ledger.revoke(bytes.fromhex(victim.photos[1].asset_id), "withdrawn")
    ledger.close()
    _check(victim, victim.photos[1].output, Verdict.INVALID, 1, "revoked")
    _check(victim, _stripped(victim, tmp_path, 1), Verdict.INVALID, 1, "revoked")
