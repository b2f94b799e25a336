"""The compiled ShieldRegistry artifact: where it lives, loading it, and checking that it
was built from the Solidity source next to it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from shield.ledger.errors import ArtifactError

__all__ = ["Artifact", "CONTRACTS_DIR", "SOURCE_PATH", "ARTIFACT_PATH", "load_artifact", "source_sha256"]

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
SOURCE_PATH = CONTRACTS_DIR / "ShieldRegistry.sol"
ARTIFACT_PATH = CONTRACTS_DIR / "ShieldRegistry.json"


@dataclass(frozen=True)
class Artifact:
    """ABI and bytecode of the registry, plus what they were built from.

    Attributes:
        abi: the contract ABI (JSON list).
        bytecode: creation code.
        deployed_bytecode: runtime code, as ``eth_getCode`` returns it after deployment.
        compiler_version: solc long version string.
        settings: the solc standard-JSON settings used.
        source_sha256: SHA-256 (hex) of the Solidity source bytes it was compiled from.
    """

    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes
    compiler_version: str
    settings: dict[str, Any]
    source_sha256: str

    @property
    def sha256(self) -> str:
        """Hash (hex) identifying this build: runtime code + creation code."""
        return hashlib.sha256(self.bytecode + self.deployed_bytecode).hexdigest()


def source_sha256(path: Path = SOURCE_PATH) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _hex(doc: dict[str, Any], key: str, path: Path) -> bytes:
    try:
        return bytes.fromhex(str(doc[key]).removeprefix("0x"))
    except (KeyError, ValueError) as exc:
        raise ArtifactError(f"{path}: field {key!r} is missing or not hex") from exc


@lru_cache(maxsize=4)
def _load(path: Path, source: Path, check_source: bool) -> Artifact:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"contract artifact {path} is missing") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"contract artifact {path} is unreadable: {exc}") from exc
    artifact = Artifact(
        abi=list(doc.get("abi", [])),
        bytecode=_hex(doc, "bytecode", path),
        deployed_bytecode=_hex(doc, "deployedBytecode", path),
        compiler_version=str(doc.get("compiler", {}).get("version", "")),
        settings=dict(doc.get("compiler", {}).get("settings", {})),
        source_sha256=str(doc.get("sourceSha256", "")),
    )
    if not artifact.abi or not artifact.bytecode:
        raise ArtifactError(f"contract artifact {path} has no ABI or bytecode")
    # An installed package may ship without the .sol; the check runs wherever it exists.
    if check_source and source.is_file() and source_sha256(source) != artifact.source_sha256:
        raise ArtifactError(f"{path.name} was not built from the current {source.name} (source hash differs)")
    return artifact


def load_artifact(path: Path = ARTIFACT_PATH, *, source: Path = SOURCE_PATH, check_source: bool = True) -> Artifact:
    """Load the committed artifact and check it matches the Solidity source.

    Raises:
        ArtifactError: missing, malformed, or stale (source changed since the last build).
    """
    return _load(path, source, check_source)
