"""Tests for shield.imaging: safe loading, conversions, hostile input, atomic save, pixel hash.

Every input is generated here (Pillow, tifffile, or PNG/TIFF/WebP bytes written by hand),
so nothing in this file needs data from outside the repository.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile, ImageOps

from shield.imaging import hashing as imaging_hashing
from shield.imaging import load as imaging_load
from shield.errors import (
    CorruptImageError,
    ImageTooLargeError,
    OutputError,
    ShieldError,
    UnsupportedImageError,
)
from shield.imaging import (
    EmptyImageError,
    ExtensionMismatchError,
    ImageReadError,
    LoadedImage,
    NotAnImageError,
    TruncatedImageError,
    atomic_write_bytes,
    encode_png,
    load_image,
    load_image_bytes,
    pixel_hash,
    save_image_atomic,
)

LIMIT = 100_000_000
DATA = Path(__file__).parent / "data"


# --- builders ---------------------------------------------------------------------


def _rgb(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png(width: int, height: int, depth: int, colour: int, raw: bytes | None = None) -> bytes:
    """A PNG written by hand: IHDR (valid CRC), optional IDAT, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = _chunk(b"IDAT", zlib.compress(raw)) if raw is not None else b""
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + idat + _chunk(b"IEND", b"")


def _png16(samples: np.ndarray, colour: int) -> bytes:
    """16-bit PNG with rows alternately Sub- and Up-filtered (exercises unfiltering)."""
    h, w = samples.shape[:2]
    rows = samples.reshape(h, -1).astype(">u2").view(np.uint8).reshape(h, -1).astype(np.int32)
    bpp = rows.shape[1] // w
    raw = bytearray()
    for y in range(h):
        if y % 2 == 0:  # Sub: byte minus the byte one pixel to the left
            left = np.concatenate([np.zeros(bpp, np.int32), rows[y, :-bpp]])
            raw += b"\x01" + ((rows[y] - left) % 256).astype(np.uint8).tobytes()
        else:  # Up: byte minus the byte above
            raw += b"\x02" + ((rows[y] - rows[y - 1]) % 256).astype(np.uint8).tobytes()
    return _png(w, h, 16, colour, bytes(raw))


def _scaled16(v: np.ndarray) -> np.ndarray:
    # v / 257 is never exactly halfway between integers, so rint is unambiguous.
    return np.rint(v.astype(np.float64) / 257.0).astype(np.uint8)


def _tiff_header(width: int, height: int) -> bytes:
    """A minimal little-endian greyscale TIFF whose IFD declares width x height."""
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8 + 2 + 12 * 9 + 4),
        (277, 3, 1, 1),
        (278, 4, 1, height),
        (279, 4, 1, 16),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\0\0\0\0" + bytes(16)


