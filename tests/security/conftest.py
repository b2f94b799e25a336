"""Fixtures of the attack suite (issue 18): a victim publisher's photos protected and
anchored on a real anvil devnet, a second funded account for the attacker, and helpers
that rewrite PNG chunks the way an attacker's tools do."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shield.config import Settings
from shield.ledger import Devnet, Ledger, open_ledger
from shield.pipeline import ProtectOptions, ProtectOutcome, protect_files
from shield.sample import write_sample
from tests.ledger.conftest import make_keys
from tests.pipeline.conftest import HAS_ANVIL, make_settings

__all__ = ["Victim", "attacker", "chunks", "build_png", "pixels", "save_pixels", "digest"]


@dataclass(frozen=True)
class Victim:
    settings: Settings
    photos: tuple[ProtectOutcome, ...]
    folder: Path

    @property
    def registry(self) -> str:
        return str(self.photos[0].ledger["contract"])


@pytest.fixture(scope="module")
def victim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Victim]:
    """Two portraits protected (no perturbation) and anchored by one publisher."""
    if not HAS_ANVIL:
        pytest.skip("needs node_modules/.bin/anvil (run `npm ci` or `make setup`)")
    root = tmp_path_factory.mktemp("victim")
    cfg = make_settings(root)
    a = write_sample(root / "portrait.png")
    rgb = np.asarray(Image.open(a).convert("RGB"))[:, ::-1].copy()
    b = root / "mirror.png"
    Image.fromarray(rgb).save(b)
    try:
        outcomes = protect_files([a, b], cfg, ProtectOptions(outdir=root / "out", adversarial=False))
        assert all(o.ledger["status"] == "anchored" for o in outcomes), [o.ledger for o in outcomes]
        yield Victim(cfg, tuple(outcomes), root)
    finally:
        Devnet(cfg).stop()


def attacker(victim_settings: Settings, root: Path, registry: str, name: str = "mallory") -> Ledger:
    """A second funded account with its own home and keys, on the victim's node (named by
    its URL: the attacker's own home runs no devnet) and registry."""
    from shield.ledger.deployment import fund_on_devnet

    cfg = dataclasses.replace(victim_settings, home=root / f"{name}-home", keys_dir=root / f"{name}-keys")
    cfg = cfg.with_chain(rpc_url=Devnet(victim_settings).url, chain_id=31337, registry=registry)
    ledger = open_ledger(cfg, secrets.token_bytes(32), publisher_keys=make_keys(name))
    fund_on_devnet(ledger._online().w3, ledger._online().sender)
    return ledger


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every PNG chunk."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    return out


def build_png(parts: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d)) for t, d in parts)
    return b"\x89PNG\r\n\x1a\n" + body


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


def save_pixels(rgb: np.ndarray, path: Path) -> Path:
    Image.fromarray(rgb).save(path, format="PNG")
    return path


def digest(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()

