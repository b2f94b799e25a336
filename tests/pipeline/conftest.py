"""Fixtures for the end-to-end protect -> verify tests.

Every test state (keystore, ledger database, devnet state) lives in a temporary folder;
the chain is the embedded anvil devnet, as `make run` uses it, on a free port so that
tests never meet the devnet of the repository's own ``.shield``.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shield.config import Settings, load_settings
from shield.ledger import Devnet
from shield.pipeline import ProtectOptions, ProtectOutcome, protect_files
from shield.sample import write_sample

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / "node_modules" / ".bin"
HAS_ANVIL = os.access(NODE_BIN / "anvil", os.X_OK)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(root: Path) -> Settings:
    """Settings whose home, keystore and devnet port belong to ``root`` alone."""
    env = {
        "SHIELD_HOME": str(root / "home"),
        "SHIELD_KEYS_DIR": str(root / "keys"),
        "SHIELD_NODE_BIN": str(NODE_BIN),
        "SHIELD_ANVIL_PORT": str(free_port()),
    }
    return load_settings(env=env, cwd=root)


@contextmanager
def published_batch(tmp_path: Path) -> Iterator[tuple[Settings, ProtectOutcome]]:
    """The sample and its mirror anchored as one batch (no perturbation); yields the settings and the first outcome."""
    cfg = make_settings(tmp_path / "publisher")
    a = write_sample(tmp_path / "a.png")
    b = tmp_path / "b.png"
    Image.fromarray(np.asarray(Image.open(a).convert("RGB"))[:, ::-1].copy()).save(b)
    try:
        outs = protect_files([a, b], cfg, ProtectOptions(outdir=tmp_path / "out", adversarial=False, batch=True))
        out = outs[0]
        assert out.ledger["status"] == "anchored" and out.ledger.get("proof"), out.ledger
        yield cfg, out
    finally:
        Devnet(cfg).stop()


@pytest.fixture()
def e2e_settings(tmp_path: Path) -> Iterator[Settings]:
    """Fresh settings for one test; stops the devnet the test may have started."""
    cfg = make_settings(tmp_path)
    yield cfg
    Devnet(cfg).stop()


@dataclass(frozen=True)
class Published:
    """One portrait protected once (no perturbation) and anchored on the devnet."""

    settings: Settings
    source: Path
    source_digest: bytes
    outcome: ProtectOutcome
    folder: Path


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """The sample portrait of `make run`, protected with --no-adversarial and anchored."""
    if not HAS_ANVIL:
        pytest.skip("needs node_modules/.bin/anvil (run `npm ci` or `make setup`)")
    root = tmp_path_factory.mktemp("published")
    cfg = make_settings(root)
    src = write_sample(root / "portrait.png")
    digest = hashlib.sha256(src.read_bytes()).digest()
    try:
        [outcome] = protect_files([src], cfg, ProtectOptions(outdir=root / "out", adversarial=False))
        yield Published(cfg, src, digest, outcome, root)
    finally:
        Devnet(cfg).stop()