def _webp_vp8x_header(width: int, height: int) -> bytes:
    """A WebP extended header (VP8X) declaring a width x height canvas, nothing else."""
    body = b"\0\0\0\0" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _jpeg_with_size(width: int, height: int) -> bytes:
    data = bytearray(_save(Image.fromarray(_rgb(8, 8)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _load(data: bytes, name: str = "image") -> LoadedImage:
    return load_image_bytes(data, name=name, max_pixels=LIMIT)


# --- round trips and the result type ------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "options", "lossless"),
    [
        ("PNG", {}, True),
        ("TIFF", {}, True),
        ("TIFF", {"compression": "tiff_deflate"}, True),
        ("WEBP", {"lossless": True}, True),
        ("JPEG", {"quality": 95}, False),
        ("WEBP", {"quality": 90}, False),
        ("TIFF", {"compression": "jpeg"}, False),
    ],
)
def test_round_trip(fmt: str, options: dict[str, object], lossless: bool) -> None:
    rgb = np.kron(_rgb(6, 8), np.ones((4, 4, 1), np.uint8))  # blocky: survives lossy coding
    loaded = _load(_save(Image.fromarray(rgb), fmt, **options), f"photo.{fmt.lower()}")
    assert (loaded.format, loaded.lossless, loaded.conversions) == (fmt, lossless, ())
    assert (loaded.width, loaded.height, loaded.rgb.shape) == (32, 24, (24, 32, 3))
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.flags.c_contiguous and not loaded.rgb.flags.writeable
    error = np.abs(loaded.rgb.astype(int) - rgb).mean()
    assert error == 0 if lossless else 0 < error < 20


def test_load_image_reads_file_and_reports_source(tmp_path: Path) -> None:
    rgb = _rgb()
    path = tmp_path / "photo.png"
    path.write_bytes(encode_png(rgb))
    loaded = load_image(path, max_pixels=LIMIT)
    assert loaded.source == str(path) and np.array_equal(loaded.rgb, rgb)
    assert loaded.mode_in == "RGB" and loaded.icc_profile is None and loaded.frames == 1


@pytest.mark.parametrize("name", ["photo", "photo.dat", "PHOTO.PNG", "photo.Png"])
def test_content_decides_when_extension_is_not_an_image_extension_or_agrees(name: str) -> None:
    assert _load(encode_png(_rgb()), name).format == "PNG"


# --- encode_png and pixel hash ----------------------------------------------------------


def test_encode_png_is_lossless_deterministic_and_bare() -> None:
    rgb = _rgb(17, 23, seed=3)
    first, second = encode_png(rgb), encode_png(rgb.copy())
    assert first == second
    chunks, pos = [], 8
    while pos < len(first):
        (length,) = struct.unpack_from(">I", first, pos)
        chunks.append(first[pos + 4 : pos + 8])
        pos += 12 + length
    assert set(chunks) == {b"IHDR", b"IDAT", b"IEND"}
    loaded = _load(first)
    assert np.array_equal(loaded.rgb, rgb) and pixel_hash(loaded.rgb) == pixel_hash(rgb)


def test_encode_webp_is_lossless_vp8l() -> None:
    from shield.imaging import encode_image, encode_webp

    rgb = _rgb(31, 45, seed=4)
    data = encode_webp(rgb)
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP" and b"VP8L" in data[12:40] and b"VP8 " not in data
    loaded = _load(data)
    assert loaded.format == "WEBP" and loaded.lossless and np.array_equal(loaded.rgb, rgb)
    assert encode_image(rgb, "webp") == data and encode_image(rgb, "png") == encode_png(rgb)


def test_encode_image_refuses_a_lossy_or_unknown_format() -> None:
    from shield.imaging import encode_image, encode_webp

    with pytest.raises(ValueError, match="fmt"):
        encode_image(_rgb(), "jpeg")
    with pytest.raises(ValueError, match="method"):
        encode_webp(_rgb(), method=9)
    with pytest.raises(TypeError, match="rgb"):
        encode_webp(_rgb().astype(np.float32))


def test_encode_webp_refuses_an_encoder_that_loses_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """A libwebp that ignored ``lossless=True`` would write VP8: caught, never returned."""
    from shield.imaging import encode_webp

    original = Image.Image.save

    def lossy_save(self: Image.Image, fp: object, format: str | None = None, **params: object) -> None:
        params.update(lossless=False, quality=50)
        original(self, fp, format, **params)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "save", lossy_save)
    with pytest.raises(OutputError, match="lossless"):
        encode_webp(_rgb(64, 64))


def _reference_pixel_hash(pixels: list[list[list[int]]]) -> str:
    """Independent implementation of the documented format (hashlib + struct only)."""
    height, width = len(pixels), len(pixels[0])
    body = bytes(value for row in pixels for pixel in row for value in pixel)
    header = b"SHIELD-PIXELS" + struct.pack(">B", 1) + struct.pack(">I", width) + struct.pack(">I", height) + b"RGB8"
    return hashlib.sha256(header + body).hexdigest()


def test_pixel_hash_known_answers() -> None:
    vectors = json.loads((DATA / "pixel_hash_vectors.json").read_text())["vectors"]
    assert len(vectors) >= 5
    for vector in vectors:
        rgb = np.array(vector["pixels"], dtype=np.uint8)
        assert rgb.shape == (vector["height"], vector["width"], 3), vector["name"]
        assert _reference_pixel_hash(vector["pixels"]) == vector["sha256"], vector["name"]
        assert pixel_hash(rgb).hex() == vector["sha256"], vector["name"]
    assert len({v["sha256"] for v in vectors}) == len(vectors)  # row vs column differ


def test_pixel_hash_of_a_strided_view_equals_its_copy() -> None:
    rgb = _rgb(10, 12)
    view = rgb[::2, ::-1]
    assert not view.flags.c_contiguous
    assert pixel_hash(view) == pixel_hash(np.ascontiguousarray(view))
    assert pixel_hash(view) != pixel_hash(rgb[::2])


def test_pixel_hash_spec_in_docstring_matches_first_vector() -> None:
    first = json.loads((DATA / "pixel_hash_vectors.json").read_text())["vectors"][0]
    assert first["pixels"] == [[[0, 0, 0]]]
    assert f"begins ``{first['sha256'][:8]}``" in (imaging_hashing.__doc__ or "")


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 2, 3), np.uint16), np.zeros((2, 2), np.uint8), np.zeros((0, 2, 3), np.uint8)]
)
def test_pixel_hash_and_encode_reject_bad_arrays(bad: np.ndarray) -> None:
    for function in (pixel_hash, encode_png):
        with pytest.raises((TypeError, ValueError), match="rgb"):
            function(bad)


