"""Merkle tree and sidecar format: pure, no chain."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from eth_utils import keccak

from shield.ledger.errors import ProofFormatError
from shield.ledger.merkle import (
    MAX_PROOF_DEPTH,
    MerkleProof,
    build_tree,
    commitment,
    leaf_hash,
    members_digest,
    node_hash,
    pack_members,
    unpack_members,
    proof_to_json,
    read_proof_sidecar,
    verify_proof,
    write_proof_sidecar,
)


def _fields(i: int) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    return i.to_bytes(16, "big"), keccak(b"c%d" % i), keccak(b"f%d" % i), keccak(b"m%d" % i), keccak(b"p%d" % i)


def test_known_vector() -> None:
    a, c, f, m, p = bytes(range(16)), b"\x11" * 32, b"\x22" * 32, b"\x33" * 32, b"\x44" * 32
    assert leaf_hash(a, c, f, m, p) == keccak(b"\x00" + a + c + f + m + p)
    assert leaf_hash(a, c, f, m, None) == keccak(b"\x00" + a + c + f + m + bytes(32))
    assert commitment(c, f, m, p) == keccak(c + f + m + p)[:22]
    assert commitment(c, f, m, None) == keccak(c + f + m + bytes(32))[:22]
    x, y = b"\x01" * 32, b"\x02" * 32
    assert node_hash(y, x) == node_hash(x, y) == keccak(b"\x01" + x + y)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 100])
def test_every_leaf_proves_and_others_do_not(n: int) -> None:
    leaves = [leaf_hash(*_fields(i)) for i in range(n)]
    root, proofs = build_tree(leaves)
    assert all(verify_proof(root, leaf, proof) for leaf, proof in zip(leaves, proofs, strict=True))
    assert max(len(p) for p in proofs) <= max(1, (n - 1).bit_length())
    stranger = leaf_hash(*_fields(n + 1))
    assert not any(verify_proof(root, stranger, p) for p in proofs)
    if n > 1:
        assert not verify_proof(root, leaves[0], proofs[1]) or proofs[0] == proofs[1]


def test_inner_node_cannot_pose_as_leaf() -> None:
    leaves = [leaf_hash(*_fields(i)) for i in range(4)]
    root, proofs = build_tree(leaves)
    inner = node_hash(leaves[0], leaves[1])
    # The inner node verifies as a "leaf" only if someone may hand in a raw hash; a leaf
    # must be rebuilt from fields with the 0x00 prefix, and no fields give the inner node.
    assert verify_proof(root, inner, (proofs[0][1],))
    assert leaf_hash(*_fields(0)) != inner
    assert keccak(b"\x01" + min(leaves[0], leaves[1]) + max(leaves[0], leaves[1])) == inner
    assert keccak(b"\x00" + min(leaves[0], leaves[1]) + max(leaves[0], leaves[1])) != inner


def test_sidecar_roundtrip_and_limits(tmp_path: Path) -> None:
    leaves = [leaf_hash(*_fields(i)) for i in range(3)]
    root, proofs = build_tree(leaves)
    a, c, f, m, p = _fields(1)
    proof = MerkleProof(a, c, f, m, siblings=proofs[1], root=root, pdq=p).anchored_at(31337, "0x" + "ab" * 20,
                                                                                        "0x" + "cd" * 32, 7)
    path = tmp_path / "p.proof.json"
    write_proof_sidecar(path, proof)
    assert read_proof_sidecar(path) == proof
    assert verify_proof(proof.root, proof.leaf, proof.siblings)
    doc = proof_to_json(proof)
    doc["proof"] = ["0x" + "00" * 32] * (MAX_PROOF_DEPTH + 1)
    path.write_text(json.dumps(doc))
    with pytest.raises(ProofFormatError):
        read_proof_sidecar(path)
    path.write_text("{not json")
    with pytest.raises(ProofFormatError):
        read_proof_sidecar(path)
    path.write_bytes(os.urandom(70_000))
    with pytest.raises(ProofFormatError):
        read_proof_sidecar(path)
    doc = proof_to_json(proof)
    doc["leaf"]["asset_id"] = "0x1234"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProofFormatError):
        read_proof_sidecar(path)


def test_pdq_is_in_the_leaf_and_the_sidecar(tmp_path: Path) -> None:
    a, c, f, m, p = _fields(0)
    leaves = [leaf_hash(a, c, f, m, p), leaf_hash(*_fields(1))]
    root, proofs = build_tree(leaves)
    proof = MerkleProof(a, c, f, m, siblings=proofs[0], root=root, pdq=p)
    assert verify_proof(root, proof.leaf, proof.siblings)
    other_pdq = bytes([p[0] ^ 1]) + p[1:]  # one bit of the fingerprint changed
    assert not verify_proof(root, leaf_hash(a, c, f, m, other_pdq), proof.siblings)
    assert not verify_proof(root, leaf_hash(a, c, f, m, None), proof.siblings)
    path = tmp_path / "p.proof.json"
    write_proof_sidecar(path, proof)
    doc = json.loads(path.read_text())
    assert doc["format"] == "shield-batch-proof/2" and doc["leaf"]["pdq"] == "0x" + p.hex()
    doc["leaf"]["pdq"] = None  # a sidecar whose PDQ is removed no longer proves the leaf
    path.write_text(json.dumps(doc))
    stripped = read_proof_sidecar(path)
    assert stripped.pdq is None and not verify_proof(root, stripped.leaf, stripped.siblings)
    doc["leaf"]["pdq"] = "0x1234"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProofFormatError):
        read_proof_sidecar(path)
    doc["format"] = "shield-batch-proof/1"  # leaves without the PDQ: not this registry's
    path.write_text(json.dumps(doc))
    with pytest.raises(ProofFormatError):
        read_proof_sidecar(path)


def test_member_list_roundtrip_and_digest() -> None:
    members = [(_fields(i)[0], _fields(i)[4]) for i in range(3)] + [((9).to_bytes(16, "big"), None)]
    packed = pack_members(members)
    assert len(packed) == 4 * 48 and packed[-32:] == bytes(32)
    assert unpack_members(packed) == members
    assert members_digest(packed) == keccak(packed)[:18]
    swapped = pack_members([members[0], (members[1][0], members[2][1]), *members[2:]])
    assert members_digest(swapped) != members_digest(packed)
    with pytest.raises(ValueError):
        unpack_members(packed[:-1])
    with pytest.raises(ValueError):
        pack_members([(b"short", None)])
