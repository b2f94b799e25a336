"""The local index keeps the PDQ each asset is anchored with; older databases are upgraded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from shield.ledger.index import LocalIndex
from shield.ledger.outbox import open_db
from shield.ledger.reader import _open_readonly

_OLD_ASSETS = """
CREATE TABLE assets (
    asset_id BLOB PRIMARY KEY, content_hash BLOB NOT NULL, file_hash BLOB NOT NULL, manifest_hash BLOB NOT NULL,
    batch_root BLOB, proof TEXT, created_at TEXT NOT NULL
);
CREATE TABLE outbox (id INTEGER PRIMARY KEY, kind TEXT, key BLOB, state TEXT);
"""


def test_pdq_roundtrip_and_member_order(tmp_path: Path) -> None:
    index = LocalIndex(open_db(tmp_path / "ledger.sqlite"))
    root = b"\x09" * 32
    for i in (3, 1, 2):  # insertion order is the order of the batch's leaves and member list
        index.add(bytes([i]) * 16, b"c" * 32, b"f" * 32, b"m" * 32, root, [b"s" * 32], pdq=bytes([i]) * 32)
    index.add(b"\x07" * 16, b"c" * 32, b"f" * 32, b"m" * 32)
    assert [m.asset_id[0] for m in index.members(root)] == [3, 1, 2]
    assert index.get(b"\x01" * 16).pdq == b"\x01" * 32  # type: ignore[union-attr]
    assert index.get(b"\x07" * 16).pdq is None  # type: ignore[union-attr]
    proof = index.proof(index.get(b"\x02" * 16))  # type: ignore[arg-type]
    assert proof is not None and proof.pdq == b"\x02" * 32


def test_database_from_before_the_pdq_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(_OLD_ASSETS)
    conn.execute("INSERT INTO assets VALUES (?,?,?,?,?,?,?)", (b"\x05" * 16, b"c" * 32, b"f" * 32, b"m" * 32,
                                                                None, None, "2026-01-01T00:00:00+00:00"))
    conn.commit()
    conn.close()
    assert _open_readonly(path) is None  # a verifier does not upgrade it, it just has no local proofs
    index = LocalIndex(open_db(path))
    old = index.get(b"\x05" * 16)
    assert old is not None and old.pdq is None and old.content_hash == b"c" * 32
    index.add(b"\x06" * 16, b"c" * 32, b"f" * 32, b"m" * 32, pdq=b"\x06" * 32)
    assert index.get(b"\x06" * 16).pdq == b"\x06" * 32  # type: ignore[union-attr]
    index.conn.close()
    readonly = _open_readonly(path)
    assert readonly is not None
    assert LocalIndex(readonly, create=False).get(b"\x06" * 16).pdq == b"\x06" * 32  # type: ignore[union-attr]
    readonly.close()
