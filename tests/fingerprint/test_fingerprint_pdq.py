"""The PDQ perceptual fingerprint and its lookup."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from shield import fingerprint
from shield.errors import ShieldError
from shield.fingerprint import MATCH_THRESHOLD, Fingerprint, FingerprintInputError, MemoryIndex, compute, hamming

# PDQ of skimage's astronaut (512x512: hashed as is). Known answer of the reference code.
ASTRONAUT_PDQ = "2d6b1af3a956c529e79ca3d2526fa834d4196c81cedd04de0a26b855fc99b724"
A, B = bytes([1]) * 16, bytes([2]) * 16


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def _resize(rgb: np.ndarray, factor: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb).resize((round(w * factor), round(h * factor)), Image.Resampling.BICUBIC))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


def test_known_answer(astronaut: np.ndarray) -> None:
    fp = compute(astronaut)
    assert fp.hex() == ASTRONAUT_PDQ and fp.reliable and fp.quality == 100
    assert Fingerprint.from_hex(ASTRONAUT_PDQ) == fp


def test_large_photo_is_reduced_first(astronaut: np.ndarray) -> None:
    big = np.ascontiguousarray(np.kron(astronaut, np.ones((4, 4, 1), np.uint8)))  # 2048x2048
    assert hamming(compute(big), compute(astronaut)) <= 8


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(lambda a: _jpeg(a, 50), id="jpeg50"),
        pytest.param(lambda a: _resize(a, 0.5), id="resize0.5"),
        pytest.param(lambda a: _jpeg(_resize(a, 0.6), 75), id="chain"),
        # PDQ is not crop-tolerant: 2% of each side is about its limit (10% gives ~88 bits;
        # the soft-binding mark is the route for crops, see bench/results/softbinding.json).
        pytest.param(lambda a: np.ascontiguousarray(a[5:-5, 5:-5]), id="crop2"),
    ],
)
def test_copies_match_their_record(astronaut: np.ndarray, attack: object) -> None:
    index = MemoryIndex()
    index.add(A, compute(astronaut))
    index.add(B, compute(skimage.data.chelsea()))
    found = index.lookup(compute(attack(astronaut)))  # type: ignore[operator]
    assert [m.asset_id for m in found] == [A]
    assert found[0].distance <= MATCH_THRESHOLD


def test_unrelated_pictures_do_not_match(astronaut: np.ndarray) -> None:
    index = MemoryIndex()
    index.add(A, compute(astronaut))
    for other in (skimage.data.chelsea(), skimage.data.coffee(), skimage.data.rocket()):
        assert index.lookup(compute(np.ascontiguousarray(other))) == []
        assert int(index.distances(compute(np.ascontiguousarray(other)))[0]) > MATCH_THRESHOLD


def test_flat_image_is_not_reliable() -> None:
    fp = compute(np.full((40, 60, 3), 128, np.uint8))
    assert not fp.reliable


def test_hamming_and_commitment() -> None:
    a = Fingerprint(bytes(32), 100)
    b = Fingerprint(bytes([0xFF]) + bytes(31), 100)
    assert hamming(a, b) == 8 == hamming(a.value, b.value)
    assert len(a.commitment()) == 32 and a.commitment() != b.commitment()
    assert a.commitment() == Fingerprint(bytes(32), 10).commitment()


def test_empty_index_and_threshold_bounds(astronaut: np.ndarray) -> None:
    index = MemoryIndex()
    fp = compute(astronaut)
    assert index.lookup(fp) == [] and len(index) == 0
    index.add(A, fp)
    assert index.lookup(fp, threshold=0)[0].distance == 0
    with pytest.raises(FingerprintInputError):
        index.lookup(fp, threshold=300)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: compute(np.zeros((8, 8), np.uint8)), id="gray"),
        pytest.param(lambda: compute(np.zeros((8, 8, 3), np.float64)), id="float"),
        pytest.param(lambda: Fingerprint.from_hex("zz" * 32), id="not-hex"),
        pytest.param(lambda: Fingerprint.from_hex("00"), id="short-hex"),
        pytest.param(lambda: Fingerprint(b"x", 100), id="short-value"),
        pytest.param(lambda: Fingerprint(bytes(32), 101), id="quality"),
        pytest.param(lambda: hamming(bytes(32), bytes(31)), id="hamming-length"),
        pytest.param(lambda: MemoryIndex().add(b"short", Fingerprint(bytes(32), 1)), id="asset-id"),
    ],
)
def test_bad_input_raises_typed_errors(call: object) -> None:
    with pytest.raises(FingerprintInputError) as info:
        call()  # type: ignore[operator]
    assert isinstance(info.value, ShieldError) and info.value.fix


def test_non_arrays_raise_type_errors() -> None:
    with pytest.raises(TypeError, match="rgb"):
        compute([[1, 2, 3]])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fingerprint"):
        MemoryIndex().lookup(ASTRONAUT_PDQ)  # type: ignore[arg-type]


def test_names() -> None:
    assert fingerprint.NAME == "pdq" and fingerprint.BITS == 256
