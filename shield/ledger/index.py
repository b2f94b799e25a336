"""Local index of the photos this installation anchored, with their batch proofs and
their perceptual fingerprints.

Shares the ledger database with the outbox, so a request and its index rows are
committed in one transaction. The PDQ fingerprint of each protected photo (256 bits,
shield.fingerprint) is kept twice: with the asset (the value anchored, so a queued anchor
keeps it across restarts) and in the ``fingerprints`` table with its quality (the local
lookup). The chain holds it too (committed in the record and carried in its event), so a
verifier on another machine finds a re-encoded copy's record without this index. The
name of the protected file written for each asset (its basename, never on chain) is kept
so that ``shield audit`` can say which file an entry is.
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
    pdq BLOB,
    file_name TEXT
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
_COLS = "asset_id, content_hash, file_hash, manifest_hash, batch_root, proof, created_at, pdq, file_name"
#: Longest file name kept (bytes of UTF-8; the limit of common file systems).
MAX_FILE_NAME = 255


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
    file_name: str | None = None  # basename of the protected file written, when recorded


def _check_file_name(name: str | None) -> None:
    if name is None:
        return
    if not name or "/" in name or "\0" in name or name in (".", "..") or len(name.encode()) > MAX_FILE_NAME:
        raise ValueError(f"file name {name!r}: a file's basename (no folder), at most {MAX_FILE_NAME} bytes")


class LocalIndex:
    def __init__(self, conn: sqlite3.Connection, *, create: bool = True) -> None:
        """Args: create: create (or upgrade) the tables; False for a read-only connection
        (an older database is then read as it is: file names read as None)."""
        self.conn = conn
        self._cols = _COLS
        if create:
            conn.executescript(_SCHEMA)
        columns = {str(r[1]) for r in conn.execute("PRAGMA table_info(assets)")}
        for name, kind in (("pdq", "BLOB"),  # a database from before the PDQ went on chain
                           ("file_name", "TEXT")):  # ... or from before file names were kept
            if name in columns:
                continue
            if create:
                conn.execute(f"ALTER TABLE assets ADD COLUMN {name} {kind}")
            else:
                self._cols = self._cols.replace(f", {name}", f", NULL AS {name}")

    def add(self, asset_id: bytes, content_hash: bytes, file_hash: bytes, manifest_hash: bytes,
            batch_root: bytes | None = None, siblings: Sequence[bytes] | None = None, *,
            pdq: bytes | None = None, file_name: str | None = None) -> None:
        """Insert one asset (idempotent on asset id) with the PDQ it is anchored with and
        the basename of the protected file written for it. Call inside the outbox transaction.

        Raises:
            ValueError: ``file_name`` is empty, holds a folder, or is longer than MAX_FILE_NAME bytes.
        """
        _check_file_name(file_name)
        proof = None if siblings is None else json.dumps([s.hex() for s in siblings])
        self.conn.execute(
            f"INSERT OR IGNORE INTO assets ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?)",
            (asset_id, content_hash, file_hash, manifest_hash, batch_root, proof, datetime.now(UTC).isoformat(), pdq,
             file_name),
        )

    @staticmethod
    def _row(row: Sequence[Any]) -> IndexedAsset:
        siblings = None if row[5] is None else tuple(bytes.fromhex(s) for s in json.loads(str(row[5])))
        return IndexedAsset(bytes(row[0]), bytes(row[1]), bytes(row[2]), bytes(row[3]),
                            None if row[4] is None else bytes(row[4]), siblings, str(row[6]),
                            None if row[7] is None else bytes(row[7]), None if row[8] is None else str(row[8]))

    def get(self, asset_id: bytes) -> IndexedAsset | None:
        row = self.conn.execute(f"SELECT {self._cols} FROM assets WHERE asset_id = ?", (asset_id,)).fetchone()
        return None if row is None else self._row(row)

    def members(self, root: bytes) -> list[IndexedAsset]:
        """The members of batch ``root`` in the order they were added (the order of its leaves)."""
        return [self._row(r) for r in
                self.conn.execute(f"SELECT {self._cols} FROM assets WHERE batch_root = ? ORDER BY rowid", (root,))]

    def all(self) -> list[IndexedAsset]:
        return [self._row(r) for r in self.conn.execute(f"SELECT {self._cols} FROM assets ORDER BY created_at")]

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
