"""Fixtures of the library-run tests: a folder of tiny photos cut from the bundled portrait,
and settings whose home, keystore and devnet port belong to one test."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from shield.config import Settings, load_settings
from shield.ledger import Devnet

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / "node_modules" / ".bin"
HAS_ANVIL = os.access(NODE_BIN / "anvil", os.X_OK)
needs_anvil = pytest.mark.skipif(not HAS_ANVIL, reason="needs node_modules/.bin/anvil (run `npm ci` or `make setup`)")

#: side of the tiny photos, in pixels (a few watermark blocks; protection is not what is tested)
SIDE = 96


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def library_env(root: Path) -> dict[str, str]:
    return {
        "SHIELD_HOME": str(root / "home"),
        "SHIELD_KEYS_DIR": str(root / "keys"),
        "SHIELD_NODE_BIN": str(NODE_BIN),
        "SHIELD_ANVIL_PORT": str(free_port()),
    }


@pytest.fixture()
def lib_settings(tmp_path: Path) -> Iterator[Settings]:
    cfg = load_settings(env=library_env(tmp_path), cwd=tmp_path)
    yield cfg
    Devnet(cfg).stop()


def write_photos(folder: Path, count: int, *, corrupt_at: int | None = None) -> list[Path]:
    """``count`` tiny JPEG crops of skimage's astronaut; a corrupt JPEG named to sort at ``corrupt_at``."""
    from skimage import data

    rgb = data.astronaut()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        y, x = (37 * i) % (512 - SIDE), (53 * i) % (512 - SIDE)
        path = folder / f"p{i:02d}.jpg"
        Image.fromarray(rgb[y : y + SIDE, x : x + SIDE]).save(path, quality=95)
        paths.append(path)
    if corrupt_at is not None:
        bad = folder / f"p{corrupt_at:02d}x-broken.jpg"
        bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        paths.insert(corrupt_at + 1, bad)
    return paths
