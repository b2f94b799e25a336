"""Rebuild contracts/ShieldRegistry.json from contracts/ShieldRegistry.sol with solcjs.

Run as ``python -m shield.ledger.compile`` (the Makefile ``contracts`` target). The
compiler is the npm ``solc`` package pinned in package.json, run offline; settings are
fixed here so that the same source always yields byte-identical bytecode.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from shield.config import find_node_tool
from shield.ledger.artifact import ARTIFACT_PATH, SOURCE_PATH, source_sha256
from shield.ledger.errors import ArtifactError

__all__ = ["SOLC_SETTINGS", "find_solcjs", "compile_source", "build_artifact", "main"]

log = logging.getLogger(__name__)

CONTRACT_NAME = "ShieldRegistry"
#: cancun is supported by anvil, py-evm (eth-tester) and every public chain we target.
SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 10_000},
    "evmVersion": "cancun",
    "viaIR": False,
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}
#: Compiling takes ~5-20 s on a slow shared machine (emscripten build of solc).
COMPILE_TIMEOUT_S = 300


def find_solcjs(node_bin: Path | None = None) -> Path:
    """The solcjs executable (see :func:`shield.config.find_node_tool`)."""
    found = find_node_tool("solcjs", node_bin)
    if found is not None:
        return found
    raise ArtifactError("solcjs was not found", fix="run `npm ci` in the repository (package.json pins solc)")


def compile_source(source: Path = SOURCE_PATH, *, solcjs: Path | None = None) -> tuple[dict[str, Any], str]:
    """Compile ``source``; return (solc output for the contract, compiler version).

    Raises:
        ArtifactError: solcjs missing, failing, or reporting a compile error.
    """
    solcjs = solcjs or find_solcjs()
    request = {
        "language": "Solidity",
        "sources": {source.name: {"content": source.read_text()}},
        "settings": SOLC_SETTINGS,
    }
    with tempfile.TemporaryDirectory() as tmp:
        try:
            proc = subprocess.run(
                [str(solcjs), "--standard-json"],
                input=json.dumps(request),
                capture_output=True,
                text=True,
                timeout=COMPILE_TIMEOUT_S,
                cwd=tmp,
                check=False,
            )
            version = subprocess.run(
                [str(solcjs), "--version"], capture_output=True, text=True, timeout=60, check=False
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ArtifactError(f"running solcjs failed: {exc}") from exc
    if proc.returncode != 0:
        raise ArtifactError(f"solcjs exited with {proc.returncode}: {proc.stderr.strip()[:300]}")
    # solcjs may print warnings before the JSON document.
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise ArtifactError(f"{source.name}: {errors[0].get('formattedMessage', errors[0]).strip()}")
    for warning in out.get("errors", []):
        log.warning("solc: %s", warning.get("formattedMessage", warning).strip())
    return out["contracts"][source.name][CONTRACT_NAME], version


def build_artifact(source: Path = SOURCE_PATH, *, solcjs: Path | None = None) -> dict[str, Any]:
    """The artifact document (JSON-ready) for ``source``."""
    contract, version = compile_source(source, solcjs=solcjs)
    return {
        "contractName": CONTRACT_NAME,
        "sourcePath": f"contracts/{source.name}",
        "sourceSha256": source_sha256(source),
        "compiler": {"name": "solcjs", "version": version, "settings": SOLC_SETTINGS},
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE_PATH)
    parser.add_argument("--out", type=Path, default=ARTIFACT_PATH)
    parser.add_argument("--node-bin", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    doc = build_artifact(args.source, solcjs=find_solcjs(args.node_bin))
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(args.out)
    log.info("wrote %s (solc %s, %d bytes runtime code)", args.out, doc["compiler"]["version"],
             len(doc["deployedBytecode"]) // 2 - 1)


if __name__ == "__main__":  # pragma: no cover
    main()
