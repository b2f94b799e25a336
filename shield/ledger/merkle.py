"""Merkle batches (pure functions on bytes) and the proof sidecar format.

Tree (matches contracts/ShieldRegistry.sol):
    leaf = keccak256(0x00 || asset_id(16) || content(32) || file(32) || manifest(32) || pdq(32))
    node = keccak256(0x01 || min(a, b) || max(a, b))      (sorted pairs)
A lone node at the end of a level is carried up unchanged. The 0x00/0x01 prefixes
(RFC 6962 section 2.1 style domain separation) stop a leaf from posing as a node. A proof
is the list of sibling hashes from the leaf up; with sorted pairs it needs no index.

The PDQ fingerprint (32 bytes; all zeros when none was computed) is committed to by the
single-record commitment and the leaf. A batch's member list (asset id and PDQ of each
photo, :func:`pack_members`) travels in its ``BatchAnchored`` event; storage keeps its
digest (:func:`members_digest`) so the event can be checked like a record's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from shield.ledger.errors import ProofFormatError
from shield.ledger.keccak import keccak

__all__ = [
    "MerkleProof",
    "leaf_hash",
    "node_hash",
    "commitment",
    "pdq_word",
    "pack_members",
    "unpack_members",
    "members_digest",
    "build_tree",
    "verify_proof",
    "proof_to_json",
    "proof_from_json",
    "write_proof_sidecar",
    "read_proof_sidecar",
    "sidecar_path",
    "SIDECAR_FORMAT",
    "MAX_PROOF_DEPTH",
    "MAX_SIDECAR_BYTES",
]

SIDECAR_FORMAT = "shield-batch-proof/2"
#: Deepest proof accepted from an untrusted sidecar: 2^64 leaves is beyond any batch.
MAX_PROOF_DEPTH = 64
#: Largest sidecar read: a 64-deep proof is ~5 KB of JSON; anything bigger is not ours.
MAX_SIDECAR_BYTES = 64 * 1024
#: Bytes of keccak256(content || file || manifest) kept on chain for a single record.
COMMITMENT_BYTES = 22
#: Bytes of keccak256(member list) kept on chain for a batch.
MEMBERS_DIGEST_BYTES = 18
#: Bytes per member in a batch's member list: asset id (16) and PDQ (32).
MEMBER_BYTES = 48
#: Size of a PDQ fingerprint.
PDQ_BYTES = 32
_NO_PDQ = bytes(PDQ_BYTES)


@dataclass(frozen=True)
class MerkleProof:
    """Inclusion proof of one photo in an anchored batch.

    Attributes:
        asset_id: 16-byte asset id.
        content_hash, file_hash, manifest_hash: the 32-byte leaf fields.
        siblings: sibling hashes from the leaf up to the root (each 32 bytes).
        root: the batch root anchored on chain.
        chain_id, contract, tx_hash, block: where the root was anchored (None before).
        pdq: the 32-byte PDQ fingerprint in the leaf (None: none was computed).
    """

    asset_id: bytes
    content_hash: bytes
    file_hash: bytes
    manifest_hash: bytes
    siblings: tuple[bytes, ...]
    root: bytes
    chain_id: int | None = None
    contract: str | None = None
    tx_hash: str | None = None
    block: int | None = None
    pdq: bytes | None = None

    @property
    def leaf(self) -> bytes:
        return leaf_hash(self.asset_id, self.content_hash, self.file_hash, self.manifest_hash, self.pdq)

    def anchored_at(self, chain_id: int, contract: str, tx_hash: str | None, block: int | None) -> MerkleProof:
        return replace(self, chain_id=chain_id, contract=contract, tx_hash=tx_hash, block=block)


def _check(name: str, value: bytes, size: int) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != size:
        raise ValueError(f"{name} must be {size} bytes")


def pdq_word(pdq: bytes | None) -> bytes:
    """The 32-byte on-chain form of a PDQ fingerprint: the value, or zeros for None."""
    if pdq is None:
        return _NO_PDQ
    _check("pdq", pdq, PDQ_BYTES)
    return bytes(pdq)


def leaf_hash(asset_id: bytes, content_hash: bytes, file_hash: bytes, manifest_hash: bytes, pdq: bytes | None) -> bytes:
    """The batch leaf of one photo (ShieldRegistry.leafHash); ``pdq`` None hashes as zeros."""
    _check("asset_id", asset_id, 16)
    for name, value in (("content_hash", content_hash), ("file_hash", file_hash), ("manifest_hash", manifest_hash)):
        _check(name, value, 32)
    return keccak(b"\x00" + asset_id + content_hash + file_hash + manifest_hash + pdq_word(pdq))


def node_hash(a: bytes, b: bytes) -> bytes:
    lo, hi = (a, b) if a < b else (b, a)
    return keccak(b"\x01" + lo + hi)


def commitment(content_hash: bytes, file_hash: bytes, manifest_hash: bytes, pdq: bytes | None) -> bytes:
    """The 22-byte commitment stored for a single record (ShieldRegistry.commitmentOf);
    ``pdq`` None commits to zeros (no fingerprint)."""
    return keccak(content_hash + file_hash + manifest_hash + pdq_word(pdq))[:COMMITMENT_BYTES]


def pack_members(members: Sequence[tuple[bytes, bytes | None]]) -> bytes:
    """A batch's member list as anchorBatch takes it: (asset id || PDQ) per photo."""
    out = bytearray()
    for asset_id, pdq in members:
        _check("asset_id", asset_id, 16)
        out += asset_id + pdq_word(pdq)
    return bytes(out)