# --- orientation -------------------------------------------------------------------


def test_jpeg_exif_orientation_6_is_rotated_and_reported() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = 255  # left half white: after a clockwise turn, the top half is white
    loaded = _load(_save(Image.fromarray(rgb), "JPEG", exif=exif, quality=95))
    assert (loaded.width, loaded.height, loaded.orientation) == (20, 40, 6)
    assert loaded.rgb[:15].mean() > 240 and loaded.rgb[25:].mean() < 15
    assert loaded.conversions == ("EXIF orientation 6 applied: rotated 90 degrees clockwise",)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow_exif_transpose(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _save(Image.fromarray(_rgb(5, 7)), "PNG", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    loaded = _load(data)
    assert np.array_equal(loaded.rgb, expected) and loaded.orientation == orientation
    assert any("EXIF orientation" in note for note in loaded.conversions) == (orientation != 1)


# --- modes -------------------------------------------------------------------------------


def _palette_image(transparent_index: int | None) -> tuple[bytes, np.ndarray]:
    palette = [0, 0, 0, 200, 10, 20, 30, 40, 250, 90, 180, 60]
    index = np.array([[0, 1, 2, 3], [3, 2, 1, 0]], dtype=np.uint8)
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette)
    options = {} if transparent_index is None else {"transparency": transparent_index}
    return _save(image, "PNG", **options), np.array(palette, np.uint8).reshape(4, 3)[index]


def test_palette_without_transparency() -> None:
    data, expected = _palette_image(None)
    loaded = _load(data)
    assert loaded.mode_in == "P" and np.array_equal(loaded.rgb, expected)
    assert loaded.conversions == ("palette (indexed) colours expanded to RGB",)


def test_palette_with_transparency_is_composited_over_white() -> None:
    data, expected = _palette_image(transparent_index=2)
    loaded = _load(data)
    expected[np.array([[0, 0, 1, 0], [0, 1, 0, 0]], bool)] = 255
    assert np.array_equal(loaded.rgb, expected)
    assert "alpha channel composited over white; transparency is not preserved" in loaded.conversions


def test_greyscale_is_replicated() -> None:
    grey = _rgb()[..., 0]
    loaded = _load(_save(Image.fromarray(grey, mode="L"), "PNG"))
    assert loaded.mode_in == "L" and np.array_equal(loaded.rgb, np.repeat(grey[..., None], 3, axis=2))
    assert loaded.conversions == ("greyscale replicated to RGB",)


def test_bilevel_is_expanded() -> None:
    bits = _rgb()[..., 0] > 127
    loaded = _load(_save(Image.fromarray(bits), "TIFF"))
    assert loaded.mode_in == "1" and np.array_equal(loaded.rgb[..., 1], np.where(bits, 255, 0))


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_fully_opaque_alpha_is_dropped_and_reported(mode: str) -> None:
    rgb = _rgb()
    colour = rgb[..., :1] if mode == "LA" else rgb
    pixels = np.concatenate([colour, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    loaded = _load(_save(Image.fromarray(pixels, mode=mode), "PNG"))
    expected = np.repeat(colour, 3, axis=2) if mode == "LA" else rgb
    assert np.array_equal(loaded.rgb, expected)
    assert "alpha channel is fully opaque; dropped" in loaded.conversions


@pytest.mark.parametrize(("mode", "fmt"), [("RGBA", "PNG"), ("LA", "PNG"), ("RGBA", "WEBP"), ("RGBA", "TIFF")])
def test_translucent_alpha_is_composited_over_white(mode: str, fmt: str) -> None:
    rgb = _rgb(seed=5)
    alpha = np.random.default_rng(6).integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    alpha[0, 0], alpha[0, 1] = 0, 255
    colour = rgb[..., :1] if mode == "LA" else rgb
    pixels = np.concatenate([colour, alpha[..., None]], axis=2)
    options = {"lossless": True, "exact": True} if fmt == "WEBP" else {}
    loaded = _load(_save(Image.fromarray(pixels, mode=mode), fmt, **options))
    a = alpha[..., None] / 255.0
    expected = np.broadcast_to(colour, rgb.shape) * a + 255.0 * (1 - a)
    assert np.abs(loaded.rgb - expected).max() <= 0.51
    assert tuple(loaded.rgb[0, 0]) == (255, 255, 255)
    assert np.array_equal(loaded.rgb[0, 1], np.broadcast_to(colour, rgb.shape)[0, 1])
    assert "alpha channel composited over white; transparency is not preserved" in loaded.conversions


def test_png_colour_key_transparency() -> None:
    rgb = _rgb(4, 4)
    rgb[1, 2] = (9, 8, 7)
    loaded = _load(_save(Image.fromarray(rgb), "PNG", transparency=(9, 8, 7)))
    assert tuple(loaded.rgb[1, 2]) == (255, 255, 255)
    assert np.array_equal(np.delete(loaded.rgb.reshape(-1, 3), 6, 0), np.delete(rgb.reshape(-1, 3), 6, 0))


def _samples16(shape: tuple[int, ...], seed: int = 7) -> np.ndarray:
    v = np.random.default_rng(seed).integers(0, 65536, shape, dtype=np.uint16)
    v.flat[0] = 257 * 3 + 200  # high byte 3, but 971 / 257 = 3.78 rounds to 4
    return v


def test_sixteen_bit_grey_png_is_scaled_not_truncated() -> None:
    v = _samples16((9, 11))
    loaded = _load(_png16(v, colour=0))
    assert np.array_equal(loaded.rgb[..., 0], _scaled16(v)) and loaded.rgb[0, 0, 0] == 4
    assert "16-bit samples scaled to 8 bits (rounded)" in loaded.conversions


def test_sixteen_bit_rgb_png_is_scaled_not_truncated() -> None:
    v = _samples16((9, 11, 3))
    loaded = _load(_png16(v, colour=2))
    assert np.array_equal(loaded.rgb, _scaled16(v))
    assert not np.array_equal(loaded.rgb, (v >> 8).astype(np.uint8))
    assert loaded.conversions == ("16-bit samples scaled to 8 bits (rounded)",)


def test_sixteen_bit_rgba_png_opaque() -> None:
    v = _samples16((6, 5, 4))
    v[..., 3] = 65535
    loaded = _load(_png16(v, colour=6))
    assert np.array_equal(loaded.rgb, _scaled16(v[..., :3]))
    assert "alpha channel is fully opaque; dropped" in loaded.conversions


def test_sixteen_bit_grey_alpha_png() -> None:
    v = _samples16((6, 5, 2))
    v[..., 1] = 65535
    v[0, 1, 1] = 0
    loaded = _load(_png16(v, colour=4))
    expected = np.repeat(_scaled16(v[..., :1]), 3, axis=2)
    expected[0, 1] = 255
    assert np.array_equal(loaded.rgb, expected)


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize(("shape", "photometric"), [((9, 11, 3), "rgb"), ((9, 11), "minisblack")])
def test_sixteen_bit_tiff_is_scaled(compression: str | None, shape: tuple[int, ...], photometric: str) -> None:
    v = _samples16(shape)
    buf = io.BytesIO()
    tifffile.imwrite(buf, v, photometric=photometric, compression=compression)
    loaded = _load(buf.getvalue(), "scan.tiff")
    expected = _scaled16(v)
    assert np.array_equal(loaded.rgb, expected if expected.ndim == 3 else np.repeat(expected[..., None], 3, axis=2))
    assert loaded.lossless and "16-bit samples scaled to 8 bits (rounded)" in loaded.conversions


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk_without_profile_uses_pillow_formula_and_says_so(fmt: str) -> None:
    cmyk = Image.fromarray(_rgb(8, 8, seed=2).repeat(2, axis=0)[:, :, :3].repeat(1, axis=1), mode="RGB").convert("CMYK")
    data = _save(cmyk, fmt)
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    loaded = _load(data)
    assert loaded.mode_in == "CMYK" and np.array_equal(loaded.rgb, expected)
    simple = "CMYK converted to RGB with Pillow's simple formula (no ICC profile embedded)"
    assert any(n.startswith(simple) for n in loaded.conversions)


def test_cmyk_with_unusable_profile_falls_back_and_says_so() -> None:
    cmyk = Image.fromarray(_rgb(8, 8)).convert("CMYK")
    loaded = _load(_save(cmyk, "TIFF", icc_profile=b"not a profile"))
    assert any("embedded ICC profile is unusable" in n for n in loaded.conversions)
    assert loaded.icc_profile == b"not a profile"


def test_rgb_with_non_srgb_profile_keeps_values_and_says_so() -> None:
    from PIL import ImageCms

    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    rgb = _rgb()
    loaded = _load(_save(Image.fromarray(rgb), "PNG", icc_profile=lab))
    assert np.array_equal(loaded.rgb, rgb) and loaded.icc_profile == lab
    assert any("not applied; pixel values are used as stored" in n for n in loaded.conversions)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert _load(_save(Image.fromarray(rgb), "PNG", icc_profile=srgb)).conversions == ()


@pytest.mark.parametrize("fmt", ["TIFF", "WEBP"])
def test_multi_frame_uses_first_frame_and_says_so(fmt: str) -> None:
    frames = [Image.fromarray(_rgb(seed=s)) for s in range(3)]
    options = {"lossless": True} if fmt == "WEBP" else {}
    data = _save(frames[0], fmt, save_all=True, append_images=frames[1:], **options)
    loaded = _load(data)
    assert loaded.frames == 3 and np.array_equal(loaded.rgb, np.asarray(frames[0]))
    assert "the file holds 3 frames or pages; only the first is used" in loaded.conversions


# --- hostile and broken input -------------------------------------------------------------


def test_decompression_bomb_png_fails_fast_before_any_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    bomb = _png(100_000, 100_000, 8, 2)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="100000 x 100000"):
        _load(bomb, "bomb.png")
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 1 << 20


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bomb.jpg", _jpeg_with_size(65_000, 65_000)),
        ("bomb.tif", _tiff_header(100_000, 100_000)),
        ("bomb.webp", _webp_vp8x_header(16_000_000, 16_000_000)),
    ],
)
def test_decompression_bomb_other_formats(name: str, data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda *a, **k: pytest.fail("pixel data was decoded"))
    started = time.perf_counter()
    with pytest.raises(ImageTooLargeError):
        _load(data, name)
    assert time.perf_counter() - started < 1.0


