"""Result and request types of the ledger stage."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519

from shield.ledger.proof import ProofCheck

__all__ = ["AnchorRequest", "AnchorStatus", "AnchorOutcome", "LedgerRecord", "PublisherInfo", "PublisherClaim",
           "PublisherKeys"]


@dataclass(frozen=True)
class AnchorRequest:
    """What is anchored for one protected photo.

    Attributes:
        asset_id: 16-byte random asset id (the watermark payload, the ledger key).
        content_hash: 32-byte canonical pixel hash.
        file_hash: 32-byte SHA-256 of the final file.
        manifest_hash: 32-byte hash of the C2PA manifest/claim.
    """

    asset_id: bytes
    content_hash: bytes
    file_hash: bytes
    manifest_hash: bytes

    def __post_init__(self) -> None:
        for name, size in (("asset_id", 16), ("content_hash", 32), ("file_hash", 32), ("manifest_hash", 32)):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != size:
                raise TypeError(f"AnchorRequest.{name} must be {size} bytes")
        if self.asset_id == bytes(16):
            raise ValueError("AnchorRequest.asset_id must not be all zeros")

    @property
    def fields(self) -> tuple[bytes, bytes, bytes, bytes]:
        return self.asset_id, self.content_hash, self.file_hash, self.manifest_hash


class AnchorStatus(str, enum.Enum):
    ANCHORED = "anchored"
    QUEUED = "queued"
    PENDING_CONFIRMATIONS = "pending-confirmations"
    #: the asset id (or batch root) already belongs to another publisher
    REJECTED = "rejected"


@dataclass(frozen=True)
class AnchorOutcome:
    status: AnchorStatus
    asset_id: bytes
    chain_id: int | None
    contract: str | None
    tx_hash: str | None
    block: int | None
    message: str
    batch_root: bytes | None = None


@dataclass(frozen=True)
class LedgerRecord:
    """A record as read from contract storage.

    Single records store only a 22-byte ``commitment`` of the three hashes; the hash
    fields are None then and the verifier recomputes the commitment (Ledger.check). For a
    batch member the hashes come from the proof and ``commitment`` is the leaf hash.
    """

    asset_id: bytes
    publisher: str
    commitment: bytes
    timestamp: datetime
    block: int | None
    tx_hash: str | None
    revoked: bool
    revocation_reason: str | None
    batch_root: bytes | None
    content_hash: bytes | None = None
    file_hash: bytes | None = None
    manifest_hash: bytes | None = None


@dataclass(frozen=True)
class PublisherInfo:
    """A registration as stored: fingerprint, watermark key and the proof bytes."""

    address: str
    cert_fingerprint: bytes
    watermark_key: bytes
    registered_at: datetime | None
    publisher_id: int
    proof: bytes = b""


@dataclass(frozen=True)
class PublisherClaim:
    """A registration and the check of its proof (see shield.ledger.proof)."""

    info: PublisherInfo
    check: ProofCheck


class PublisherKeys(Protocol):
    """What signs a publisher proof (shield.provenance.keystore.UnlockedKeys fits)."""

    @property
    def cert_fingerprint(self) -> bytes: ...
    @property
    def c2pa_cert_chain_pem(self) -> bytes: ...
    @property
    def c2pa_private_key_pem(self) -> bytes: ...
    @property
    def c2pa_sign(self) -> Callable[[bytes], bytes] | None: ...
    @property
    def watermark_key(self) -> ed25519.Ed25519PrivateKey: ...
    @property
    def watermark_public_key(self) -> bytes: ...
