"""The PDQ fingerprint on chain: committed in records and batch leaves, carried in the
events, found by Hamming distance from the events alone (eth-tester)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from shield.config import Settings
from shield.ledger import AnchorRequest, AnchorStatus, Ledger, open_ledger
from shield.ledger.errors import ChainUnavailableError
from shield.ledger.merkle import MEMBER_BYTES, commitment
from shield.ledger.types import LedgerRecord


def _pdq(seed: int) -> bytes:
    return (seed * 0x9E3779B97F4A7C15F39CC0605CEDC8341082276BF3A27251F86C6A11D0C18E95 % (1 << 256)).to_bytes(32, "big")


def _flip(pdq: bytes, bits: int) -> bytes:
    """``pdq`` with its first ``bits`` bits inverted (Hamming distance ``bits``)."""
    value = int.from_bytes(pdq, "big") ^ (((1 << bits) - 1) << (256 - bits))
    return value.to_bytes(32, "big")


def _req(pdq: bytes | None) -> AnchorRequest:
    return AnchorRequest(os.urandom(16), os.urandom(32), os.urandom(32), os.urandom(32), pdq)


@pytest.fixture()
def stranger(ledger: Ledger, w3: Web3, settings: Settings, tmp_path: Path) -> Iterator[Ledger]:
    """A read-only verifier with an empty home: no local index, only the chain."""
    cfg = dataclasses.replace(settings, home=tmp_path / "stranger")
    lg = open_ledger(cfg.with_chain(chain_id=None, registry=ledger.registry_address), None, w3=w3)
    yield lg
    lg.close()


def test_request_pdq_is_checked_and_zero_means_none() -> None:
    assert _req(bytes(32)).pdq is None
    assert _req(None).chain_fields[4] == bytes(32)
    with pytest.raises(TypeError):
        _req(b"\x01" * 31)


def test_find_by_fingerprint_single_and_batch_without_local_index(ledger: Ledger, stranger: Ledger) -> None:
    single, near, none = _req(_pdq(1)), _req(_flip(_pdq(2), 20)), _req(None)
    for r in (single, near, none):
        assert ledger.anchor(r).status is AnchorStatus.ANCHORED
    members = [_req(_pdq(10 + i)) for i in range(4)] + [_req(None)]
    root = ledger.enqueue_batch(members)
    ledger.drain()
    me = ledger.account.address  # type: ignore[union-attr]
    assert stranger.deployment_block == stranger.read_deployment_block() == ledger.deployment_block
    [hit] = stranger.find_by_fingerprint(_flip(_pdq(1), 3))
    assert hit.distance == 3 and hit.record.asset_id == single.asset_id and hit.record.publisher == me
    assert hit.record.pdq == single.pdq and hit.record.batch_root is None and not hit.record.revoked
    assert stranger.check(hit.record, single)  # a record from the lookup checks like any other
    [hit] = stranger.find_by_fingerprint(_pdq(12), max_distance=0)
    assert hit.record.asset_id == members[2].asset_id and hit.record.batch_root == root and hit.distance == 0
    assert hit.record.pdq == members[2].pdq and hit.record.commitment == b""
    # Distance order and the threshold: the 20-bit neighbour is found at 20, not at 19.
    assert [h.distance for h in stranger.find_by_fingerprint(_pdq(2), max_distance=20)] == [20]
    assert stranger.find_by_fingerprint(_pdq(2), max_distance=19) == []
    hits = stranger.find_by_fingerprint(_pdq(1), max_distance=256)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits) and hits[0].distance == 0
    ids = {h.record.asset_id for h in hits}
    assert none.asset_id not in ids and members[4].asset_id not in ids  # no fingerprint: never a match
    assert len(ids) == 6
    with pytest.raises(ValueError):
        stranger.find_by_fingerprint(b"\x00" * 31)
    with pytest.raises(ValueError):
        stranger.find_by_fingerprint(_pdq(1), max_distance=257)


def test_revoked_records_are_found_as_revoked(ledger: Ledger, stranger: Ledger) -> None:
    req = _req(_pdq(7))
    ledger.anchor(req)
    ledger.revoke(req.asset_id, "not our photo")
    [hit] = stranger.find_by_fingerprint(_pdq(7), max_distance=0)
    assert hit.record.revoked and hit.record.revocation_reason == "not our photo"
    members = [_req(_pdq(70 + i)) for i in range(2)]
    root = ledger.enqueue_batch(members)
    ledger.drain()
    ledger.revoke(root, "batch withdrawn")
    [hit] = stranger.find_by_fingerprint(_pdq(71), max_distance=0)
    assert hit.record.batch_root == root and hit.record.revoked and hit.record.revocation_reason == "batch withdrawn"


def _tamper(lg: Ledger, monkeypatch: pytest.MonkeyPatch, event: str, change: Any) -> None:
    """Make the node lie: every ``event`` log's data goes through ``change``."""
    client = lg._online()
    original = client.logs

    def lying(name: str, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for entry in original(name, *args, **kwargs):
            yield {**entry, "data": change(bytes(entry["data"]))} if name == event else entry

    monkeypatch.setattr(client, "logs", lying)


def test_a_tampered_pdq_in_an_event_does_not_match_storage(ledger: Ledger, stranger: Ledger,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    req = _req(_pdq(3))
    ledger.anchor(req)
    members = [_req(_pdq(30 + i)) for i in range(3)]
    ledger.enqueue_batch(members)
    ledger.drain()
    forged = _pdq(99)
    # The node swaps the PDQ in the Anchored event for another picture's.
    _tamper(stranger, monkeypatch, "Anchored", lambda d: d[:96] + forged)
    assert stranger.find_by_fingerprint(forged, max_distance=0) == []
    record = stranger.lookup(req.asset_id, publisher=ledger.account.address)  # type: ignore[union-attr]
    assert record is not None and record.pdq is None and record.content_hash is None  # event ignored
    assert record.commitment == commitment(req.content_hash, req.file_hash, req.manifest_hash, req.pdq)
    # The node swaps one member's PDQ in the BatchAnchored member list.
    monkeypatch.undo()

    def swap_member(data: bytes) -> bytes:
        return data[:64 + 16] + forged + data[64 + MEMBER_BYTES:]

    _tamper(stranger, monkeypatch, "BatchAnchored", swap_member)
    assert stranger.find_by_fingerprint(forged, max_distance=0) == []
    assert stranger.lookup(members[0].asset_id, publisher=ledger.account.address) is None  # type: ignore[union-attr]


def test_commitment_covers_the_pdq(ledger: Ledger, stranger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    req = _req(_pdq(4))
    ledger.anchor(req)
    me = ledger.account.address  # type: ignore[union-attr]
    record = stranger.lookup(req.asset_id, publisher=me)
    assert record is not None and record.pdq == req.pdq and stranger.check(record, req)
    # The record's PDQ (from its verified event) is the one checked, whatever the verifier computed.
    assert stranger.check(record, dataclasses.replace(req, pdq=_pdq(5)))
    # A storage commitment without the PDQ (or with another) is not this record's.
    assert record.commitment != commitment(req.content_hash, req.file_hash, req.manifest_hash, None)
    other = LedgerRecord(**{**record.__dict__, "pdq": _pdq(5)})
    assert not stranger.check(other, req)
    # Pruned log: no event, so the verifier's own PDQ of the pixels is what is tried.
    client = stranger._online()

    def pruned(*args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        raise ChainUnavailableError("the node pruned its logs")
        yield {}

    monkeypatch.setattr(client, "logs", pruned)
    bare = stranger.lookup(req.asset_id, publisher=me)
    assert bare is not None and bare.pdq is None and bare.content_hash is None
    assert stranger.check(bare, req)
    assert not stranger.check(bare, dataclasses.replace(req, pdq=_pdq(5)))
    assert not stranger.check(bare, dataclasses.replace(req, pdq=None))


def test_queued_anchor_keeps_its_pdq(ledger: Ledger, w3: Web3, settings: Settings) -> None:
    """The outbox persists the PDQ: enqueued by one process, sent by the next."""
    single, members = _req(_pdq(6)), [_req(_pdq(60 + i)) for i in range(3)]
    ledger.enqueue(single)
    root = ledger.enqueue_batch(members)
    account = ledger.account
    ledger.close()
    reopened = open_ledger(settings.with_chain(chain_id=None, registry=ledger.registry_address), account, w3=w3)
    try:
        assert {o.status for o in reopened.drain()} == {AnchorStatus.ANCHORED}
        record = reopened.lookup(single.asset_id)
        assert record is not None and record.pdq == single.pdq and reopened.check(record, single)
        proof = reopened.proof_for(members[1].asset_id)
        assert proof is not None and proof.pdq == members[1].pdq and proof.root == root
        [hit] = reopened.find_by_fingerprint(_pdq(61), max_distance=0)
        assert hit.record.asset_id == members[1].asset_id
    finally:
        reopened.close()


def test_another_publishers_batch_is_found_by_asset_id(ledger: Ledger, other_ledger: Ledger,
                                                       stranger: Ledger) -> None:
    members = [_req(_pdq(80 + i)) for i in range(2)]
    other_ledger.enqueue_batch(members)
    other_ledger.drain()
    them = other_ledger.account.address  # type: ignore[union-attr]
    assert stranger.publishers_of(members[1].asset_id) == [them]
    record = stranger.lookup(members[1].asset_id, publisher=them)
    assert record is not None and record.pdq == members[1].pdq
    assert stranger.lookup(members[1].asset_id, publisher=ledger.account.address) is None  # type: ignore[union-attr]
