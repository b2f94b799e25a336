"""The local index keeps the PDQ each asset is anchored with and the name of its protected
file; older databases are upgraded in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

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
    assert old is not None and old.pdq is None and old.content_hash == b"c" * 32 and old.file_name is None
    index.add(b"\x06" * 16, b"c" * 32, b"f" * 32, b"m" * 32, pdq=b"\x06" * 32)
    assert index.get(b"\x06" * 16).pdq == b"\x06" * 32  # type: ignore[union-attr]
    index.conn.close()
    readonly = _open_readonly(path)
    assert readonly is not None
    assert LocalIndex(readonly, create=False).get(b"\x06" * 16).pdq == b"\x06" * 32  # type: ignore[union-attr]
    readonly.close()


_PDQ_ERA_ASSETS = """
CREATE TABLE assets (
    asset_id BLOB PRIMARY KEY, content_hash BLOB NOT NULL, file_hash BLOB NOT NULL, manifest_hash BLOB NOT NULL,
    batch_root BLOB, proof TEXT, created_at TEXT NOT NULL, pdq BLOB
);
CREATE TABLE outbox (id INTEGER PRIMARY KEY, kind TEXT, key BLOB, state TEXT);
"""


def test_file_name_roundtrip_and_checks(tmp_path: Path) -> None:
    index = LocalIndex(open_db(tmp_path / "ledger.sqlite"))
    index.add(b"\x01" * 16, b"c" * 32, b"f" * 32, b"m" * 32, file_name="beach.shield.png")
    index.add(b"\x02" * 16, b"c" * 32, b"f" * 32, b"m" * 32, b"\x09" * 32, [b"s" * 32], file_name="dune.shield.webp")
    index.add(b"\x03" * 16, b"c" * 32, b"f" * 32, b"m" * 32)
    assert index.get(b"\x01" * 16).file_name == "beach.shield.png"  # type: ignore[union-attr]
    assert [m.file_name for m in index.members(b"\x09" * 32)] == ["dune.shield.webp"]
    assert index.get(b"\x03" * 16).file_name is None  # type: ignore[union-attr]
    for bad in ("", "out/beach.shield.png", "..", "a\0b", "x" * 256):
        with pytest.raises(ValueError, match="basename"):
            index.add(b"\x04" * 16, b"c" * 32, b"f" * 32, b"m" * 32, file_name=bad)
    assert index.get(b"\x04" * 16) is None  # nothing written by a refused add


def test_database_from_before_file_names_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(_PDQ_ERA_ASSETS)
    conn.execute("INSERT INTO assets VALUES (?,?,?,?,?,?,?,?)", (b"\x05" * 16, b"c" * 32, b"f" * 32, b"m" * 32,
                                                                 None, None, "2026-01-01T00:00:00+00:00", b"p" * 32))
    conn.commit()
    conn.close()
    # A verifier reads it as it is (read-only: no upgrade), its proofs still usable.
    readonly = _open_readonly(path)
    assert readonly is not None
    old = LocalIndex(readonly, create=False).get(b"\x05" * 16)
    assert old is not None and old.pdq == b"p" * 32 and old.file_name is None
    readonly.close()
    columns = [str(r[1]) for r in sqlite3.connect(path).execute("PRAGMA table_info(assets)")]
    assert "file_name" not in columns
    index = LocalIndex(open_db(path))
    columns = [str(r[1]) for r in index.conn.execute("PRAGMA table_info(assets)")]
    assert columns[-1] == "file_name"
    assert index.get(b"\x05" * 16) == old  # the old row is kept as it was
    index.add(b"\x06" * 16, b"c" * 32, b"f" * 32, b"m" * 32, pdq=b"\x06" * 32, file_name="new.shield.png")
    index.conn.close()
    again = LocalIndex(open_db(path))  # a second open finds the column and changes nothing
    assert again.get(b"\x06" * 16).file_name == "new.shield.png"  # type: ignore[union-attr]
    again.conn.close()