def unpack_members(data: bytes) -> list[tuple[bytes, bytes | None]]:
    """(asset id, PDQ or None) per member of a packed list (as carried by BatchAnchored).

    Raises:
        ValueError: the length is not a multiple of MEMBER_BYTES.
    """
    if len(data) % MEMBER_BYTES:
        raise ValueError(f"a member list is a multiple of {MEMBER_BYTES} bytes, got {len(data)}")
    out: list[tuple[bytes, bytes | None]] = []
    for i in range(0, len(data), MEMBER_BYTES):
        pdq = data[i + 16:i + MEMBER_BYTES]
        out.append((data[i:i + 16], None if pdq == _NO_PDQ else pdq))
    return out


def members_digest(packed: bytes) -> bytes:
    """The 18-byte digest a batch keeps of its packed member list (ShieldRegistry.membersDigest)."""
    return keccak(packed)[:MEMBERS_DIGEST_BYTES]


def build_tree(leaves: Sequence[bytes]) -> tuple[bytes, list[tuple[bytes, ...]]]:
    """Root and per-leaf proofs (sibling lists) for ``leaves`` in the given order."""
    if not leaves:
        raise ValueError("a batch needs at least one leaf")
    level = list(leaves)
    paths: list[list[bytes]] = [[] for _ in leaves]
    position = list(range(len(leaves)))  # index of each leaf's ancestor in the current level
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        for leaf, pos in enumerate(position):
            sibling = pos ^ 1
            if sibling < len(level):
                paths[leaf].append(level[sibling])
            position[leaf] = pos // 2
        level = nxt
    return level[0], [tuple(p) for p in paths]


def verify_proof(root: bytes, leaf: bytes, siblings: Sequence[bytes]) -> bool:
    if len(siblings) > MAX_PROOF_DEPTH:
        return False
    h = leaf
    for sibling in siblings:
        h = node_hash(h, sibling)
    return h == root


def proof_to_json(proof: MerkleProof) -> dict[str, Any]:
    return {
        "format": SIDECAR_FORMAT,
        "root": "0x" + proof.root.hex(),
        "leaf": {
            "asset_id": "0x" + proof.asset_id.hex(),
            "content_hash": "0x" + proof.content_hash.hex(),
            "file_hash": "0x" + proof.file_hash.hex(),
            "manifest_hash": "0x" + proof.manifest_hash.hex(),
            "pdq": None if proof.pdq is None else "0x" + proof.pdq.hex(),
        },
        "proof": ["0x" + s.hex() for s in proof.siblings],
        "chain_id": proof.chain_id,
        "contract": proof.contract,
        "tx": proof.tx_hash,
        "block": proof.block,
    }


