"""Result and request types of the ledger stage."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519

from shield.ledger.proof import ProofCheck

__all__ = ["AnchorRequest", "AnchorStatus", "AnchorOutcome", "LedgerRecord", "FingerprintHit", "PublisherInfo",
           "PublisherClaim", "PublisherKeys"]

_NO_PDQ = bytes(32)


@dataclass(frozen=True)
class AnchorRequest:
    """What is anchored for one protected photo.

    Attributes:
        asset_id: 16-byte random asset id (the watermark payload, the ledger key).
        content_hash: 32-byte canonical pixel hash.
        file_hash: 32-byte SHA-256 of the final file.
        manifest_hash: 32-byte hash of the C2PA manifest/claim.
        pdq: 32-byte PDQ perceptual fingerprint of the final pixels (shield.fingerprint),
            committed to on chain and carried in the anchoring event so that a re-encoded
            copy's record can be found by it. None when protect computed none (an image
            too small for PDQ); the chain then holds zeros. An all-zero value (a flat,
            quality-0 image, which would match any other flat image) is kept as None.
    """

    asset_id: bytes
    content_hash: bytes
    file_hash: bytes
    manifest_hash: bytes
    pdq: bytes | None = None

    def __post_init__(self) -> None:
        for name, size in (("asset_id", 16), ("content_hash", 32), ("file_hash", 32), ("manifest_hash", 32)):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != size:
                raise TypeError(f"AnchorRequest.{name} must be {size} bytes")
        if self.asset_id == bytes(16):
            raise ValueError("AnchorRequest.asset_id must not be all zeros")
        if self.pdq is not None:
            if not isinstance(self.pdq, bytes) or len(self.pdq) != 32:
                raise TypeError("AnchorRequest.pdq must be 32 bytes or None")
            if self.pdq == _NO_PDQ:
                object.__setattr__(self, "pdq", None)

    @property
    def fields(self) -> tuple[bytes, bytes, bytes, bytes]:
        """(asset id, content, file, manifest hash): the hashes of the file."""
        return self.asset_id, self.content_hash, self.file_hash, self.manifest_hash

    @property
    def chain_fields(self) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        """The arguments of ShieldRegistry.anchor: :attr:`fields` and the PDQ (zeros for None)."""
        return (*self.fields, self.pdq if self.pdq is not None else _NO_PDQ)


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

    Single records store only a 22-byte ``commitment`` of the three hashes and the PDQ;
    the hashes and ``pdq`` come from the ``Anchored`` event, kept only when they reproduce
    that commitment (None when the log is pruned). For a batch member the hashes come from
    the proof and ``commitment`` is the leaf hash; a member found through its batch's
    ``BatchAnchored`` member list without a proof has ``commitment`` b"" and no hashes,
    and its ``pdq`` is the event's, kept only when the list matches the stored digest.

    Attributes:
        pdq: the 32-byte PDQ fingerprint anchored with the photo, None when unknown or
            when the photo was anchored without one.
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
    pdq: bytes | None = None


@dataclass(frozen=True)
class FingerprintHit:
    """A record whose anchored PDQ fingerprint is near a queried one (Ledger.find_by_fingerprint).

    Attributes:
        record: the record (its publisher's proof is not checked yet: see Ledger.claim).
        distance: Hamming distance, in bits of 256, between the record's PDQ and the query.
    """

    record: LedgerRecord
    distance: int


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