def test_pixel_limit_boundary_and_pillow_state_restored() -> None:
    data = encode_png(_rgb(64, 64))
    before = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    assert load_image_bytes(data, name="x.png", max_pixels=64 * 64).width == 64
    with pytest.raises(ImageTooLargeError, match="4,096 pixels exceeds the limit of 4,095"):
        load_image_bytes(data, name="x.png", max_pixels=64 * 64 - 1)
    tiff = _save(Image.fromarray(_rgb(64, 64)), "TIFF")
    with pytest.raises(ImageTooLargeError):
        load_image_bytes(tiff, name="x.tif", max_pixels=1000)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before


def test_file_size_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imaging_load, "_FILE_SLACK_BYTES", 0)
    path = tmp_path / "big.png"
    path.write_bytes(encode_png(_rgb(4, 4)))
    with pytest.raises(ImageTooLargeError, match="bytes"):
        load_image(path, max_pixels=2)


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


_PNG = encode_png(_rgb(32, 48, seed=9))
_JPEG = _save(Image.fromarray(_rgb(32, 48, seed=9)), "JPEG", quality=90)
_BAD_INPUTS: list[tuple[str, str, bytes, type[ShieldError]]] = [
    ("zero-byte", "empty.png", b"", EmptyImageError),
    ("0x0 header", "nothing.png", _png(0, 0, 8, 2), EmptyImageError),
    ("0xN header", "line.png", _png(0, 5, 8, 2), EmptyImageError),
    ("corrupt PNG", "noise.png", b"\x89PNG\r\n\x1a\n" + np.random.default_rng(1).bytes(400), CorruptImageError),
    ("truncated PNG", "half.png", _half(_PNG), TruncatedImageError),
    ("PNG missing its IEND", "cut.png", _PNG[:-1], TruncatedImageError),
    ("truncated JPEG", "half.jpg", _half(_JPEG), TruncatedImageError),
    ("PNG header only", "stub.png", _PNG[:6], TruncatedImageError),
    ("truncated TIFF", "half.tif", _half(_save(Image.fromarray(_rgb()), "TIFF")), TruncatedImageError),
    ("truncated WebP", "half.webp", _half(_save(Image.fromarray(_rgb()), "WEBP")), TruncatedImageError),
    ("wrong extension", "photo.jpg", _PNG, ExtensionMismatchError),
    ("JPEG named .tiff", "photo.tiff", _JPEG, ExtensionMismatchError),
    ("PNG named .gif", "photo.gif", _PNG, ExtensionMismatchError),
    ("non-image", "notes.png", b"hello, this is a text file\n", NotAnImageError),
    ("GIF", "anim.gif", _save(Image.fromarray(_rgb()).convert("P"), "GIF"), UnsupportedImageError),
    ("BMP named .png", "pic.png", _save(Image.fromarray(_rgb()), "BMP"), UnsupportedImageError),
    ("float TIFF", "f.tif", _save(Image.fromarray(np.ones((4, 4), np.float32)), "TIFF"), UnsupportedImageError),
]


