"""Storage words of the registry (layout in contracts/ShieldRegistry.sol) and their keys:
pure functions on bytes."""

from __future__ import annotations

from dataclasses import dataclass

from shield.ledger.keccak import keccak

__all__ = ["RawRecord", "RawBatch", "decode_record_word", "decode_batch_word", "record_key", "batch_key"]


@dataclass(frozen=True)
class RawRecord:
    """A single record as stored (see the layout in ShieldRegistry.sol). timestamp 0: absent."""

    commitment: bytes
    timestamp: int
    publisher_id: int
    revoked: bool

    @property
    def exists(self) -> bool:
        return self.timestamp != 0


@dataclass(frozen=True)
class RawBatch:
    """A batch as stored: ``members`` is the 18-byte digest of its member list. timestamp 0: absent."""

    members: bytes
    timestamp: int
    publisher_id: int
    count: int
    revoked: bool

    @property
    def exists(self) -> bool:
        return self.timestamp != 0


def decode_record_word(word: bytes) -> RawRecord:
    """Decode ``| flags:8 | publisherId:32 | timestamp:40 | commitment:176 |`` (big-endian word)."""
    return RawRecord(bytes(word[10:32]), int.from_bytes(word[5:10], "big"), int.from_bytes(word[1:5], "big"),
                     bool(word[0] & 1))


def decode_batch_word(word: bytes) -> RawBatch:
    """Decode ``| flags:8 | count:32 | publisherId:32 | timestamp:40 | members:144 |``."""
    return RawBatch(bytes(word[14:32]), int.from_bytes(word[9:14], "big"), int.from_bytes(word[5:9], "big"),
                    int.from_bytes(word[1:5], "big"), bool(word[0] & 1))


def record_key(publisher: str, asset_id: bytes) -> bytes:
    """Storage key of ``publisher``'s record of ``asset_id`` (ShieldRegistry.recordKey)."""
    return keccak(bytes.fromhex(publisher.removeprefix("0x")) + bytes(asset_id))


def batch_key(publisher: str, root: bytes) -> bytes:
    """Storage key of ``publisher``'s batch ``root`` (ShieldRegistry.batchKey)."""
    return keccak(bytes.fromhex(publisher.removeprefix("0x")) + bytes(root))
