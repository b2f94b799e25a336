"""Local index of the photos this installation anchored, with their batch proofs and
their perceptual fingerprints.

Shares the ledger database with the outbox, so a request and its index rows are
committed in one transaction. The PDQ fingerprint of each protected photo (256 bits,
shield.fingerprint) is kept here only: the registry contract does not store or emit it,
so a verifier on another machine cannot compare a re-encoded copy with the record.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # merkle imports eth_utils (0.25 s); a fingerprint lookup does not need it
    from shield.ledger.merkle import MerkleProof

__all__ = ["LocalIndex", "IndexedAsset", "read_fingerprints"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assets (
    asset_id BLOB PRIMARY KEY,
    content_hash BLOB NOT NULL,
    file_hash BLOB NOT NULL,
    manifest_hash BLOB NOT NULL,
    batch_root BLOB,
    proof TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assets_root ON assets(batch_root);
CREATE TABLE IF NOT EXISTS fingerprints (
    asset_id BLOB PRIMARY KEY,
    pdq BLOB NOT NULL,
    quality INTEGER NOT NULL
);
"""

#: Size of a PDQ hash in bytes (256 bits).
PDQ_BYTES = 32


@dataclass(frozen=True)
class IndexedAsset:
    asset_id: bytes
    content_hash: bytes
    file_hash: bytes
    manifest_hash: bytes
    batch_root: bytes | None
    siblings: tuple[bytes, ...] | None
    created_at: str


class LocalIndex:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.executescript(_SCHEMA)

    def add(self, asset_id: bytes, content_hash: bytes, file_hash: bytes, manifest_hash: bytes,
            batch_root: bytes | None = None, siblings: Sequence[bytes] | None = None) -> None:
        """Insert one asset (idempotent on asset id). Call inside the outbox transaction."""
        proof = None if siblings is None else json.dumps([s.hex() for s in siblings])
        self.conn.execute(
            "INSERT OR IGNORE INTO assets VALUES (?,?,?,?,?,?,?)",
            (asset_id, content_hash, file_hash, manifest_hash, batch_root, proof, datetime.now(UTC).isoformat()),
        )

    @staticmethod
    def _row(row: Sequence[Any]) -> IndexedAsset:
        siblings = None if row[5] is None else tuple(bytes.fromhex(s) for s in json.loads(str(row[5])))
        return IndexedAsset(bytes(row[0]), bytes(row[1]), bytes(row[2]), bytes(row[3]),
                            None if row[4] is None else bytes(row[4]), siblings, str(row[6]))

    def get(self, asset_id: bytes) -> IndexedAsset | None:
        row = self.conn.execute("SELECT * FROM assets WHERE asset_id = ?", (asset_id,)).fetchone()
        return None if row is None else self._row(row)

    def members(self, root: bytes) -> list[IndexedAsset]:
        return [self._row(r) for r in self.conn.execute("SELECT * FROM assets WHERE batch_root = ?", (root,))]

    def all(self) -> list[IndexedAsset]:
        return [self._row(r) for r in self.conn.execute("SELECT * FROM assets ORDER BY created_at")]

    def add_fingerprint(self, asset_id: bytes, pdq: bytes, quality: int) -> None:
        """Record the PDQ hash (32 bytes) and quality (0..100) of ``asset_id`` (replaces)."""
        if len(asset_id) != 16 or len(pdq) != PDQ_BYTES or not 0 <= quality <= 100:
            raise ValueError("fingerprint row: a 16-byte asset id, a 32-byte PDQ hash and a quality 0..100")
        self.conn.execute("INSERT OR REPLACE INTO fingerprints VALUES (?,?,?)", (asset_id, pdq, int(quality)))

    def fingerprint(self, asset_id: bytes) -> tuple[bytes, int] | None:
        """(PDQ hash, quality) recorded for ``asset_id``, or None."""
        row = self.conn.execute("SELECT pdq, quality FROM fingerprints WHERE asset_id = ?", (asset_id,)).fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]))

    def fingerprints(self) -> list[tuple[bytes, bytes, int]]:
        """Every (asset id, PDQ hash, quality) row."""
        return [(bytes(r[0]), bytes(r[1]), int(r[2])) for r in self.conn.execute("SELECT * FROM fingerprints")]

    def proof(self, asset: IndexedAsset) -> MerkleProof | None:
        if asset.batch_root is None or asset.siblings is None:
            return None
        from shield.ledger.merkle import MerkleProof

        return MerkleProof(asset.asset_id, asset.content_hash, asset.file_hash, asset.manifest_hash,
                           asset.siblings, asset.batch_root)


def read_fingerprints(db_path: Path) -> list[tuple[bytes, bytes, int]]:
    """Every (asset id, PDQ hash, quality) row of the ledger database at ``db_path``,
    opened read-only (a verifier never creates or changes it); [] when there is none."""
    if not db_path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5.0)
        try:
            rows = conn.execute("SELECT asset_id, pdq, quality FROM fingerprints").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []  # an older database without the table, or one being created
    return [(bytes(r[0]), bytes(r[1]), int(r[2])) for r in rows]
