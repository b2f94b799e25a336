"""The robust soft-binding mark: round trip, the attacks of issue 19, keys and bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from shield import softbinding, watermark
from shield.errors import ShieldError, WatermarkError
from shield.softbinding import DEFAULT_KEY, Extraction, SoftBindingInputError, embed, extract

ASSET = bytes.fromhex("00112233445566778899aabbccddeeff")


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)  # a fresh encode: no metadata
    return np.asarray(Image.open(buf).convert("RGB"))


def _resize(rgb: np.ndarray, factor: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb).resize((round(w * factor), round(h * factor)), Image.Resampling.BICUBIC))


def _crop(rgb: np.ndarray, keep: float) -> np.ndarray:
    """Cut (1 - keep) of each side away, from the top-left corner (phase and period move)."""
    h, w = rgb.shape[:2]
    return rgb[h - round(h * keep) :, w - round(w * keep) :]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def marked(astronaut: np.ndarray) -> np.ndarray:
    out = embed(astronaut, ASSET, DEFAULT_KEY)
    out.setflags(write=False)
    return out


def _reads(rgb: np.ndarray, key: bytes = DEFAULT_KEY) -> Extraction:
    got = extract(rgb, key)
    assert got.found, f"mark not read (best sync z {got.sync_z:.1f} over {got.tried} scales)"
    assert got.asset_id == ASSET
    return got


def test_round_trip_and_psnr(astronaut: np.ndarray, marked: np.ndarray) -> None:
    assert marked.shape == astronaut.shape and marked.dtype == np.uint8
    assert _psnr(astronaut, marked) >= 45.0
    got = _reads(marked)
    assert got.disagreeing_bits is not None and got.disagreeing_bits <= 8
    assert got.scale == (1.0, 1.0)


def test_deterministic(astronaut: np.ndarray, marked: np.ndarray) -> None:
    assert np.array_equal(embed(astronaut, ASSET, DEFAULT_KEY), marked)


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(lambda a: _jpeg(a, 90), id="jpeg90"),
        pytest.param(lambda a: _jpeg(a, 75), id="jpeg75"),
        pytest.param(lambda a: _resize(a, 0.5), id="resize0.5"),
        pytest.param(lambda a: _resize(a, 2.0), id="resize2"),
        pytest.param(lambda a: _crop(a, 0.9), id="crop10"),
    ],
)
def test_survives(marked: np.ndarray, attack: object) -> None:
    _reads(attack(marked))  # type: ignore[operator]


def test_survives_the_fragile_watermark_on_top(marked: np.ndarray) -> None:
    """Protect embeds the fragile mark after this one: it must cost nothing."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    both = watermark.embed(marked, watermark.Payload(1, ASSET), key)
    _reads(both)
    _reads(_jpeg(both, 80))


def test_wrong_key_finds_nothing(marked: np.ndarray) -> None:
    got = extract(marked, b"another publisher's key")
    assert not got.found and got.asset_id is None


def test_unmarked_photo_finds_nothing(astronaut: np.ndarray) -> None:
    got = extract(astronaut, DEFAULT_KEY)
    assert not got.found and got.asset_id is None and got.tried > 1


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(np.zeros((64, 64, 3), np.uint8), id="black"),
        pytest.param(np.full((100, 300, 3), 255, np.uint8), id="white-strip"),
        pytest.param(np.random.default_rng(0).integers(0, 256, (97, 131, 3), dtype=np.uint8), id="noise"),
    ],
)
def test_garbage_pixels_are_not_found(image: np.ndarray) -> None:
    assert extract(image, DEFAULT_KEY).found is False


@pytest.mark.parametrize(
    ("rgb", "error"),
    [
        pytest.param([[0, 0, 0]], TypeError, id="list"),
        pytest.param(np.zeros((64, 64), np.uint8), SoftBindingInputError, id="gray"),
        pytest.param(np.zeros((64, 64, 3), np.float32), SoftBindingInputError, id="float"),
        pytest.param(np.zeros((63, 400, 3), np.uint8), SoftBindingInputError, id="too-small"),
    ],
)
def test_bad_arrays_raise_typed_errors(rgb: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        extract(rgb, DEFAULT_KEY)  # type: ignore[arg-type]
    with pytest.raises(error):
        embed(rgb, ASSET, DEFAULT_KEY)  # type: ignore[arg-type]


def test_bad_ids_keys_and_strengths(astronaut: np.ndarray) -> None:
    with pytest.raises(SoftBindingInputError) as info:
        embed(astronaut, b"short", DEFAULT_KEY)
    assert isinstance(info.value, WatermarkError) and isinstance(info.value, ShieldError) and info.value.fix
    with pytest.raises(TypeError, match="asset_id"):
        embed(astronaut, ASSET.hex(), DEFAULT_KEY)  # type: ignore[arg-type]
    with pytest.raises(SoftBindingInputError, match="key"):
        extract(astronaut, b"")
    with pytest.raises(TypeError, match="key"):
        extract(astronaut, "key")  # type: ignore[arg-type]
    with pytest.raises(SoftBindingInputError, match="psnr"):
        embed(astronaut, ASSET, DEFAULT_KEY, psnr=80)


def test_names() -> None:
    assert softbinding.ALG == f"{softbinding.NAME}.v{softbinding.VERSION}"


PHOTOS = ("deepface_img7.jpg", "liveportrait_s9.jpg")  # 2048x1363 and 720x1280


def test_real_photos_survive_the_social_chain(shared_data: Path) -> None:
    """Resize, then JPEG 75, then strip (a fresh encode keeps no metadata), plus JPEG 50."""
    for name in PHOTOS:
        with Image.open(shared_data / "photos" / name) as im:
            rgb = np.asarray(im.convert("RGB"))
        marked = embed(rgb, ASSET, DEFAULT_KEY)
        assert _psnr(rgb, marked) >= 45.0
        _reads(_jpeg(_resize(marked, 0.5), 75))
        _reads(_jpeg(marked, 50))
        _reads(_jpeg(_crop(marked, 0.9), 75))
