"""Audit flags and the verifier's path from a proof sidecar, on eth-tester."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from web3 import Web3

from shield.config import Settings
from shield.ledger import (
    AnchorRequest,
    Ledger,
    audit,
    open_ledger,
    read_proof_sidecar,
    sidecar_path,
    write_proof_sidecar,
)


def _req(content: bytes | None = None) -> AnchorRequest:
    return AnchorRequest(os.urandom(16), content or os.urandom(32), os.urandom(32), os.urandom(32), os.urandom(32))


def test_audit_flags(ledger: Ledger, other_ledger: Ledger, settings: Settings) -> None:
    plain, revoked, copy_src = _req(), _req(), _req()
    for r in (plain, revoked, copy_src):
        ledger.anchor(r)
    ledger.revoke(revoked.asset_id, "wrong photo")
    copied = _req(copy_src.content_hash)  # same pixels, new asset id, another publisher
    other_ledger.anchor(copied)
    squatted = _req()  # the other publisher anchors our asset id first
    other_ledger.anchor(squatted)
    ledger.anchor(squatted)
    members = [_req() for _ in range(3)]
    ledger.enqueue_batch(members)
    twice = members[0]
    ledger.anchor(twice)  # the same asset id as a single record too
    ledger.drain()
    ghost = _req()  # locally "anchored" but never on chain (e.g. chain state lost)
    ledger.enqueue(ghost)
    ledger.db.execute("UPDATE outbox SET state='anchored' WHERE key=?", (ghost.asset_id,))
    queued = _req()
    client, ledger.client = ledger.client, None
    ledger.enqueue(queued)
    ledger.client = client

    report = audit(settings, ledger)
    by = {(e.kind, e.asset_id): e for e in report.entries}
    assert by[("record", plain.asset_id)].flags == ()
    rev = by[("record", revoked.asset_id)]
    assert rev.flags == ("revoked",) and rev.revocation_reason == "wrong photo"
    assert "duplicate" in by[("record", copy_src.asset_id)].flags
    assert set(by[("record", copied.asset_id)].flags) == {"duplicate"}
    assert [e.flags for e in report.entries if e.asset_id == squatted.asset_id] == [("duplicate",), ("duplicate",)]
    assert "duplicate" in by[("record", twice.asset_id)].flags
    assert "duplicate" in by[("batch-member", twice.asset_id)].flags
    assert by[("batch-member", members[1].asset_id)].flags == ()
    assert by[("local", ghost.asset_id)].flags == ("missing-on-chain",)
    assert by[("local", queued.asset_id)].flags == ("queued",)
    assert not report.clean

    pubs = {e.publisher: e for e in report.entries if e.kind == "publisher"}
    assert all(e.flags == () for e in pubs.values()) and len(pubs) == 2
    mine = audit(settings, ledger, publisher=other_ledger.account.address)  # type: ignore[union-attr]
    assert {e.asset_id for e in mine.entries} == {copied.asset_id, squatted.asset_id, None}
    future = audit(settings, ledger, since=datetime.now(UTC) + timedelta(days=1))
    assert all(e.timestamp is None for e in future.entries)


def test_verifier_uses_sidecar_without_local_index(ledger: Ledger, w3: Web3, settings: Settings,
                                                   tmp_path: Path) -> None:
    reqs = [_req() for _ in range(5)]
    ledger.enqueue_batch(reqs)
    ledger.drain()
    photo = tmp_path / "photo.shield.png"
    proof = ledger.proof_for(reqs[3].asset_id)
    assert proof is not None and proof.chain_id == ledger.chain_id and proof.contract == ledger.registry_address
    write_proof_sidecar(sidecar_path(photo), proof)
    # Someone else, read-only, with an empty home: only the sidecar and the chain.
    stranger = dataclasses.replace(settings, home=tmp_path / "stranger")
    verifier = open_ledger(stranger.with_chain(chain_id=None, registry=ledger.registry_address), None, w3=w3)
    loaded = read_proof_sidecar(sidecar_path(photo))
    me = ledger.account.address  # type: ignore[union-attr]
    # Without the proof the batch is found through its event's member list: when, by whom,
    # the PDQ; not the hashes (the leaf is unknown), so nothing can be checked against them.
    bare = verifier.lookup(reqs[3].asset_id, publisher=me)
    assert bare is not None and bare.batch_root == proof.root and bare.commitment == b""
    assert bare.pdq == reqs[3].pdq and bare.content_hash is None and bare.tx_hash == proof.tx_hash
    assert not verifier.check(bare, reqs[3], None)
    assert verifier.publishers_of(reqs[3].asset_id) == [me]
    record = verifier.lookup(reqs[3].asset_id, loaded, publisher=me)
    assert record is not None and record.batch_root == proof.root and record.tx_hash == proof.tx_hash
    assert verifier.check(record, reqs[3], loaded)
    assert not verifier.check(record, reqs[2], loaded)
    verifier.close()


def test_stranger_sees_block_and_tx_of_a_single_record(ledger: Ledger, w3: Web3, settings: Settings,
                                                       tmp_path: Path) -> None:
    req = _req()
    out = ledger.anchor(req)
    stranger = dataclasses.replace(settings, home=tmp_path / "stranger")
    verifier = open_ledger(stranger.with_chain(chain_id=None, registry=ledger.registry_address), None, w3=w3)
    record = verifier.lookup(req.asset_id, publisher=ledger.account.address)  # type: ignore[union-attr]
    assert record is not None and (record.tx_hash, record.block) == (out.tx_hash, out.block)
    assert verifier.check(record, req, None)
    verifier.close()


def test_audit_flags_claimed_keys_and_unproven_publishers(ledger: Ledger, other_ledger: Ledger,
                                                          settings: Settings) -> None:
    """A squatter registers our certificate fingerprint and watermark key with our proof."""
    ours = ledger.claim(ledger.account.address)  # type: ignore[union-attr]
    assert ours is not None
    i = ours.info
    other_ledger._online().transact("registerPublisher", i.cert_fingerprint, i.watermark_key, i.proof)
    req = _req()
    other_ledger.anchor(req)
    report = audit(settings, ledger)
    pubs = {e.publisher: e for e in report.entries if e.kind == "publisher"}
    squatter = other_ledger.account.address  # type: ignore[union-attr]
    assert set(pubs[squatter].flags) == {"unproven-publisher", "shared-key"}
    assert pubs[i.address].flags == ("shared-key",)
    assert "also claimed by " + squatter in pubs[i.address].detail
    [rec] = [e for e in report.entries if e.asset_id == req.asset_id]
    assert "unproven-publisher" in rec.flags and not report.clean


def test_audit_lists_every_batch_member_and_cross_checks_the_pdq(ledger: Ledger, other_ledger: Ledger,
                                                                settings: Settings) -> None:
    single, members, theirs = _req(), [_req() for _ in range(3)], [_req() for _ in range(2)]
    ledger.anchor(single)
    ledger.enqueue_batch(members)
    ledger.drain()
    other_ledger.enqueue_batch(theirs)
    other_ledger.drain()
    clean = {e.asset_id: e for e in audit(settings, ledger).entries if e.asset_id is not None}
    # Another publisher's members are listed too, from its event (asset id and PDQ).
    for r in (*members, *theirs):
        assert clean[r.asset_id].kind == "batch-member" and clean[r.asset_id].pdq == r.pdq
        assert "storage-mismatch" not in clean[r.asset_id].flags
    assert clean[single.asset_id].pdq == single.pdq and "storage-mismatch" not in clean[single.asset_id].flags
    # Our local index disagrees with what was anchored: flagged, for a record and a member.
    ledger.db.execute("UPDATE assets SET pdq = ? WHERE asset_id IN (?, ?)",
                      (os.urandom(32), single.asset_id, members[1].asset_id))
    flagged = {e.asset_id: e for e in audit(settings, ledger).entries if e.asset_id is not None}
    assert "storage-mismatch" in flagged[single.asset_id].flags
    assert "storage-mismatch" in flagged[members[1].asset_id].flags
    assert "storage-mismatch" not in flagged[members[0].asset_id].flags


def test_audit_names_the_protected_file_of_our_entries(ledger: Ledger, other_ledger: Ledger, w3: Web3,
                                                       settings: Settings) -> None:
    """The local index keeps each output file's name; audit shows it for our records, batch
    members and queued entries, never for another publisher's entry under the same asset id."""
    from shield.commands.audit import _table

    single, members, squatted, queued, bare = _req(), [_req() for _ in range(2)], _req(), _req(), _req()
    other_ledger.anchor(dataclasses.replace(squatted, content_hash=os.urandom(32)))  # their hashes, our asset id
    ledger.enqueue(single, file_name="beach.shield.png")
    ledger.enqueue(squatted, file_name="squatted.shield.png")
    ledger.enqueue_batch(members, file_names=["dune-1.shield.webp", None])
    ledger.enqueue(bare)  # anchored before file names were kept
    ledger.drain()
    client, ledger.client = ledger.client, None
    ledger.enqueue(queued, file_name="later.shield.png")
    ledger.client = client

    def names(lg: Ledger) -> dict[tuple[str, bytes | None, str | None], str | None]:
        return {(e.kind, e.asset_id, e.publisher): e.file_name for e in audit(settings, lg).entries}

    me, them = ledger.account.address, other_ledger.account.address  # type: ignore[union-attr]
    expected = {
        ("record", single.asset_id, me): "beach.shield.png",
        ("record", squatted.asset_id, me): "squatted.shield.png",
        ("record", squatted.asset_id, them): None,
        ("batch-member", members[0].asset_id, me): "dune-1.shield.webp",
        ("batch-member", members[1].asset_id, me): None,
        ("record", bare.asset_id, me): None,
        ("local", queued.asset_id, None): "later.shield.png",
    }
    got = names(ledger)
    assert {k: got[k] for k in expected} == expected
    # `shield audit` opens the ledger without an account: same names (the entry matching the
    # index's hashes or batch is ours), still none for the other publisher's.
    reader = open_ledger(settings.with_chain(chain_id=None, registry=ledger.registry_address), None, w3=w3)
    try:
        got = names(reader)
        assert {k: got[k] for k in expected} == expected
        table = _table(audit(settings, reader).entries)
    finally:
        reader.close()
    assert table[0].split()[:3] == ["kind", "id", "/"] and "file" in table[0].split()
    [line] = [x for x in table if x.startswith("record") and single.asset_id.hex() in x]
    assert "beach.shield.png" in line
    [line] = [x for x in table if them in x and x.startswith("record")]
    assert " - " in line and ".shield." not in line
    with pytest.raises(ValueError, match="one file name"):
        ledger.enqueue_batch([_req()], file_names=["a.png", "b.png"])