@pytest.mark.parametrize(("case", "name", "data", "error"), _BAD_INPUTS, ids=[c[0] for c in _BAD_INPUTS])
def test_bad_input_gives_typed_one_line_error(
    case: str, name: str, data: bytes, error: type[ShieldError], tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(error) as caught:
        load_image(path, max_pixels=LIMIT)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message and "0x" not in message
    assert caught.value.fix and "\n" not in caught.value.fix
    assert os.listdir(tmp_path) == [name]  # nothing written


def test_wrong_extension_message_names_both() -> None:
    with pytest.raises(ExtensionMismatchError) as caught:
        _load(_PNG, "holiday.jpg")
    assert "PNG" in str(caught.value) and ".jpg" in str(caught.value) and "holiday.png" in caught.value.fix


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="no such file"):
        load_image(tmp_path / "absent.png", max_pixels=LIMIT)
    with pytest.raises(ImageReadError, match="folder"):
        load_image(tmp_path, max_pixels=LIMIT)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_pixels"):
        load_image_bytes(_PNG, name="x", max_pixels=0)
    with pytest.raises(TypeError, match="data"):
        load_image_bytes("not bytes", name="x", max_pixels=LIMIT)  # type: ignore[arg-type]


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    kind = int(rng.integers(0, 5))
    if kind == 0:  # flip a few bytes anywhere after the magic
        for _ in range(int(rng.integers(1, 8))):
            buf[int(rng.integers(8, len(buf)))] = int(rng.integers(0, 256))
    elif kind == 1:  # cut at a random point
        del buf[int(rng.integers(1, len(buf))) :]
    elif kind == 2:  # insert random bytes
        at = int(rng.integers(8, len(buf)))
        buf[at:at] = rng.bytes(int(rng.integers(1, 64)))
    elif kind == 3:  # overwrite a header field (sizes live in the first ~200 bytes)
        at = int(rng.integers(8, min(len(buf), 200)))
        buf[at : at + 4] = rng.bytes(4)
    else:  # duplicate a slice
        a, b = sorted(int(x) for x in rng.integers(8, len(buf), 2))
        buf[b:b] = buf[a:b]
    return bytes(buf)


