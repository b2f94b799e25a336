"""Verification on synthetic images: every attack of the issue, localized to its blocks."""

from __future__ import annotations

import io

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image, ImageDraw, ImageFilter

from shield.watermark import WatermarkKeyError, WatermarkReport, WatermarkStatus, verify
from wm_images import payload_for, synthetic

B = 32


def changed_blocks(a: np.ndarray, b: np.ndarray) -> set[tuple[int, int]]:
    """(row, col) of signed blocks with any changed value (edge blocks absorb remainders)."""
    h, w = a.shape[:2]
    ny, nx = max(1, h // B), max(1, w // B)
    ys, xs = np.nonzero((a != b).any(axis=2))
    return {(min(y // B, ny - 1), min(x // B, nx - 1)) for y, x in zip(ys, xs)}


def flagged(report: WatermarkReport) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(report.tampered_blocks))}


def test_untouched_is_intact(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    report = verify(marked, key.public_key())
    assert report.status is WatermarkStatus.INTACT
    assert report.present and report.intact_fraction == 1.0
    assert not report.tampered_blocks.any() and report.tampered_regions == ()
    assert report.payload == payload_for(1) and report.payload_authenticated
    assert report.crop_offset is None and report.original_size == (300, 224)
    assert report.tampered_blocks.shape == (7, 9)


def test_raw_public_key_bytes(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert verify(marked, raw).status is WatermarkStatus.INTACT


@pytest.mark.parametrize("y,x,channel,delta", [(0, 0, 0, 1), (100, 150, 1, -1), (223, 299, 2, 1), (70, 290, 0, 50)])
def test_single_pixel_in_its_block(marked: np.ndarray, key: Ed25519PrivateKey, y: int, x: int, channel: int, delta: int) -> None:
    edited = marked.copy()
    edited[y, x, channel] = np.uint8((int(edited[y, x, channel]) + delta) % 256)
    report = verify(edited, key.public_key())
    assert report.status is WatermarkStatus.TAMPERED
    assert flagged(report) == changed_blocks(marked, edited)
    (region,) = report.tampered_regions
    assert region.x <= x < region.x + region.width and region.y <= y < region.y + region.height


def test_copy_move(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    for src, dst in (((0, 0), (96, 160)), ((5, 13), (70, 101))):  # aligned, then not
        edited = marked.copy()
        edited[dst[0] : dst[0] + 64, dst[1] : dst[1] + 64] = marked[src[0] : src[0] + 64, src[1] : src[1] + 64]
        report = verify(edited, key.public_key())
        assert report.status is WatermarkStatus.TAMPERED
        assert flagged(report) == changed_blocks(marked, edited)


def test_splice_from_other_protected_image(marked: np.ndarray, marked_b: np.ndarray, key: Ed25519PrivateKey) -> None:
    edited = marked.copy()
    edited[64:160, 96:192] = marked_b[64:160, 96:192]  # same place, same size, same key
    report = verify(edited, key.public_key())
    assert report.status is WatermarkStatus.TAMPERED
    assert flagged(report) == changed_blocks(marked, edited) == {(r, c) for r in range(2, 5) for c in range(3, 6)}
    assert "another protected image" in report.explanation


def test_block_shuffle(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    edited = marked.copy()
    a, b = (slice(32, 64), slice(64, 96)), (slice(128, 160), slice(192, 224))
    edited[a], edited[b] = marked[b], marked[a]
    report = verify(edited, key.public_key())
    assert flagged(report) == {(1, 2), (4, 6)}
    assert len(report.tampered_regions) == 2


def test_collage_same_publisher(marked: np.ndarray, marked_b: np.ndarray, key: Ed25519PrivateKey) -> None:
    collage = marked.copy()
    collage[:, 160:] = marked_b[:, 160:]  # right part (blocks 5..8) from the other asset
    report = verify(collage, key.public_key(), asset_id=payload_for(1).asset_id)
    assert report.status is WatermarkStatus.TAMPERED
    assert flagged(report) == {(r, c) for r in range(7) for c in range(5, 9)}
    assert report.payload == payload_for(1)
    # without the expected id the majority (left, 5 of 9 columns) defines the image
    assert flagged(verify(collage, key.public_key())) == flagged(report)


def test_crop_detected_with_offset(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    crop = marked[37:37 + 150, 51:51 + 200]
    report = verify(crop, key.public_key())
    assert report.status is WatermarkStatus.CROPPED
    assert report.crop_offset == (51, 37) and report.original_size == (300, 224)
    assert not report.tampered_blocks.any() and report.unverified_blocks.any()
    assert report.blocks_checked == report.blocks_intact == 3 * 5  # block rows 2-4, columns 2-6
    assert 0.5 < report.intact_fraction < 1.0


def test_aligned_crop_then_edit(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    crop = marked[64:192, 32:256].copy()
    crop[40, 100, 0] ^= 1  # crop pixel (100, 40) = signed pixel (132, 104): block row 3, col 4
    report = verify(crop, key.public_key())
    assert report.status is WatermarkStatus.TAMPERED and report.crop_offset == (32, 64)
    (region,) = report.tampered_regions
    assert (region.x, region.y, region.width, region.height) == (96, 32, 32, 32)


def test_extended_canvas(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    wider = np.concatenate([marked, np.zeros((224, 40, 3), np.uint8)], axis=1)
    report = verify(wider, key.public_key())
    assert report.status is WatermarkStatus.TAMPERED
    (region,) = report.tampered_regions
    assert (region.x, region.width) == (300, 40)
    assert report.crop_offset == (0, 0) and "content added" in report.explanation


def test_text_overlay(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    img = Image.fromarray(marked.copy())
    ImageDraw.Draw(img).text((70, 90), "FAKE NEWS", fill=(255, 255, 255))
    edited = np.asarray(img)
    report = verify(edited, key.public_key())
    assert report.status is WatermarkStatus.TAMPERED
    assert flagged(report) == changed_blocks(marked, edited) != set()


def test_blurred_region(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    edited = marked.copy()
    patch = Image.fromarray(np.ascontiguousarray(marked[80:144, 120:184])).filter(ImageFilter.GaussianBlur(3))
    edited[80:144, 120:184] = np.asarray(patch)
    report = verify(edited, key.public_key())
    assert flagged(report) == changed_blocks(marked, edited)
    assert {(r, c) for r in (3, 4) for c in (4, 5)} <= flagged(report)


def test_payload_survives_90_percent_tampered(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    rng = np.random.default_rng(9)
    edited = marked.copy()
    blocks = [(r, c) for r in range(7) for c in range(9)]
    keep = set(map(tuple, rng.permutation(blocks)[: len(blocks) // 10].tolist()))
    for r, c in blocks:
        if (r, c) not in keep:
            x1 = 300 if c == 8 else (c + 1) * B
            edited[r * B : (r + 1) * B, c * B : x1] = rng.integers(0, 256, (B, x1 - c * B, 3))
    report = verify(edited, key.public_key())
    assert report.payload == payload_for(1) and report.payload_authenticated
    assert report.blocks_intact == len(keep)
    assert report.status is WatermarkStatus.REENCODED  # damage spread everywhere
    assert "re-encoded, fragile watermark destroyed" in report.explanation


def test_wrong_key_fails_cleanly(marked: np.ndarray, other_key: Ed25519PrivateKey) -> None:
    report = verify(marked, other_key.public_key())
    assert report.status is WatermarkStatus.WRONG_KEY
    assert report.present and report.intact_fraction == 0.0
    assert report.payload == payload_for(1) and not report.payload_authenticated


def test_malformed_key_and_image(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    with pytest.raises(WatermarkKeyError, match="public_key"):
        verify(marked, b"\x01" * 31)
    with pytest.raises(TypeError, match="public_key"):
        verify(marked, key)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rgb"):
        verify(marked.astype(np.int16), key.public_key())
    with pytest.raises(TypeError, match="rgb"):
        verify(np.zeros((10, 10, 4), np.uint8), key.public_key())


def test_unmarked_and_tiny_images(original: np.ndarray, key: Ed25519PrivateKey) -> None:
    report = verify(original, key.public_key())
    assert report.status is WatermarkStatus.ABSENT and not report.present and report.payload is None
    assert verify(np.zeros((5, 7, 3), np.uint8), key.public_key()).status is WatermarkStatus.ABSENT


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_reencoded_and_resized(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    expected = payload_for(1).asset_id
    for damaged in (_jpeg(marked, 95), np.asarray(Image.fromarray(marked).resize((240, 180)))):
        report = verify(damaged, key.public_key(), asset_id=expected)
        assert report.status is WatermarkStatus.REENCODED
        assert report.explanation.startswith("re-encoded, fragile watermark destroyed")
        assert verify(damaged, key.public_key()).status is WatermarkStatus.ABSENT


def test_scattered_damage_everywhere_is_reencoding(key: Ed25519PrivateKey) -> None:
    from shield.watermark import embed

    marked = embed(synthetic(256, 256, seed=12), payload_for(12), key)
    rng = np.random.default_rng(13)
    noisy = marked.copy()
    hit = rng.random((8, 8)) < 0.9
    for r, c in zip(*np.nonzero(hit)):
        y, x = r * B + rng.integers(0, B), c * B + rng.integers(0, B)
        noisy[y, x, 0] ^= 2
    report = verify(noisy, key.public_key())
    assert report.status is WatermarkStatus.REENCODED
    assert report.payload == payload_for(12)
    # the same amount of damage in one corner is a local edit
    local = marked.copy()
    local[: 8 * B, : 7 * B][::7, ::7, 0] ^= 2
    assert verify(local, key.public_key()).status is WatermarkStatus.TAMPERED


def test_substituted_image_of_same_publisher(marked_b: np.ndarray, key: Ed25519PrivateKey) -> None:
    report = verify(marked_b, key.public_key(), asset_id=payload_for(1).asset_id)
    assert report.status is WatermarkStatus.TAMPERED and report.tampered_blocks.all()
    assert "expected asset id" in report.explanation


def test_forged_record_cannot_claim_a_huge_image(key: Ed25519PrivateKey) -> None:
    """Records are keyless: one claiming a 16M x 16M image must not make verify allocate it."""
    import zlib

    from shield.watermark.layout import REC, extract, insert, slots
    from shield.watermark.layout import Grid as _Grid

    img = synthetic(64, 64, seed=14)
    grid = _Grid(64, 64)
    record = bytearray(84)
    record[0] = 1
    record[1:4] = record[4:7] = (2**24 - 1).to_bytes(3, "big")
    record[80:84] = zlib.crc32(bytes(record[:80])).to_bytes(4, "big")
    bits = np.unpackbits(np.frombuffer(bytes(record), np.uint8))
    for g in grid.groups():
        x0, y0 = int(grid.xs[g.bx0]), int(grid.ys[g.by0])
        blocks = extract(img, x0, y0, g)
        blocks[:, REC] = (blocks[:, REC] & 0xFE) | bits
        insert(img, x0, y0, g, blocks)
    assert slots(32, 32).rec.size == bits.size
    from shield.watermark.record import crc_ok
    from shield.watermark.scan import scan

    assert crc_ok(scan(img, grid, 0, 0, full=False).records).all()  # the forgery is well-formed
    report = verify(img, key.public_key())
    assert report.status is WatermarkStatus.ABSENT
