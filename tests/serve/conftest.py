"""Fixtures of the verify page's tests: one published portrait, a photo never protected, and
the page's server running in a thread (for the browser test)."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from PIL import Image

from shield.config import Settings
from shield.ledger import Devnet
from shield.pipeline import ProtectOptions, protect_files
from shield.sample import write_sample
from shield.serve import ServeOptions, create_app
from tests.pipeline.conftest import HAS_ANVIL, make_settings

with warnings.catch_warnings():
    # Starlette recommends a successor of httpx for its test client; httpx is what is installed.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

__all__ = ["Published", "TestClient", "client_for"]

#: The address tests send requests to: the page answers loopback names only.
BASE_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Published:
    """The sample portrait, its protected copy (no perturbation, anchored), and a photo
    this home never protected (``plain``: another picture, so that no fingerprint in the
    local index matches it)."""

    settings: Settings
    original: Path
    protected: Path
    plain: Path
    asset_id: str
    tx: str
    root: Path


@pytest.fixture(scope="package")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """`shield protect portrait.png --no-adversarial` once for the verify page's tests."""
    if not HAS_ANVIL:
        pytest.skip("needs node_modules/.bin/anvil (run `npm ci` or `make setup`)")
    root = tmp_path_factory.mktemp("serve")
    cfg = make_settings(root)
    src = write_sample(root / "portrait.png")
    try:
        [outcome] = protect_files([src], cfg, ProtectOptions(outdir=root / "out", adversarial=False))
        yield Published(cfg, src, outcome.output, _write_plain(root / "cat.png"), outcome.asset_id,
                        str(outcome.ledger["tx"]), root)
    finally:
        Devnet(cfg).stop()


def _write_plain(path: Path) -> Path:
    """scikit-image's chelsea (a cat, 451 x 300), as PNG."""
    from skimage import data

    Image.fromarray(np.asarray(data.chelsea(), dtype=np.uint8)).save(path, format="PNG")
    return path


def client_for(settings: Settings, options: ServeOptions | None = None) -> TestClient:
    """A test client of the page's app, addressed as the browser would (127.0.0.1)."""
    return TestClient(create_app(settings, options), base_url=BASE_URL)


@pytest.fixture(scope="package")
def client(published: Published) -> TestClient:
    return client_for(published.settings)


@dataclass(frozen=True)
class LiveServer:
    url: str


@pytest.fixture(scope="module")
def live_server(published: Published) -> Iterator[LiveServer]:
    """The app under uvicorn in a thread, on a free port of 127.0.0.1."""
    from shield.commands.serve import listen

    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(published.settings), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the verify page's server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}/")
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