@pytest.mark.timeout(120)
def test_fuzz_mutations_only_raise_shield_errors() -> None:
    rng = np.random.default_rng(20261123)
    seeds = [
        ("x.png", encode_png(_rgb(12, 16))),
        ("x.jpg", _save(Image.fromarray(_rgb(12, 16)), "JPEG", quality=80)),
        ("x.webp", _save(Image.fromarray(_rgb(12, 16)), "WEBP", lossless=True)),
        ("x.tif", _save(Image.fromarray(_rgb(12, 16)), "TIFF")),
    ]
    outcomes: dict[str, int] = {}
    for i in range(200):
        name, seed = seeds[i % len(seeds)]
        data = _mutate(seed, rng)
        try:
            loaded = load_image_bytes(data, name=name, max_pixels=1 << 22)
        except ShieldError as exc:
            assert "\n" not in str(exc)
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
        else:
            assert loaded.rgb.ndim == 3 and loaded.rgb.shape[2] == 3 and loaded.rgb.dtype == np.uint8
            outcomes["loaded"] = outcomes.get("loaded", 0) + 1
    assert outcomes.get("loaded", 0) < 200 and sum(outcomes.values()) == 200


# --- atomic save ---------------------------------------------------------------------


def test_save_writes_whole_file_and_no_temp(tmp_path: Path) -> None:
    data = encode_png(_rgb())
    out = save_image_atomic(data, tmp_path / "out.png")
    assert out.read_bytes() == data and os.listdir(tmp_path) == ["out.png"]


