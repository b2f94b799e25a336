"""Keyless payload reading: redundancy, crops, collages, soft voting with Reed-Solomon."""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shield.watermark import read_payload
from shield.watermark.record import key_fingerprint
from wm_images import payload_for


def test_reads_without_key(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    reading = read_payload(marked)
    assert reading.payload == payload_for(1)
    assert reading.blocks_total == reading.blocks_valid == reading.blocks_voted == 63
    assert reading.candidates == 1 and reading.rs_errors_corrected == 0
    assert reading.crop_offset is None and reading.original_size == (300, 224)
    assert reading.key_fingerprint == key_fingerprint(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def test_quarter_area_crop(marked: np.ndarray) -> None:
    crop = marked[61 : 61 + 112, 83 : 83 + 150]  # half of each side, off the grid
    reading = read_payload(crop)
    assert reading.payload == payload_for(1)
    assert reading.crop_offset == (83, 61)


def test_ninety_percent_of_blocks_destroyed(marked: np.ndarray) -> None:
    rng = np.random.default_rng(10)
    edited = marked.copy()
    noise = rng.integers(0, 256, edited.shape, dtype=np.uint8)
    keep = np.zeros((7, 9), dtype=bool)
    keep[rng.integers(0, 7, 6), rng.integers(0, 9, 6)] = True  # at most 6 of 63 blocks survive
    mask = np.kron(~keep, np.ones((32, 32), dtype=bool))
    mask = np.pad(mask, ((0, 0), (0, 12)), mode="edge")
    edited[mask] = noise[mask]
    reading = read_payload(edited)
    assert reading.payload == payload_for(1)
    assert 1 <= reading.blocks_valid <= 6


def test_collage_counts_both_payloads(marked: np.ndarray, marked_b: np.ndarray) -> None:
    collage = marked.copy()
    collage[:, 160:] = marked_b[:, 160:]
    reading = read_payload(collage)
    assert reading.candidates == 2
    assert reading.payload == payload_for(1) and reading.blocks_voted == 35


def test_soft_voting_when_no_record_is_whole(marked: np.ndarray) -> None:
    """Flip 3% of all LSBs: every record fails its CRC; voting plus RS still decodes."""
    rng = np.random.default_rng(11)
    noisy = marked ^ (rng.random(marked.shape) < 0.03).astype(np.uint8)
    reading = read_payload(noisy)
    assert reading.blocks_valid == 0
    assert reading.payload == payload_for(1)


def test_nothing_to_read(original: np.ndarray) -> None:
    reading = read_payload(original)
    assert reading.payload is None and reading.blocks_valid == 0 and reading.candidates == 0
    assert read_payload(np.zeros((8, 8, 3), np.uint8)).payload is None


def test_small_crop_still_located(marked: np.ndarray) -> None:
    crop = marked[40:100, 60:110]  # 50x60: holds exactly one whole block, off the grid
    reading = read_payload(crop)
    assert reading.payload == payload_for(1) and reading.crop_offset == (60, 40)
