"""Local index of the photos this installation anchored, with their batch proofs.

Shares the ledger database with the outbox, so a request and its index rows are
committed in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from datetime import UTC, datetime

from shield.ledger.merkle import MerkleProof

__all__ = ["LocalIndex", "IndexedAsset"]

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
"""


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

    def proof(self, asset: IndexedAsset) -> MerkleProof | None:
        if asset.batch_root is None or asset.siblings is None:
            return None
        return MerkleProof(asset.asset_id, asset.content_hash, asset.file_hash, asset.manifest_hash,
                           asset.siblings, asset.batch_root)