def test_save_refuses_the_input_by_any_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(_PNG)
    (tmp_path / "link.png").symlink_to(source)
    os.link(source, tmp_path / "hard.png")
    monkeypatch.chdir(tmp_path)
    aliases = [tmp_path / "link.png", tmp_path / "hard.png", Path("in.png"), tmp_path / "sub" / ".." / "in.png"]
    for target in [source, *aliases]:
        with pytest.raises(OutputError, match="input"):
            save_image_atomic(encode_png(_rgb()), target, inputs=[source], overwrite=True)
    assert source.read_bytes() == _PNG
    assert sorted(os.listdir(tmp_path)) == ["hard.png", "in.png", "link.png"]


def test_save_refuses_existing_unless_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists"):
        save_image_atomic(_PNG, target)
    assert target.read_bytes() == b"old"
    save_image_atomic(_PNG, target, overwrite=True)
    assert target.read_bytes() == _PNG and os.listdir(tmp_path) == ["out.png"]


@pytest.mark.parametrize(("failing", "overwrite"), [("replace", True), ("link", False), ("fsync", False)])
def test_failed_save_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, overwrite: bool
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, failing, boom)
    if failing == "link":  # the fallback path must not be taken for a permission failure either
        monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OutputError, match="cannot be written"):
        save_image_atomic(_PNG, tmp_path / "out.png", overwrite=overwrite)
    assert os.listdir(tmp_path) == []


