"""Quick fuzzing of the readers with mutated real protected files (issue 18).

Hypothesis mutates a protected PNG (bit flips anywhere, bit flips inside the C2PA
``caBX`` chunk with the CRC fixed so the manifest parser sees them, chunk drops,
duplicates and insertions, truncation) and lossless WebP / JPEG encodings of it. Every
reader must answer with a typed result or a ShieldError: no other exception, ever, and
no "authentic" verdict. The long run (>= 10,000 cases, per-input time limit, against a
real chain) is bench/fuzz.py.
"""

from __future__ import annotations

import io
import socket
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from shield.config import Settings
from shield.errors import ShieldError
from shield.imaging import load_image_bytes
from shield.imaging.rendering import rendering_metadata
from shield.pipeline import ProtectOptions, protect_files, verify_file
from shield.provenance import read_manifest
from shield.report import Verdict
from tests.pipeline.conftest import make_settings
from tests.security.conftest import build_png, chunks

#: Cases per property (three properties, 210 cases): the quick run of `make test`.
EXAMPLES = 70


class Protected:
    def __init__(self, settings: Settings, png: bytes) -> None:
        self.settings = settings
        self.png = png
        rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        webp, jpeg = io.BytesIO(), io.BytesIO()
        Image.fromarray(rgb).save(webp, format="WEBP", lossless=True)
        Image.fromarray(rgb).save(jpeg, format="JPEG", quality=95)
        self.webp, self.jpeg = webp.getvalue(), jpeg.getvalue()


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Protected]:
    """A small protected PNG (astronaut crop, no perturbation, anchor left queued)."""
    from skimage import data

    root = tmp_path_factory.mktemp("fuzz")
    cfg = make_settings(root)
    src = root / "face.png"
    Image.fromarray(data.astronaut()[40:232, 150:342]).save(src)
    with socket.socket() as blocker:  # no chain: the manifest and watermark are what is fuzzed here
        blocker.bind(("127.0.0.1", cfg.chain.anvil_port))
        blocker.listen()
        [out] = protect_files([src], cfg, ProtectOptions(outdir=root / "out", adversarial=False))
    yield Protected(cfg, out.output.read_bytes())


def _flip(data: bytes, positions: list[int]) -> bytes:
    buf = bytearray(data)
    for p in positions:
        buf[(p >> 3) % len(buf)] ^= 1 << (p & 7)
    return bytes(buf)


@st.composite
def png_mutation(draw: st.DrawFn, original: bytes) -> bytes:
    kind = draw(st.sampled_from(["flip", "cabx", "drop", "dup", "insert", "truncate", "idat"]))
    parts = chunks(original)
    if kind == "flip":
        return _flip(original, draw(st.lists(st.integers(0, 8 * len(original) - 1), min_size=1, max_size=8)))
    if kind in ("cabx", "idat"):
        tag = b"caBX" if kind == "cabx" else b"IDAT"
        i = next(n for n, c in enumerate(parts) if c[0] == tag)
        body = parts[i][1]
        parts[i] = (tag, _flip(body, draw(st.lists(st.integers(0, 8 * len(body) - 1), min_size=1, max_size=4))))
        return build_png(parts)  # CRC recomputed: the chunk's parser sees the damage
    if kind == "drop" and len(parts) > 1:
        del parts[draw(st.integers(0, len(parts) - 1))]
        return build_png(parts)
    if kind == "dup":
        i = draw(st.integers(0, len(parts) - 1))
        parts.insert(i, parts[i])
        return build_png(parts)
    if kind == "insert":
        tag = draw(st.sampled_from([b"gAMA", b"iCCP", b"acTL", b"fcTL", b"eXIf", b"tEXt", b"caBX", b"sRGB", b"zzZz"]))
        body = draw(st.binary(max_size=64))
        parts.insert(draw(st.integers(1, len(parts))), (tag, body))
        return build_png(parts)
    return original[:draw(st.integers(0, len(original) - 1))]


def _mime(fmt: str) -> str:
    return {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff"}[fmt]


def _read_all(data: bytes, name: str, tmp: Path, cfg: Settings) -> None:
    """Every reader on the bytes: typed results or ShieldError only."""
    try:
        img = load_image_bytes(data, name=name, max_pixels=cfg.max_pixels)
    except ShieldError:
        return
    rendering_metadata(data, img.format)
    try:
        read_manifest(data, _mime(img.format), None)
    except ShieldError:
        pass
    path = tmp / name
    path.write_bytes(data)
    try:
        report = verify_file(path, cfg, use_ledger=False)
    except ShieldError:
        return
    assert report.verdict not in (Verdict.AUTHENTIC, Verdict.AUTHENTIC_STRIPPED)


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@SETTINGS
@given(data=st.data())
def test_mutated_protected_png(protected: Protected, tmp_path: Path, data: st.DataObject) -> None:
    _read_all(data.draw(png_mutation(protected.png)), "m.png", tmp_path, protected.settings)


@SETTINGS
@given(data=st.data())
def test_mutated_manifest_chunk(protected: Protected, tmp_path: Path, data: st.DataObject) -> None:
    """Bit flips inside caBX with the CRC fixed: the failures of issue 18 (KeyError, ASN.1)."""
    parts = chunks(protected.png)
    i = next(n for n, c in enumerate(parts) if c[0] == b"caBX")
    body = parts[i][1]
    flips = data.draw(st.lists(st.integers(0, 8 * len(body) - 1), min_size=1, max_size=16))
    parts[i] = (b"caBX", _flip(body, flips))
    mutated = build_png(parts)
    try:
        rep = read_manifest(mutated, "image/png", None)
    except ShieldError:
        return
    assert rep.state in ("invalid", "valid", "trusted", "absent")
    _read_all(mutated, "c.png", tmp_path, protected.settings)


@SETTINGS
@given(data=st.data())
def test_mutated_webp_and_jpeg(protected: Protected, tmp_path: Path, data: st.DataObject) -> None:
    original = data.draw(st.sampled_from([protected.webp, protected.jpeg]))
    name = "m.webp" if original is protected.webp else "m.jpg"
    kind = data.draw(st.sampled_from(["flip", "truncate", "splice"]))
    if kind == "flip":
        mutated = _flip(original, data.draw(st.lists(st.integers(0, 8 * len(original) - 1), min_size=1, max_size=8)))
    elif kind == "truncate":
        mutated = original[:data.draw(st.integers(0, len(original) - 1))]
    else:
        at = data.draw(st.integers(2, len(original) - 1))
        mutated = original[:at] + data.draw(st.binary(min_size=1, max_size=64)) + original[at:]
    _read_all(mutated, name, tmp_path, protected.settings)


def test_known_crashers_of_issue_18_are_typed(protected: Protected) -> None:
    """Regression: damage in caBX that made the SDK raise KeyError / the ASN.1 parser ValueError."""
    parts = chunks(protected.png)
    i = next(n for n, c in enumerate(parts) if c[0] == b"caBX")
    body = bytearray(parts[i][1])
    for label in (b"c2pa.claim", b"urn:c2pa", b"urn:uuid"):
        at = bytes(body).find(label)
        if at >= 0:
            body[at + len(label) - 1] ^= 0x20  # the active manifest's label no longer matches
    parts[i] = (b"caBX", bytes(body))
    rep = read_manifest(build_png(parts), "image/png", None)
    assert rep.state == "invalid" and rep.codes
    struct.pack(">I", zlib.crc32(b""))  # (keeps imports honest for the CRC helpers above)