def _hexfield(doc: dict[str, Any], key: str, size: int) -> bytes:
    raw = doc.get(key)
    try:
        value = bytes.fromhex(str(raw).removeprefix("0x"))
    except ValueError as exc:
        raise ProofFormatError(f"proof field {key!r} is not hex") from exc
    if len(value) != size:
        raise ProofFormatError(f"proof field {key!r} must be {size} bytes")
    return value


def proof_from_json(doc: Any) -> MerkleProof:
    """Parse an untrusted sidecar document.

    Raises:
        ProofFormatError: wrong format tag, field sizes, or a proof deeper than MAX_PROOF_DEPTH.
    """
    if not isinstance(doc, dict) or doc.get("format") != SIDECAR_FORMAT:
        raise ProofFormatError(f"not a {SIDECAR_FORMAT} document")
    leaf = doc.get("leaf")
    path = doc.get("proof")
    if not isinstance(leaf, dict) or not isinstance(path, list):
        raise ProofFormatError("proof document lacks 'leaf' or 'proof'")
    if len(path) > MAX_PROOF_DEPTH:
        raise ProofFormatError(f"proof is deeper than {MAX_PROOF_DEPTH}")
    chain_id = doc.get("chain_id")
    block = doc.get("block")
    if chain_id is not None and not isinstance(chain_id, int) or block is not None and not isinstance(block, int):
        raise ProofFormatError("chain_id and block must be integers")
    pdq = None if leaf.get("pdq") is None else _hexfield(leaf, "pdq", PDQ_BYTES)
    contract, tx = doc.get("contract"), doc.get("tx")
    if contract is not None and not isinstance(contract, str) or tx is not None and not isinstance(tx, str):
        raise ProofFormatError("contract and tx must be strings")
    return MerkleProof(
        asset_id=_hexfield(leaf, "asset_id", 16),
        content_hash=_hexfield(leaf, "content_hash", 32),
        file_hash=_hexfield(leaf, "file_hash", 32),
        manifest_hash=_hexfield(leaf, "manifest_hash", 32),
        siblings=tuple(_hexfield({"s": s}, "s", 32) for s in path),
        root=_hexfield(doc, "root", 32),
        chain_id=chain_id,
        contract=contract,
        tx_hash=tx,
        block=block,
        pdq=None if pdq == _NO_PDQ else pdq,
    )


def sidecar_path(image: Path) -> Path:
    """Where the proof of ``image`` is kept: ``photo.shield.png`` -> ``photo.shield.png.proof.json``."""
    return image.with_name(image.name + ".proof.json")


def write_proof_sidecar(path: Path, proof: MerkleProof) -> None:
    """Write ``proof`` to ``path`` atomically (temp file + fsync + rename).

    Raises:
        OutputError: the file cannot be written.
    """
    from shield.imaging.save import atomic_write_bytes

    atomic_write_bytes((json.dumps(proof_to_json(proof), indent=2) + "\n").encode(), path, overwrite=True)


def read_proof_sidecar(path: Path) -> MerkleProof:
    """Read a sidecar written by :func:`write_proof_sidecar`.

    Raises:
        ProofFormatError: unreadable, too large, not JSON, or malformed.
    """
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SIDECAR_BYTES + 1)
    except OSError as exc:
        raise ProofFormatError(f"cannot read proof {path}: {exc.strerror}") from exc
    if len(data) > MAX_SIDECAR_BYTES:
        raise ProofFormatError(f"proof {path} is larger than {MAX_SIDECAR_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProofFormatError(f"proof {path} is not JSON") from exc
    return proof_from_json(doc)
