"""Fixtures for the provenance tests: a real development keystore."""

from __future__ import annotations

import pytest
from provenance_helpers import make_settings

from shield.config import Settings
from shield.provenance import UnlockedKeys, ensure_keystore


@pytest.fixture(scope="module")
def prov_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("prov"))


@pytest.fixture(scope="module")
def dev_keys(prov_settings: Settings) -> UnlockedKeys:
    """A development keystore, created on first use exactly as `shield protect` does."""
    return ensure_keystore(prov_settings, env={})
