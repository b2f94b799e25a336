"""Narrow ledger errors: each names one failure a user can hit, with a one-line fix."""

from __future__ import annotations

from shield.errors import LedgerError

__all__ = [
    "LedgerError",
    "ArtifactError",
    "ChainUnavailableError",
    "ChainIdMismatchError",
    "DevnetError",
    "PortBusyError",
    "StateCorruptError",
    "DeploymentMissingError",
    "NoAccountError",
    "TransactionError",
    "AssetTakenError",
    "NotPublisherError",
    "NotFoundError",
    "ProofFormatError",
]


class ArtifactError(LedgerError):
    """The compiled contract artifact is missing or does not match its Solidity source."""

    default_fix = "run `make contracts` to rebuild contracts/ShieldRegistry.json"


class ChainUnavailableError(LedgerError):
    """The Ethereum node cannot be reached (or stopped answering)."""


class ChainIdMismatchError(LedgerError):
    """The node reports a chain id other than the configured one."""

    default_fix = "check SHIELD_RPC_URL and SHIELD_CHAIN_ID point to the same chain"


class DevnetError(LedgerError):
    """The embedded anvil devnet cannot be started or stopped."""

    default_fix = "run `shield chain status`; the node log is in <home>/chain/anvil.log"


class PortBusyError(DevnetError):
    """Another program listens on the devnet's port."""

    default_fix = "stop that program, or set SHIELD_ANVIL_PORT to a free port"


class StateCorruptError(DevnetError):
    """The devnet state file cannot be read; it is never reset silently."""


class DeploymentMissingError(LedgerError):
    """The recorded registry contract is not on the chain (for example, chain state was lost)."""

    default_fix = "run `shield chain deploy` to deploy a new registry (records on the old one are lost)"


class NoAccountError(LedgerError):
    """A transaction was requested but no account key was given."""

    default_fix = "run `shield keys init` to create the publisher keys"


class TransactionError(LedgerError):
    """A transaction reverted, ran out of retries, or was rejected by the node."""


class AssetTakenError(TransactionError):
    """The asset id (or batch root) is already anchored by another publisher."""

    default_fix = "protect the photo again to get a fresh asset id"


class NotPublisherError(TransactionError):
    """Only the publisher of an entry may revoke it."""

    default_fix = "revoke with the publisher key that anchored the entry"


class NotFoundError(LedgerError):
    """No record or batch with that key exists on the chain."""

    default_fix = "check the asset id or batch root (`shield audit` lists them)"


class ProofFormatError(LedgerError):
    """A Merkle proof sidecar is malformed or exceeds its limits."""

    default_fix = "the .proof.json next to the photo is damaged; fetch it again from the publisher"
