"""Contract semantics and gas on an in-process chain (eth-tester, py-evm)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from web3 import Web3

from shield.ledger import AnchorRequest, AnchorStatus, Ledger, TransactionError, build_tree, leaf_hash
from shield.ledger.errors import LedgerError, NotFoundError
from shield.ledger.merkle import commitment
from shield.ledger.proof import check_proof, watermark_fingerprint
from shield.watermark.record import key_fingerprint

from tests.ledger.conftest import make_keys


SINGLE_GAS_MAX = 70_000
#: A batch carries each photo's asset id and PDQ fingerprint (48 bytes) in calldata and in
#: its event, so a copy can be found by its fingerprint without the proof sidecar; since
#: EIP-7623 (Prague) calldata costs at least 40 gas per non-zero byte, ~1.9k gas per photo
#: before the fixed ~49k of the batch. Storage stays one slot per batch.
BATCH_GAS_PER_IMAGE_MAX = 2_500


def _req(rng_bytes: bytes | None = None) -> AnchorRequest:
    return AnchorRequest(os.urandom(16), os.urandom(32), os.urandom(32), os.urandom(32), os.urandom(32))


def _gas(w3: Web3, tx: str | None) -> int:
    assert tx is not None
    return int(w3.eth.get_transaction_receipt(tx)["gasUsed"])  # type: ignore[arg-type]


def test_anchor_lookup_check(ledger: Ledger) -> None:
    req = _req()
    out = ledger.anchor(req)
    assert out.status is AnchorStatus.ANCHORED and out.tx_hash and out.block
    rec = ledger.lookup(req.asset_id)
    assert rec is not None and rec.publisher == ledger.account.address  # type: ignore[union-attr]
    assert rec.commitment == commitment(req.content_hash, req.file_hash, req.manifest_hash, req.pdq)
    assert rec.pdq == req.pdq and rec.content_hash == req.content_hash
    assert ledger.check(rec, req, None)
    tampered = AnchorRequest(req.asset_id, req.content_hash, os.urandom(32), req.manifest_hash)
    assert not ledger.check(rec, tampered, None)
    assert ledger.lookup(os.urandom(16)) is None


def test_storage_words_match_views(ledger: Ledger) -> None:
    req = _req()
    ledger.anchor(req)
    client = ledger.client
    assert client is not None
    me = client.sender
    view = client.contract.functions.recordOf(me, req.asset_id).call()
    raw = client.record(me, req.asset_id)
    assert (raw.commitment, raw.timestamp, raw.revoked) == (bytes(view[0]), view[1], view[2])
    assert client.publisher_address(raw.publisher_id) == me
    assert client.contract.functions.commitmentOf(*req.chain_fields[1:]).call() == raw.commitment


def test_duplicate_reverts_and_is_success_for_owner(ledger: Ledger, w3: Web3, other_ledger: Ledger) -> None:
    req = _req()
    ledger.anchor(req)
    client = ledger.client
    assert client is not None
    with pytest.raises(TransactionError) as err:
        client.prepare("anchor", *req.chain_fields)
    assert err.value.revert.name == "AlreadyAnchored"  # type: ignore[attr-defined]
    # The outbox forgets the tx (as after a crash before recording it): re-draining must settle, not resend.
    ledger.db.execute("UPDATE outbox SET state='pending', tx_hash=NULL, raw_tx=NULL")
    nonce = w3.eth.get_transaction_count(ledger.account.address)  # type: ignore[union-attr]
    [out] = ledger.drain()
    assert out.status is AnchorStatus.ANCHORED
    assert w3.eth.get_transaction_count(ledger.account.address) == nonce  # type: ignore[union-attr]
    # Another publisher anchoring the same id gets its own slot: ours is untouched.
    squat = AnchorRequest(req.asset_id, os.urandom(32), os.urandom(32), os.urandom(32), os.urandom(32))
    assert other_ledger.anchor(squat).status is AnchorStatus.ANCHORED
    mine = ledger.lookup(req.asset_id)
    assert mine is not None and ledger.check(mine, req, None)
    theirs = ledger.lookup(req.asset_id, publisher=other_ledger.account.address)  # type: ignore[union-attr]
    assert theirs is not None and not ledger.check(theirs, req, None)


def test_revocation_only_by_publisher(ledger: Ledger, other_ledger: Ledger) -> None:
    req = _req()
    ledger.anchor(req)
    other = other_ledger
    with pytest.raises(NotFoundError):  # another publisher's slot is out of reach
        other.revoke(req.asset_id, "not mine")
    assert not ledger.lookup(req.asset_id).revoked  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        ledger.revoke(os.urandom(16), "nothing")
    ledger.revoke(req.asset_id, "key leaked")
    rec = ledger.lookup(req.asset_id)
    assert rec is not None and rec.revoked and rec.revocation_reason == "key leaked"
    with pytest.raises(TransactionError):
        ledger.revoke(req.asset_id, "again")
    with pytest.raises(TransactionError):
        ledger.revoke(_anchored(ledger), "x" * 300)


def _anchored(ledger: Ledger) -> bytes:
    req = _req()
    ledger.anchor(req)
    return req.asset_id


def test_batch_inclusion_and_revocation(ledger: Ledger, other_ledger: Ledger) -> None:
    reqs = [_req() for _ in range(7)]
    root = ledger.enqueue_batch(reqs)
    outs = ledger.drain()
    assert {o.asset_id for o in outs} == {r.asset_id for r in reqs}
    assert all(o.status is AnchorStatus.ANCHORED and o.batch_root == root for o in outs)
    client = ledger.client
    assert client is not None
    for req in reqs:
        proof = ledger.proof_for(req.asset_id)
        assert proof is not None and proof.tx_hash == outs[0].tx_hash
        rec = ledger.lookup(req.asset_id)
        assert rec is not None and rec.batch_root == root and ledger.check(rec, req, proof)
        assert proof.pdq == req.pdq and rec.pdq == req.pdq
        assert client.is_batch_member(client.sender, root, req.chain_fields, proof.siblings)
        assert client.contract.functions.leafHash(*req.chain_fields).call() == leaf_hash(*req.fields, req.pdq)
    proof = ledger.proof_for(reqs[0].asset_id)
    assert proof is not None
    wrong = AnchorRequest(reqs[0].asset_id, reqs[1].content_hash, reqs[0].file_hash, reqs[0].manifest_hash,
                          reqs[0].pdq)
    assert not ledger.check(ledger.lookup(reqs[0].asset_id), wrong, proof)  # type: ignore[arg-type]
    assert not client.is_batch_member(client.sender, root, wrong.chain_fields, proof.siblings)
    other_pdq = AnchorRequest(*reqs[0].fields, reqs[1].pdq)
    assert not client.is_batch_member(client.sender, root, other_pdq.chain_fields, proof.siblings)
    # An inner node handed in as a leaf does not verify through isBatchMember (fields are rehashed).
    other = other_ledger
    with pytest.raises(NotFoundError):
        other.revoke(root, "not mine")
    # The same root anchored by someone else is their batch, not ours.
    other.enqueue_batch(reqs)
    assert all(o.status is AnchorStatus.ANCHORED for o in other.drain())
    ledger.revoke(root, "batch withdrawn")
    assert not client.is_batch_member(client.sender, root, reqs[0].chain_fields, proof.siblings)
    rec = ledger.lookup(reqs[0].asset_id)
    assert rec is not None and rec.revoked and rec.revocation_reason == "batch withdrawn"


def test_contract_and_python_merkle_agree(ledger: Ledger) -> None:
    client = ledger.client
    assert client is not None
    leaves = [leaf_hash(*r.fields, r.pdq) for r in (_req() for _ in range(6))]
    root, proofs = build_tree(leaves)
    fn = client.contract.functions
    assert all(fn.verifyProof(root, leaf, list(p)).call() for leaf, p in zip(leaves, proofs, strict=True))
    assert not fn.verifyProof(root, leaves[0], list(proofs[1])).call()
    assert fn.nodeHash(leaves[0], leaves[1]).call() == fn.nodeHash(leaves[1], leaves[0]).call()


def test_publisher_registry(ledger: Ledger, other_ledger: Ledger, w3: Web3) -> None:
    keys = ledger.publisher_keys
    assert keys is not None
    me = ledger.account.address  # type: ignore[union-attr]
    claim = ledger.claim(me)
    assert claim is not None and claim.check.valid and claim.check.subject == "alice"
    assert claim.info.cert_fingerprint == keys.cert_fingerprint and claim.info.watermark_key == keys.watermark_public_key
    assert ledger.register_publisher(keys.cert_fingerprint, keys.watermark_public_key) is None  # idempotent
    fp = watermark_fingerprint(keys.watermark_public_key)
    assert fp == key_fingerprint(keys.watermark_public_key)  # what the watermark carries
    assert ledger.client.contract.functions.watermarkFingerprint(keys.watermark_public_key).call() == fp  # type: ignore[union-attr]
    assert [c.info.address for c in ledger.claims(fp)[0]] == [me]
    rotated = make_keys("alice")
    ledger.publisher_keys = rotated
    assert ledger.register_publisher(rotated.cert_fingerprint, rotated.watermark_public_key) is not None  # rotation
    assert ledger.claim(me).check.valid  # type: ignore[union-attr]
    with pytest.raises(TransactionError):
        ledger.client.prepare("registerPublisher", bytes(32), b"\x02" * 32, bytes(300))  # type: ignore[union-attr]
    with pytest.raises(TransactionError):  # no proof at all
        ledger.client.prepare("registerPublisher", b"\x01" * 32, b"\x02" * 32, b"")  # type: ignore[union-attr]
    with pytest.raises(LedgerError):  # keys at hand are not the ones registered
        ledger.register_publisher(keys.cert_fingerprint, keys.watermark_public_key)


def test_squatter_cannot_prove_or_block_or_revoke(ledger: Ledger, other_ledger: Ledger) -> None:
    """A second funded account copies the victim's public keys and even its proof."""
    victim = ledger.claim(ledger.account.address)  # type: ignore[union-attr]
    assert victim is not None and victim.check.valid
    info = victim.info
    squatter = other_ledger
    squatter._online().transact("registerPublisher", info.cert_fingerprint, info.watermark_key, info.proof)
    stolen = squatter.claim(squatter.account.address)  # type: ignore[union-attr]
    assert stolen is not None and not stolen.check.valid and "did not sign" in stolen.check.reason
    forged = bytes(3) + bytes(300)
    squatter._online().transact("registerPublisher", info.cert_fingerprint, info.watermark_key, forged)
    assert not squatter.claim(squatter.account.address).check.valid  # type: ignore[union-attr]
    claims, truncated = ledger.claims(watermark_fingerprint(info.watermark_key))
    assert not truncated and {c.info.address: c.check.valid for c in claims} == {
        info.address: True, squatter.account.address: False}  # type: ignore[union-attr]
    # The squatter anchors the victim's next asset id first; the victim still anchors it.
    req = _req()
    assert squatter.anchor(req).status is AnchorStatus.ANCHORED
    assert ledger.anchor(req).status is AnchorStatus.ANCHORED
    squatter.revoke(req.asset_id, "hostile")
    rec = ledger.lookup(req.asset_id)
    assert rec is not None and not rec.revoked and ledger.check(rec, req, None)


