"""Helpers for the provenance tests: settings in a temp folder, small real PNGs, PNG chunk surgery."""

from __future__ import annotations

import io
import struct
import zlib
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from shield.config import Settings, load_settings
from shield.provenance import ManifestSpec, UnlockedKeys


def make_settings(root: Path, **extra: str) -> Settings:
    env = {"SHIELD_HOME": str(root / "home"), "SHIELD_KEYS_DIR": str(root / "keys"), **extra}
    return load_settings(env=env, cwd=root)


def png_bytes(seed: int, height: int = 48, width: int = 64) -> bytes:
    """A small random RGB PNG (deterministic per seed)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload) & 0xFFFFFFFF)


def split_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def join_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunk(t, p) for t, p in chunks)




ASSET_ID = bytes(range(16))


def make_spec(keys: UnlockedKeys, **changes: Any) -> ManifestSpec:
    """A realistic manifest spec for ``keys``; ``changes`` override fields."""
    spec = ManifestSpec(
        title="portrait.shield.png",
        asset_id=ASSET_ID,
        protection={"eps": 0.03, "steps": 40, "models": ["fomm", "simswap"], "disruption": {"fomm": 0.41}, "psnr": 38.2, "ssim": 0.97},
        watermark={"scheme": "shield-fragile-v1", "block_size": 8, "public_key": keys.watermark_public_key.hex()},
        ledger={"chain_id": 31337, "registry": "0x" + "ab" * 20, "publisher": keys.eth_address},
    )
    return dataclasses.replace(spec, **changes)
