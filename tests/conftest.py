"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shield.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Torch warns only once per process about some misuses; warn at every occurrence, so
    that the error filter in pyproject.toml names every test that does it, not the first."""
    import torch

    torch.set_warn_always(True)


def _shared_data() -> Path | None:
    raw = os.environ.get("SHIELD_DATA_DIR")
    candidate = Path(raw) if raw else REPO.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $SHIELD_DATA_DIR); tests that use it skip when it is absent."""
    path = _shared_data()
    if path is None:
        pytest.skip("needs the shared face data (../shared/data or SHIELD_DATA_DIR), absent on this machine")
    return path


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    """Settings pointing every state directory into a fresh temporary folder."""
    env = {
        "SHIELD_HOME": str(tmp_path / "home"),
        "SHIELD_KEYS_DIR": str(tmp_path / "keys"),
        "SHIELD_NODE_BIN": str(REPO / "node_modules" / ".bin"),
    }
    data = _shared_data()
    if data is not None:
        env["SHIELD_DATA_DIR"] = str(data)
    return load_settings(env=env, cwd=tmp_path)
