"""The light, read-only ledger of ``shield verify``: :class:`LedgerReader` reads the
registry (shield.ledger.reads) over the standard-library JSON-RPC client
(shield.ledger.rpc); opening it imports neither web3 nor eth_account nor eth_abi.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from shield.config import Settings
from shield.ledger.errors import ChainIdMismatchError, ChainUnavailableError, DeploymentMissingError, LedgerError
from shield.ledger.index import LocalIndex
from shield.ledger.outbox import Outbox
from shield.ledger.reads import ChainReads, RegistryReads

__all__ = ["LedgerReader", "open_reader", "RegistryReads", "ChainReads", "devnet_stopped_error", "DEVNET_FIX"]

log = logging.getLogger(__name__)

#: What to do when this home's embedded devnet does not answer.
DEVNET_FIX = "run `shield chain up` to start the local devnet (or set SHIELD_RPC_URL to a node)"


def devnet_stopped_error(settings: Settings, url: str) -> ChainUnavailableError:
    """The error of a read while this home's embedded devnet is not running. Its port is
    then not asked at all: another home's node may listen there, and its chain is not this
    home's (its answers would read as "registry not on chain")."""
    return ChainUnavailableError(f"the local devnet of the home {settings.home} is not running ({url})",
                                 fix=DEVNET_FIX)

class LedgerReader(RegistryReads):
    """A read-only ledger over the standard-library JSON-RPC client (see :func:`open_reader`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.chain_id = settings.chain.chain_id
        self.registry_address = settings.chain.registry
        self.deployment_block = 0
        self.unavailable = None
        self.chain: ChainReads | None = None
        self.index = None
        self.outbox = None
        self._conn = _open_readonly(settings.home / "ledger.sqlite")
        if self._conn is not None:
            self.index = LocalIndex(self._conn, create=False)
            self.outbox = Outbox(self._conn, create=False)

    def _reads(self) -> ChainReads:
        if self.chain is None:
            raise self.unavailable or ChainUnavailableError("the ledger is offline")
        return self.chain

    @property
    def online(self) -> bool:
        return self.chain is not None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self, timeout_s: float) -> None:
        from shield.ledger.artifact import load_artifact
        from shield.ledger.deployment import read_deployment
        from shield.ledger.devnet import Devnet
        from shield.ledger.rpc import JsonRpc, RpcRegistry

        chain = self.settings.chain
        if chain.embedded:
            devnet = Devnet(self.settings)
            url, fix = devnet.url, DEVNET_FIX
            if not devnet.running():
                raise devnet_stopped_error(self.settings, url)
        else:
            url, fix = str(chain.rpc_url), "check SHIELD_RPC_URL and that the node is up"
        rpc = JsonRpc(url, timeout_s=timeout_s, fix=fix)
        chain_id = rpc.chain_id()
        if chain.chain_id is not None and chain_id != chain.chain_id:
            raise ChainIdMismatchError(f"the node is on chain {chain_id}, the configuration says {chain.chain_id}")
        self.chain_id = chain_id
        dep = read_deployment(self.settings, chain_id)
        address = chain.registry or (dep.address if dep is not None else None)
        if address is None:
            raise LedgerError(f"no registry is configured for chain {chain_id}",
                              fix="run `shield chain deploy`, or set SHIELD_REGISTRY")
        registry = RpcRegistry(rpc, address)
        self.registry_address = registry.address
        code = rpc.code(registry.address)
        if not code:
            raise DeploymentMissingError(
                f"the registry {registry.address} is not on chain {chain_id} (chain state lost or wrong address)")
        if code != load_artifact().deployed_bytecode:
            raise DeploymentMissingError(
                f"the registry at {registry.address} runs other code than contracts/ShieldRegistry.json "
                "(an older version of the registry?)")
        self.chain = registry
        recorded = dep is not None and dep.address.lower() == address.lower()
        self.deployment_block = dep.block if dep is not None and recorded else self.read_deployment_block()


def _open_readonly(path: Path) -> sqlite3.Connection | None:
    """The ledger database opened read-only (a verifier never creates or changes it)."""
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        conn.execute("SELECT asset_id, pdq FROM assets LIMIT 0")
        conn.execute("SELECT key, state FROM outbox LIMIT 0")
    except sqlite3.Error:
        return None  # an older database, or one being created: no local proofs
    return conn


def open_reader(settings: Settings, *, timeout_s: float | None = None) -> LedgerReader:
    """A read-only ledger for ``settings``'s chain over a light JSON-RPC client.

    Never fails because the chain is unreachable or the registry is missing: the reader
    is then offline (``reader.unavailable`` says why, and reads raise that error). Never
    starts the embedded devnet.

    Args:
        settings: shield settings (chain section, home).
        timeout_s: seconds per node request (default shield.ledger.rpc.TIMEOUT_S).
    """
    from shield.ledger.rpc import TIMEOUT_S

    reader = LedgerReader(settings)
    try:
        reader._connect(TIMEOUT_S if timeout_s is None else timeout_s)
    except LedgerError as exc:
        reader.unavailable = exc
        log.info("ledger offline: %s", exc)
    return reader