def test_link_unavailable_falls_back_to_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "link", no_links)
    save_image_atomic(_PNG, tmp_path / "out.png")
    assert (tmp_path / "out.png").read_bytes() == _PNG and os.listdir(tmp_path) == ["out.png"]


def test_save_checks_content_and_destination(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="ends in .jpg"):
        save_image_atomic(_PNG, tmp_path / "out.jpg")
    with pytest.raises(OutputError, match="not a PNG"):
        save_image_atomic(b"text", tmp_path / "out.png")
    with pytest.raises(OutputError, match="does not exist"):
        save_image_atomic(_PNG, tmp_path / "missing" / "out.png")
    with pytest.raises(OutputError, match="is a folder"):
        atomic_write_bytes(b"x", tmp_path, overwrite=True)
    assert os.listdir(tmp_path) == []


def test_atomic_write_bytes_mode(tmp_path: Path) -> None:
    secret = atomic_write_bytes(b"secret", tmp_path / "key.json", mode=0o600)
    assert secret.read_bytes() == b"secret" and (secret.stat().st_mode & 0o777) == 0o600


def test_read_only_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):  # root ignores folder permissions: refuse as the kernel would
        real_open = os.open

        def deny(path: object, flags: int, *args: object) -> int:
            if flags & os.O_CREAT:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "open", deny)
    try:
        with pytest.raises(OutputError, match="cannot be written .*Permission denied"):
            save_image_atomic(_PNG, folder / "out.png")
        assert os.listdir(folder) == []
    finally:
        folder.chmod(0o700)


def test_concurrent_loads_keep_their_own_limits() -> None:
    from concurrent.futures import ThreadPoolExecutor

    # TIFF goes through Pillow's own guard, which reads the process-wide limit.
    data = _save(Image.fromarray(_rgb(64, 64)), "TIFF")
    before = Image.MAX_IMAGE_PIXELS

    def attempt(limit: int) -> str:
        try:
            return str(load_image_bytes(data, name="x.tif", max_pixels=limit).width)
        except ImageTooLargeError:
            return "too large"

    limits = [4096, 1000] * 100
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so an unguarded global would leak
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(attempt, limits))
    finally:
        sys.setswitchinterval(interval)
    assert results == ["64", "too large"] * 100 and Image.MAX_IMAGE_PIXELS == before


def test_png_header_enlarged_after_the_fact_is_truncated_not_blank() -> None:
    """A fuzz finding (issue 18): Pillow stops at the end of the zlib stream without an
    error, so a PNG whose IHDR height was raised decoded as a huge mostly blank image."""
    import struct
    import zlib

    from shield.imaging import TruncatedImageError, encode_png, load_image_bytes

    png = bytearray(encode_png(np.zeros((16, 16, 3), dtype=np.uint8)))
    struct.pack_into(">I", png, 20, 4096)  # height 16 -> 4096
    struct.pack_into(">I", png, 29, zlib.crc32(bytes(png[12:29])))
    with pytest.raises(TruncatedImageError, match="header needs"):
        load_image_bytes(bytes(png), name="tall.png", max_pixels=10**8)
