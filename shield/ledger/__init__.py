"""Ethereum ledger: registry contract, embedded anvil devnet, crash-safe anchoring through a
sqlite outbox, Merkle batches with proof sidecars, and the audit (issue 4, DESIGN.md).

Names are loaded on first use (PEP 562): importing ``shield.ledger`` or a light module of
it (``index``, ``merkle``, ``errors``, ``reader``, ``rpc``) does not import web3 and
eth_account (about 1.5 s of a cold start), which only writing to a chain needs; reading
goes through :func:`open_reader` (standard-library JSON-RPC, hand ABI decoding).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from shield.ledger.reader import LedgerReader, open_reader
    from shield.ledger.reads import RegistryReads
    from shield.ledger.merkle import (
        MerkleProof,
        build_tree,
        commitment,
        leaf_hash,
        members_digest,
        pack_members,
        unpack_members,
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
        FingerprintHit,
        LedgerRecord,
        PublisherClaim,
        PublisherInfo,
        PublisherKeys,
    )

#: Public name -> the submodule that defines it.
_WHERE = {
    "AnchorRequest": "shield.ledger.types",
    "AnchorOutcome": "shield.ledger.types",
    "AnchorStatus": "shield.ledger.types",
    "LedgerRecord": "shield.ledger.types",
    "FingerprintHit": "shield.ledger.types",
    "PublisherInfo": "shield.ledger.types",
    "PublisherClaim": "shield.ledger.types",
    "PublisherKeys": "shield.ledger.types",
    "ProofCheck": "shield.ledger.proof",
    "check_proof": "shield.ledger.proof",
    "chains_to": "shield.ledger.proof",
    "proof_message": "shield.ledger.proof",
    "watermark_fingerprint": "shield.ledger.proof",
    "Ledger": "shield.ledger.ledger",
    "open_ledger": "shield.ledger.ledger",
    "LedgerReader": "shield.ledger.reader",
    "RegistryReads": "shield.ledger.reads",
    "open_reader": "shield.ledger.reader",
    "Deployment": "shield.ledger.deployment",
    "read_deployment": "shield.ledger.deployment",
    "audit": "shield.ledger.audit",
    "AuditEntry": "shield.ledger.audit",
    "AuditReport": "shield.ledger.audit",
    "Devnet": "shield.ledger.devnet",
    "DevnetStatus": "shield.ledger.devnet",
    "MerkleProof": "shield.ledger.merkle",
    "build_tree": "shield.ledger.merkle",
    "commitment": "shield.ledger.merkle",
    "leaf_hash": "shield.ledger.merkle",
    "pack_members": "shield.ledger.merkle",
    "unpack_members": "shield.ledger.merkle",
    "members_digest": "shield.ledger.merkle",
    "node_hash": "shield.ledger.merkle",
    "verify_proof": "shield.ledger.merkle",
    "write_proof_sidecar": "shield.ledger.merkle",
    "read_proof_sidecar": "shield.ledger.merkle",
    "sidecar_path": "shield.ledger.merkle",
    "ArtifactError": "shield.ledger.errors",
    "AssetTakenError": "shield.ledger.errors",
    "ChainIdMismatchError": "shield.ledger.errors",
    "ChainUnavailableError": "shield.ledger.errors",
    "DeploymentMissingError": "shield.ledger.errors",
    "DevnetError": "shield.ledger.errors",
    "NoAccountError": "shield.ledger.errors",
    "NotFoundError": "shield.ledger.errors",
    "NotPublisherError": "shield.ledger.errors",
    "PortBusyError": "shield.ledger.errors",
    "ProofFormatError": "shield.ledger.errors",
    "StateCorruptError": "shield.ledger.errors",
    "TransactionError": "shield.ledger.errors",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'shield.ledger' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
