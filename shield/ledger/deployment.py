"""Where the registry lives: ``<home>/chain/deployment.json`` (one entry per chain id:
address, block, deploying tx, artifact hash), deploying it, and funding on the devnet."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from shield.config import Settings
from shield.ledger.errors import LedgerError

if TYPE_CHECKING:  # reading the deployment (shield verify) must not import web3
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

    from shield.ledger.artifact import Artifact

__all__ = ["Deployment", "read_deployment", "write_deployment", "deploy_registry", "fund_on_devnet"]

log = logging.getLogger(__name__)

#: Balance given to our account on the embedded devnet (wei): enough for ~10^6 anchors.
DEVNET_FUNDING_WEI = 1000 * 10**18


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    address: str
    block: int
    tx_hash: str
    artifact_sha256: str
    deployed_at: str


def _deployment_path(settings: Settings) -> Path:
    return settings.home / "chain" / "deployment.json"


def read_deployment(settings: Settings, chain_id: int) -> Deployment | None:
    path = _deployment_path(settings)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LedgerError(f"{path} is unreadable: {exc}", fix=f"fix or remove {path}") from exc
    entry = doc.get("chains", {}).get(str(chain_id))
    return None if entry is None else Deployment(**entry)


def write_deployment(settings: Settings, dep: Deployment) -> None:
    path = _deployment_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        doc = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        doc = {}
    from shield.imaging.save import atomic_write_bytes

    doc.setdefault("chains", {})[str(dep.chain_id)] = dep.__dict__
    atomic_write_bytes(json.dumps(doc, indent=2).encode(), path, overwrite=True)


def deploy_registry(settings: Settings, w3: Web3, artifact: Artifact, account: LocalAccount) -> Deployment:
    from shield.ledger.client import deploy

    address, block, tx = deploy(w3, artifact, account)
    dep = Deployment(int(w3.eth.chain_id), address, block, tx, artifact.sha256, datetime.now(UTC).isoformat())
    write_deployment(settings, dep)
    log.info("deployed ShieldRegistry at %s (chain %d, block %d)", address, dep.chain_id, block)
    return dep


def fund_on_devnet(w3: Web3, address: str) -> None:
    from eth_utils import to_checksum_address

    if w3.eth.get_balance(to_checksum_address(address)) < DEVNET_FUNDING_WEI // 10:
        w3.provider.make_request("anvil_setBalance", [address, hex(DEVNET_FUNDING_WEI)])  # type: ignore[arg-type]
