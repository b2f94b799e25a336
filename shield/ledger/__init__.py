"""Ethereum ledger: registry contract, embedded anvil devnet, crash-safe anchoring through a
sqlite outbox, Merkle batches with proof sidecars, and the audit (issue 4, DESIGN.md)."""

from __future__ import annotations

from shield.ledger.audit import AuditEntry, AuditReport, audit
from shield.ledger.devnet import Devnet, DevnetStatus
from shield.ledger.errors import (
    ArtifactError,
    AssetTakenError,
    ChainIdMismatchError,
    ChainUnavailableError,
    DeploymentMissingError,
    DevnetError,
    NoAccountError,
    NotFoundError,
    NotPublisherError,
    PortBusyError,
    ProofFormatError,
    StateCorruptError,
    TransactionError,
)
from shield.ledger.deployment import Deployment, read_deployment
from shield.ledger.ledger import Ledger, open_ledger
from shield.ledger.merkle import (
    MerkleProof,
    build_tree,
    commitment,
    leaf_hash,
    node_hash,
    read_proof_sidecar,
    sidecar_path,
    verify_proof,
    write_proof_sidecar,
)
from shield.ledger.proof import ProofCheck, check_proof, chains_to, proof_message, watermark_fingerprint
from shield.ledger.types import (
    AnchorOutcome,
    AnchorRequest,
    AnchorStatus,
    LedgerRecord,
    PublisherClaim,
    PublisherInfo,
    PublisherKeys,
)

__all__ = [
    "AnchorRequest",
    "AnchorOutcome",
    "AnchorStatus",
    "LedgerRecord",
    "PublisherInfo",
    "PublisherClaim",
    "PublisherKeys",
    "ProofCheck",
    "check_proof",
    "chains_to",
    "proof_message",
    "watermark_fingerprint",
    "Ledger",
    "open_ledger",
    "Deployment",
    "read_deployment",
    "audit",
    "AuditEntry",
    "AuditReport",
    "Devnet",
    "DevnetStatus",
    "MerkleProof",
    "build_tree",
    "commitment",
    "leaf_hash",
    "node_hash",
    "verify_proof",
    "write_proof_sidecar",
    "read_proof_sidecar",
    "sidecar_path",
    "ArtifactError",
    "AssetTakenError",
    "ChainIdMismatchError",
    "ChainUnavailableError",
    "DeploymentMissingError",
    "DevnetError",
    "NoAccountError",
    "NotFoundError",
    "NotPublisherError",
    "PortBusyError",
    "ProofFormatError",
    "StateCorruptError",
    "TransactionError",
]
