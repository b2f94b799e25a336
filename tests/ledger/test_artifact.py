"""The committed artifact is what the committed source compiles to."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from shield.ledger.artifact import ARTIFACT_PATH, SOURCE_PATH, load_artifact, source_sha256
from shield.ledger.compile import build_artifact
from shield.ledger.errors import ArtifactError

REPO = Path(__file__).resolve().parents[2]


def test_artifact_source_hash_matches() -> None:
    artifact = load_artifact()
    assert artifact.source_sha256 == source_sha256(SOURCE_PATH)


def test_stale_artifact_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "ShieldRegistry.sol"
    src.write_text(SOURCE_PATH.read_text() + "\n// changed\n")
    art = tmp_path / "ShieldRegistry.json"
    shutil.copy(ARTIFACT_PATH, art)
    with pytest.raises(ArtifactError):
        load_artifact(art, source=src)


@pytest.mark.chain
@pytest.mark.skipif(not os.access(REPO / "node_modules/.bin/solcjs", os.X_OK), reason="needs solcjs (npm ci)")
def test_recompiling_reproduces_the_committed_bytecode() -> None:
    committed = json.loads(ARTIFACT_PATH.read_text())
    rebuilt = build_artifact(SOURCE_PATH)
    assert rebuilt["bytecode"] == committed["bytecode"]
    assert rebuilt["deployedBytecode"] == committed["deployedBytecode"]
    assert rebuilt["abi"] == committed["abi"]
    assert rebuilt["compiler"] == committed["compiler"]
