"""Durable outbox of anchoring work (sqlite, WAL, synchronous=FULL).

What a record is anchored with (hashes and PDQ fingerprint) is in the local index's
``assets`` row committed in the same transaction; a batch's members (asset id and PDQ,
sent with its root) are its index rows in insertion order.

Every request is committed here before anything is sent; a signed transaction's hash
and bytes are committed before it is broadcast. After a crash at any point the next
drain finds each item in one of these states and resumes it (see Ledger.drain).

States: pending (not sent) -> sent (tx hash recorded) -> confirming -> anchored;
or rejected (the key belongs to another publisher).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["open_db", "Outbox", "OutboxItem", "OPEN_STATES"]

OPEN_STATES = ("pending", "sent", "confirming")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('record', 'batch')),
    key BLOB NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    tx_hash TEXT,
    raw_tx BLOB,
    nonce INTEGER,
    block INTEGER,
    chain_id INTEGER,
    contract TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox(state);
CREATE TABLE IF NOT EXISTS pending_registration (
    sender TEXT PRIMARY KEY,
    cert_fingerprint BLOB NOT NULL,
    watermark_key BLOB NOT NULL,
    created_at TEXT NOT NULL
);
"""


def open_db(path: Path) -> sqlite3.Connection:
    """Open (creating) the ledger database with crash-safe settings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # fsync the WAL on every commit
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    key: bytes
    payload: dict[str, Any]
    state: str
    tx_hash: str | None
    raw_tx: bytes | None
    nonce: int | None
    block: int | None
    chain_id: int | None
    contract: str | None
    attempts: int
    error: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Outbox:
    def __init__(self, conn: sqlite3.Connection, *, create: bool = True) -> None:
        """Args: create: create the tables; False for a read-only connection."""
        self.conn = conn
        if create:
            conn.executescript(_SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def add(self, kind: str, key: bytes, payload: dict[str, Any]) -> bool:
        """Insert unless the key is already there (idempotent). Call inside transaction()."""
        now = _now()
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO outbox(kind, key, payload, created_at, updated_at) VALUES (?,?,?,?,?)",
            (kind, key, json.dumps(payload), now, now),
        )
        return cur.rowcount == 1

    def set_registration(self, sender: str, cert_fingerprint: bytes, watermark_key: bytes) -> None:
        """Remember that ``sender`` must register these keys before its records are sent."""
        self.conn.execute(
            "INSERT OR REPLACE INTO pending_registration(sender, cert_fingerprint, watermark_key, created_at)"
            " VALUES (?,?,?,?)",
            (sender.lower(), cert_fingerprint, watermark_key, _now()),
        )

    def registration(self, sender: str) -> tuple[bytes, bytes] | None:
        row = self.conn.execute(
            "SELECT cert_fingerprint, watermark_key FROM pending_registration WHERE sender = ?", (sender.lower(),)
        ).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def clear_registration(self, sender: str) -> None:
        self.conn.execute("DELETE FROM pending_registration WHERE sender = ?", (sender.lower(),))

    def _item(self, row: Sequence[Any]) -> OutboxItem:
        return OutboxItem(row[0], row[1], bytes(row[2]), json.loads(row[3]), row[4], row[5],
                          None if row[6] is None else bytes(row[6]), *row[7:])

    _COLS = "id, kind, key, payload, state, tx_hash, raw_tx, nonce, block, chain_id, contract, attempts, error"

    def open_items(self) -> list[OutboxItem]:
        rows = self.conn.execute(
            f"SELECT {self._COLS} FROM outbox WHERE state IN ('pending','sent','confirming') ORDER BY id"
        ).fetchall()
        return [self._item(r) for r in rows]

    def get(self, key: bytes) -> OutboxItem | None:
        row = self.conn.execute(f"SELECT {self._COLS} FROM outbox WHERE key = ?", (key,)).fetchone()
        return None if row is None else self._item(row)

    def all_items(self) -> list[OutboxItem]:
        return [self._item(r) for r in self.conn.execute(f"SELECT {self._COLS} FROM outbox ORDER BY id")]

    def mark_sent(self, item_id: int, tx_hash: str, raw_tx: bytes, nonce: int, chain_id: int, contract: str) -> None:
        """Record a signed transaction; committed (fsync) before the caller broadcasts it."""
        self.conn.execute(
            "UPDATE outbox SET state='sent', tx_hash=?, raw_tx=?, nonce=?, chain_id=?, contract=?,"
            " attempts=attempts+1, updated_at=? WHERE id=?",
            (tx_hash, raw_tx, nonce, chain_id, contract, _now(), item_id),
        )

    def mark(self, item_id: int, state: str, *, block: int | None = None, tx_hash: str | None = None,
             chain_id: int | None = None, contract: str | None = None, error: str | None = None) -> None:
        self.conn.execute(
            "UPDATE outbox SET state=?, block=COALESCE(?, block), tx_hash=COALESCE(?, tx_hash),"
            " chain_id=COALESCE(?, chain_id), contract=COALESCE(?, contract), error=?, updated_at=? WHERE id=?",
            (state, block, tx_hash, chain_id, contract, error, _now(), item_id),
        )