def test_proof_is_bound_to_chain_registry_and_address(ledger: Ledger) -> None:
    claim = ledger.claim(ledger.account.address)  # type: ignore[union-attr]
    assert claim is not None
    i = claim.info
    args = (i.cert_fingerprint, i.watermark_key)
    assert check_proof(i.proof, ledger.chain_id or 0, ledger.registry_address or "", i.address, *args).valid
    assert not check_proof(i.proof, (ledger.chain_id or 0) + 1, ledger.registry_address or "", i.address, *args).valid
    assert not check_proof(i.proof, ledger.chain_id or 0, "0x" + "11" * 20, i.address, *args).valid
    assert not check_proof(i.proof, ledger.chain_id or 0, ledger.registry_address or "", "0x" + "22" * 20, *args).valid
    for cut in (0, 1, 5, len(i.proof) - 1):
        assert not check_proof(i.proof[:cut], ledger.chain_id or 0, ledger.registry_address or "", i.address, *args).valid


def test_unregistered_address_cannot_anchor(ledger: Ledger) -> None:
    client = ledger.client
    assert client is not None
    from shield.ledger.client import RegistryClient

    from tests.ledger.conftest import make_account

    stranger = RegistryClient(client.w3, client.address, ledger.artifact, make_account(client.w3, 0x777))
    with pytest.raises(TransactionError) as err:
        stranger.prepare("anchor", *_req().chain_fields)
    assert err.value.revert.name == "NotRegistered"  # type: ignore[attr-defined]


def test_gas_targets(ledger: Ledger, w3: Web3) -> None:
    singles = [_gas(w3, ledger.anchor(_req()).tx_hash) for _ in range(3)]
    assert max(singles) <= SINGLE_GAS_MAX, singles
    ledger.enqueue_batch([_req() for _ in range(100)])
    [first, *_] = ledger.drain()
    assert _gas(w3, first.tx_hash) / 100 <= BATCH_GAS_PER_IMAGE_MAX


def test_log_window_shrinks_when_the_node_refuses(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = {_anchored(ledger) for _ in range(5)}
    client = ledger.client
    assert client is not None
    original = client._get_logs
    seen: list[int] = []

    def picky(params: dict[str, Any]) -> dict[str, Any]:
        span = int(params["toBlock"], 16) - int(params["fromBlock"], 16) + 1
        seen.append(span)
        if span > 3:
            return {"error": {"code": -32005, "message": "query exceeds max block range 3"}}
        return original(params)

    monkeypatch.setattr(client, "_get_logs", picky)
    got = {bytes(e["topics"][1])[:16] for e in client.logs("Anchored", 0)}
    assert got == ids
    assert seen[0] > 3 and max(seen[-3:]) <= 3
