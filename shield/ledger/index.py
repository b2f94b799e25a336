"""Local index of the photos this installation anchored, with their batch proofs and
their perceptual fingerprints.

Shares the ledger database with the outbox, so a request and its index rows are
committed in one transaction. The PDQ fingerprint of each protected photo (256 bits,
shield.fingerprint) is kept twice: with the asset (the value anchored, so a queued anchor
keeps it across restarts) and in the ``fingerprints`` table with its quality (the local
lookup). The chain holds it too (committed in the record and carried in its event), so a
verifier on another machine finds a re-encoded copy's record without this index.
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
    created_at TEXT NOT NULL,
    pdq BLOB
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
_COLS = "asset_id, content_hash, file_hash, manifest_hash, batch_root, proof, created_at, pdq"


@dataclass(frozen=True)
class IndexedAsset:
    asset_id: bytes
    content_hash: bytes
    file_hash: bytes
    manifest_hash: bytes
    batch_root: bytes | None
    siblings: tuple[bytes, ...] | None
    created_at: str
    pdq: bytes | None = None


class LocalIndex:
    def __init__(self, conn: sqlite3.Connection, *, create: bool = True) -> None:
        """Args: create: create (or upgrade) the tables; False for a read-only connection."""
        self.conn = conn
        if not create:
            return
        conn.executescript(_SCHEMA)
        columns = {str(r[1]) for r in conn.execute("PRAGMA table_info(assets)")}
        if "pdq" not in columns:  # a database from before the PDQ went on chain
            conn.execute("ALTER TABLE assets ADD COLUMN pdq BLOB")

    def add(self, asset_id: bytes, content_hash: bytes, file_hash: bytes, manifest_hash: bytes,
            batch_root: bytes | None = None, siblings: Sequence[bytes] | None = None, *,
            pdq: bytes | None = None) -> None:
        """Insert one asset (idempotent on asset id) with the PDQ it is anchored with.
        Call inside the outbox transaction."""
        proof = None if siblings is None else json.dumps([s.hex() for s in siblings])
        self.conn.execute(
            f"INSERT OR IGNORE INTO assets ({_COLS}) VALUES (?,?,?,?,?,?,?,?)",
            (asset_id, content_hash, file_hash, manifest_hash, batch_root, proof, datetime.now(UTC).isoformat(), pdq),
        )

    @staticmethod
    def _row(row: Sequence[Any]) -> IndexedAsset:
        siblings = None if row[5] is None else tuple(bytes.fromhex(s) for s in json.loads(str(row[5])))
        return IndexedAsset(bytes(row[0]), bytes(row[1]), bytes(row[2]), bytes(row[3]),
                            None if row[4] is None else bytes(row[4]), siblings, str(row[6]),
                            None if row[7] is None else bytes(row[7]))

    def get(self, asset_id: bytes) -> IndexedAsset | None:
        row = self.conn.execute(f"SELECT {_COLS} FROM assets WHERE asset_id = ?", (asset_id,)).fetchone()
        return None if row is None else self._row(row)

    def members(self, root: bytes) -> list[IndexedAsset]:
        """The members of batch ``root`` in the order they were added (the order of its leaves)."""
        return [self._row(r) for r in
                self.conn.execute(f"SELECT {_COLS} FROM assets WHERE batch_root = ? ORDER BY rowid", (root,))]

    def all(self) -> list[IndexedAsset]:
        return [self._row(r) for r in self.conn.execute(f"SELECT {_COLS} FROM assets ORDER BY created_at")]

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
                           asset.siblings, asset.batch_root, pdq=asset.pdq)


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
