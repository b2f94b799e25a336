"""Reading the registry: records, batches, publishers, events, and the lookup of a
record by its PDQ fingerprint, written once for both ways of reaching a node.

:class:`RegistryReads` holds every read (hand ABI decoding, shield.ledger.abi) over a
:class:`ChainReads`: the web3 client of a full :class:`~shield.ledger.ledger.Ledger`, or
the standard-library JSON-RPC client of a :class:`~shield.ledger.reader.LedgerReader`
(which imports neither web3 nor eth_account nor eth_abi).

What a read returns is as trustworthy as contract storage: values from events (hashes,
PDQ, batch member lists) are kept only when they reproduce the commitment or digest in
storage; events alone decide nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from shield.ledger import abi
from shield.ledger.errors import ChainUnavailableError, LedgerError
from shield.ledger.index import LocalIndex
from shield.ledger.merkle import (
    MEMBER_BYTES,
    PDQ_BYTES,
    MerkleProof,
    commitment,
    leaf_hash,
    members_digest,
    verify_proof,
)
from shield.ledger.outbox import Outbox
from shield.ledger.proof import check_proof, watermark_fingerprint
from shield.ledger.storage import RawBatch, RawRecord, batch_key, decode_batch_word, decode_record_word, record_key
from shield.ledger.types import AnchorRequest, FingerprintHit, LedgerRecord, PublisherClaim, PublisherInfo

__all__ = ["ChainReads", "RegistryReads", "MAX_CLAIMANTS", "MAX_FINGERPRINT_HITS", "batch_event_members"]

log = logging.getLogger(__name__)

#: Most addresses read for one watermark-key fingerprint: each one is a paid registration,
#: so this many means someone spent ~4096 registrations to pad the list; a verifier that
#: finds more says so instead of reading on (never a false "authentic").
MAX_CLAIMANTS = 4096
_CLAIMANT_PAGE = 256
#: Most candidates of each kind (single records, batch members) find_by_fingerprint checks
#: against storage, nearest first. Anyone can anchor records with fingerprints near a
#: published photo's, under their own address, and the genuine record must not be pushed
#: out of the list: so the bound is as high as MAX_CLAIMANTS (4096 look-alike records cost
#: ~2 * 10^8 gas), and what it costs a verifier stays small (one storage read per 500
#: candidates, one log query for all revocation reasons).
MAX_FINGERPRINT_HITS = 4096
_STORAGE_CHUNK = 500
_ZERO_ADDRESS = "0x" + "00" * 20


class ChainReads(Protocol):
    """What the reads need from a node: calls to the registry, its logs, the head."""

    @property
    def address(self) -> str: ...
    def call(self, data: bytes) -> bytes: ...
    def block_number(self) -> int: ...
    def logs(self, event: str, from_block: int, to_block: int | None = None, key_topic: bytes | None = None,
             publisher_topic: str | None = None) -> Iterator[dict[str, Any]]: ...



def _tx(entry: dict[str, Any]) -> str:
    return "0x" + bytes(entry["transactionHash"]).hex()


def batch_event_members(data: bytes) -> bytes | None:
    """The packed member list of a BatchAnchored event's data, None when malformed."""
    try:
        count = int.from_bytes(abi.words(data, 1, "BatchAnchored")[0], "big")
        members = abi.decode_bytes(data, 32, "BatchAnchored members")
    except ChainUnavailableError:
        return None
    return members if len(members) == count * MEMBER_BYTES else None


# ---------------------------------------------------------------- the reads


class RegistryReads:
    """The read API of a ledger (what ``shield verify`` and ``shield audit`` use).

    Subclasses provide the node (:meth:`_reads`), and may provide the local index and
    outbox of this installation (proofs of our own batch members, our tx hashes).
    """

    chain_id: int | None
    registry_address: str | None
    deployment_block: int
    unavailable: LedgerError | None
    index: LocalIndex | None
    outbox: Outbox | None

    def _reads(self) -> ChainReads:
        raise NotImplementedError

    @property
    def online(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        """Release local resources (the database connection)."""

    def _own(self, publisher: str) -> bool:
        """Whether ``publisher`` is this installation's account (its outbox knows the txs)."""
        return False

    def read_deployment_block(self) -> int:
        """The block the registry was deployed in, as it recorded it (ShieldRegistry.deploymentBlock)."""
        [word] = abi.words(self._reads().call(abi.encode_call("deploymentBlock()")), 1, "deploymentBlock")
        return int.from_bytes(word, "big")

    # ------------------------------------------------------------------ storage

    def _words(self, signature: str, keys: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        chain = self._reads()
        for i in range(0, len(keys), _STORAGE_CHUNK):
            chunk = keys[i:i + _STORAGE_CHUNK]
            got = abi.decode_words_array(chain.call(abi.encode_call(signature, array=chunk)), 0, signature)
            if len(got) != len(chunk):
                raise ChainUnavailableError(f"{signature}: malformed answer from the node")
            out += got
        return out

    def raw_records(self, keys: list[bytes]) -> list[RawRecord]:
        """Records by storage key (:func:`record_key`)."""
        return [decode_record_word(w) for w in self._words("rawRecords(bytes32[])", keys)]

    def raw_batches(self, keys: list[bytes]) -> list[RawBatch]:
        """Batches by storage key (:func:`batch_key`)."""
        return [decode_batch_word(w) for w in self._words("rawBatches(bytes32[])", keys)]

    # ------------------------------------------------------------------ publishers

    def publisher(self, address: str) -> PublisherInfo | None:
        """The registration of ``address`` (with its stored proof), or None."""
        chain = self._reads()
        addr = abi.checksum(bytes.fromhex(address.removeprefix("0x")))
        cert, wm, at, pid = abi.words(chain.call(abi.encode_call("publisherOf(address)", abi.word_address(addr))), 4,
                                      "publisherOf")
        registered, publisher_id = int.from_bytes(at, "big"), int.from_bytes(pid, "big")
        if publisher_id == 0 and registered == 0:
            return None
        proof = abi.decode_bytes(chain.call(abi.encode_call("publisherProof(address)", abi.word_address(addr))), 0,
                                 "publisherProof")
        return PublisherInfo(addr, cert, wm, datetime.fromtimestamp(registered, UTC) if registered else None,
                             publisher_id, proof)

    def claim(self, address: str) -> PublisherClaim | None:
        """``address``'s registration and whether its proof holds on this chain and registry."""
        info = self.publisher(address)
        if info is None:
            return None
        check = check_proof(info.proof, self.chain_id or 0, self.registry_address or _ZERO_ADDRESS,
                            info.address, info.cert_fingerprint, info.watermark_key)
        return PublisherClaim(info, check)

    def claimants(self, fingerprint: bytes, limit: int = MAX_CLAIMANTS) -> tuple[list[str], bool]:
        """Addresses that registered a watermark key with this 8-byte fingerprint, in
        registration order, at most ``limit``; the flag says whether more exist."""
        chain = self._reads()
        out: list[str] = []
        while len(out) < limit + 1:
            data = abi.encode_call("claimantsOf(bytes8,uint256,uint256)", abi.word_bytes(fingerprint),
                                   abi.word_uint(len(out)), abi.word_uint(_CLAIMANT_PAGE))
            page = abi.decode_address_array(chain.call(data), 0, "claimantsOf")
            out += page
            if len(page) < _CLAIMANT_PAGE:
                break
        return out[:limit], len(out) > limit

    def claims(self, watermark_fp: bytes) -> tuple[list[PublisherClaim], bool]:
        """Every registration of a watermark key with this 8-byte fingerprint (the one
        the watermark carries), proof checked; the flag says more than MAX_CLAIMANTS exist."""
        addresses, truncated = self.claimants(watermark_fp, MAX_CLAIMANTS)
        out = []
        for address in dict.fromkeys(addresses):
            c = self.claim(address)
            if c is not None and watermark_fingerprint(c.info.watermark_key) == watermark_fp:
                out.append(c)
        return out, truncated

    # ------------------------------------------------------------------ records

    def proof_for(self, asset_id: bytes) -> MerkleProof | None:
        """The proof of ``asset_id`` kept in this installation's index (our own batches)."""
        asset = self.index.get(asset_id) if self.index is not None else None
        proof = None if asset is None or self.index is None else self.index.proof(asset)
        if proof is None:
            return None
        item = self.outbox.get(proof.root) if self.outbox is not None else None
        if item is not None and item.state == "anchored":
            return proof.anchored_at(item.chain_id or 0, item.contract or "", item.tx_hash, item.block)
        return proof

    def _batch_members(self, publisher: str | None = None) -> Iterator[tuple[dict[str, Any], bytes]]:
        """(event, packed member list) of every well-formed BatchAnchored event (of ``publisher``)."""
        for entry in self._reads().logs("BatchAnchored", self.deployment_block, publisher_topic=publisher):
            members = batch_event_members(bytes(entry["data"]))
            if members is not None and len(entry["topics"]) > 2:
                yield entry, members

    @staticmethod
    def _lists(members: bytes, asset_id: bytes) -> bytes | None:
        """The PDQ word of ``asset_id`` in a packed member list, None when not listed."""
        for i in range(0, len(members), MEMBER_BYTES):
            if members[i:i + 16] == asset_id:
                return members[i + 16:i + MEMBER_BYTES]
        return None

    def publishers_of(self, asset_id: bytes) -> list[str]:
        """Addresses that anchored ``asset_id``: its ``Anchored`` events, and the
        ``BatchAnchored`` events whose member list names it. Who they are is not checked
        here (see :meth:`claim`), nor whether the event matches storage (:meth:`lookup` does)."""
        chain = self._reads()
        found = [abi.word_to_address(bytes(e["topics"][2]))
                 for e in chain.logs("Anchored", self.deployment_block, key_topic=asset_id) if len(e["topics"]) > 2]
        found += [abi.word_to_address(bytes(e["topics"][2]))
                  for e, members in self._batch_members() if self._lists(members, asset_id) is not None]
        return list(dict.fromkeys(found))

    def lookup(self, asset_id: bytes, proof: MerkleProof | None = None, *,
               publisher: str | None = None) -> LedgerRecord | None:
        """``publisher``'s record of ``asset_id`` from contract storage: its single record,
        else the batch named by ``proof`` (or by the local index), else a batch whose
        ``BatchAnchored`` member list names it (then without the leaf: ``commitment`` b"").
        None when it is not on chain.

        Args:
            publisher: whose record (a Ledger defaults to its own account; a reader has
                none, so it is required there: TypeError). Every publisher has its own slot
                per asset id, so this says which one is asked for.
        """
        chain = self._reads()
        publisher = self._default_publisher(publisher)
        [raw] = self.raw_records([record_key(publisher, asset_id)])
        if raw.exists:
            tx, block, hashes = self._anchoring_event(chain, asset_id, publisher, raw.commitment)
            own = self._own_anchor(publisher, asset_id)
            if own is not None:
                tx, block = own
            return LedgerRecord(asset_id, publisher, raw.commitment, datetime.fromtimestamp(raw.timestamp, UTC),
                                block, tx, raw.revoked,
                                self._reason(chain, "RecordRevoked", asset_id, publisher) if raw.revoked else None, None,
                                *hashes)
        proof = proof if proof is not None and proof.asset_id == asset_id else self.proof_for(asset_id)
        if proof is None:
            return self._member_record(chain, asset_id, publisher)
        [batch] = self.raw_batches([batch_key(publisher, proof.root)])
        if not batch.exists:
            return None
        own = self._own_anchor(publisher, proof.root)
        return LedgerRecord(asset_id, publisher, proof.leaf, datetime.fromtimestamp(batch.timestamp, UTC),
                            proof.block or (own[1] if own else None), proof.tx_hash or (own[0] if own else None),
                            batch.revoked,
                            self._reason(chain, "BatchRevoked", proof.root, publisher) if batch.revoked else None,
                            proof.root, proof.content_hash, proof.file_hash, proof.manifest_hash, proof.pdq)

    def _default_publisher(self, publisher: str | None) -> str:
        if publisher is None:
            raise TypeError("lookup needs the publisher whose record is asked for")
        return abi.checksum(bytes.fromhex(publisher.removeprefix("0x")))

    def _own_anchor(self, publisher: str, key: bytes) -> tuple[str | None, int | None] | None:
        """(tx hash, block) of our own anchored entry ``key`` from the outbox, else None."""
        if not self._own(publisher) or self.outbox is None:
            return None
        item = self.outbox.get(key)
        if item is None or item.state != "anchored" or not item.tx_hash:
            return None
        return item.tx_hash, item.block

    def _member_record(self, chain: ChainReads, asset_id: bytes, publisher: str) -> LedgerRecord | None:
        """``publisher``'s batch whose event lists ``asset_id`` and whose stored digest
        matches that list; when several do, a revoked one (a revocation anywhere wins)."""
        found: list[tuple[dict[str, Any], bytes, bytes]] = []
        for entry, members in self._batch_members(publisher):
            pdq = self._lists(members, asset_id)
            if pdq is not None:
                found.append((entry, members, pdq))
        if not found:
            return None
        batches = self.raw_batches([batch_key(publisher, bytes(e["topics"][1])) for e, _, _ in found])
        records = []
        for (entry, members, pdq), batch in zip(found, batches, strict=True):
            if not batch.exists or batch.members != members_digest(members):
                log.warning("BatchAnchored event of %s does not match storage; ignored", bytes(entry["topics"][1]).hex())
                continue
            root = bytes(entry["topics"][1])
            records.append(LedgerRecord(
                asset_id, publisher, b"", datetime.fromtimestamp(batch.timestamp, UTC), int(entry["blockNumber"]),
                _tx(entry), batch.revoked,
                self._reason(chain, "BatchRevoked", root, publisher) if batch.revoked else None, root,
                pdq=None if pdq == bytes(PDQ_BYTES) else pdq))
        # A revoked entry anywhere wins, as for records under several publishers.
        return sorted(records, key=lambda r: not r.revoked)[0] if records else None

    def _anchoring_event(
        self, chain: ChainReads, asset_id: bytes, publisher: str, stored: bytes
    ) -> tuple[str | None, int | None, tuple[bytes | None, bytes | None, bytes | None, bytes | None]]:
        """(tx hash, block, (content, file, manifest hash, pdq)) of a single record, from its
        ``Anchored`` event. The values are kept only when they reproduce the commitment in
        storage, so they are as trustworthy as storage; all None when the node has pruned
        the log or refuses the query (storage alone still verifies an unmodified file)."""
        none: tuple[None, None, None, None] = (None, None, None, None)
        try:
            for entry in chain.logs("Anchored", self.deployment_block, key_topic=asset_id, publisher_topic=publisher):
                tx, block = _tx(entry), int(entry["blockNumber"])
                data = bytes(entry["data"])
                if len(data) != 128:
                    continue
                content, file, manifest, pdq = data[:32], data[32:64], data[64:96], data[96:128]
                if commitment(content, file, manifest, pdq) != stored:
                    log.warning("Anchored event of %s does not match the stored commitment; ignoring it", asset_id.hex())
                    return tx, block, none
                return tx, block, (content, file, manifest, None if pdq == bytes(PDQ_BYTES) else pdq)
        except LedgerError as exc:
            log.info("anchoring event unavailable: %s", exc)
        return None, None, none

    def _reason(self, chain: ChainReads, event: str, key: bytes, publisher: str) -> str | None:
        try:
            for entry in chain.logs(event, self.deployment_block, key_topic=key, publisher_topic=publisher):
                return abi.decode_bytes(bytes(entry["data"]), 0, event).decode("utf-8", "replace")
        except LedgerError as exc:
            log.info("revocation reason unavailable: %s", exc)
        return None

    # ------------------------------------------------------------------ fingerprint

    def find_by_fingerprint(self, pdq: bytes, max_distance: int = 31) -> list[FingerprintHit]:
        """Records whose anchored PDQ fingerprint is within ``max_distance`` bits of ``pdq``,
        nearest first, found from the registry's events alone (no local index).

        Every candidate is checked against storage (a single record's commitment, a
        batch's member digest); one that does not match is dropped. At most
        MAX_FINGERPRINT_HITS candidates, the nearest, are checked. Publishers are not
        checked: keep the records whose :meth:`claim` holds.

        Args:
            pdq: the 32-byte PDQ hash of the copy (shield.fingerprint).
            max_distance: largest Hamming distance accepted, 0..256 (default
                shield.fingerprint.MATCH_THRESHOLD, 31).

        Raises:
            ValueError: ``pdq`` is not 32 bytes or ``max_distance`` is out of range.
            LedgerError: the node cannot be read.
        """
        if not isinstance(pdq, (bytes, bytearray)) or len(pdq) != PDQ_BYTES:
            raise ValueError("pdq must be 32 bytes")
        if not isinstance(max_distance, int) or not 0 <= max_distance <= 256:
            raise ValueError("max_distance must be an int in 0..256")
        chain = self._reads()
        query = int.from_bytes(pdq, "big")
        singles: list[tuple[int, dict[str, Any]]] = []
        for entry in chain.logs("Anchored", self.deployment_block):
            data = bytes(entry["data"])
            if len(data) != 128 or len(entry["topics"]) < 3 or data[96:] == bytes(PDQ_BYTES):
                continue
            d = (int.from_bytes(data[96:], "big") ^ query).bit_count()
            if d <= max_distance:
                singles.append((d, entry))
        members: list[tuple[int, dict[str, Any], bytes, bytes, bytes]] = []
        for entry, packed in self._batch_members():
            for i in range(0, len(packed), MEMBER_BYTES):
                word = packed[i + 16:i + MEMBER_BYTES]
                if word == bytes(PDQ_BYTES):
                    continue
                d = (int.from_bytes(word, "big") ^ query).bit_count()
                if d <= max_distance:
                    members.append((d, entry, packed, packed[i:i + 16], word))
        singles.sort(key=lambda s: s[0])
        members.sort(key=lambda m: m[0])
        hits = self._single_hits(chain, singles[:MAX_FINGERPRINT_HITS])
        hits += self._member_hits(chain, members[:MAX_FINGERPRINT_HITS])
        hits.sort(key=lambda h: h.distance)
        return self._with_reasons(chain, hits)

    def _with_reasons(self, chain: ChainReads, hits: list[FingerprintHit]) -> list[FingerprintHit]:
        """``hits`` with the revocation reasons of the revoked ones, from one log query per kind."""
        out = []
        reasons: dict[str, dict[tuple[bytes, str], str]] = {}
        for hit in hits:
            r = hit.record
            if r.revoked:
                event = "RecordRevoked" if r.batch_root is None else "BatchRevoked"
                if event not in reasons:
                    reasons[event] = self._all_reasons(chain, event)
                key = r.asset_id if r.batch_root is None else r.batch_root
                hit = FingerprintHit(dataclasses.replace(r, revocation_reason=reasons[event].get((key, r.publisher))),
                                     hit.distance)
            out.append(hit)
        return out

    def _all_reasons(self, chain: ChainReads, event: str) -> dict[tuple[bytes, str], str]:
        """(asset id or root, publisher) -> reason of every ``event``; {} when the logs are unavailable."""
        out: dict[tuple[bytes, str], str] = {}
        try:
            for entry in chain.logs(event, self.deployment_block):
                topics = entry["topics"]
                if len(topics) < 3:
                    continue
                key = bytes(topics[1])[:16] if event == "RecordRevoked" else bytes(topics[1])
                try:
                    reason = abi.decode_bytes(bytes(entry["data"]), 0, event).decode("utf-8", "replace")
                except ChainUnavailableError:
                    continue
                out.setdefault((key, abi.word_to_address(bytes(topics[2]))), reason)
        except LedgerError as exc:
            log.info("revocation reasons unavailable: %s", exc)
        return out

    def _single_hits(self, chain: ChainReads, found: list[tuple[int, dict[str, Any]]]) -> list[FingerprintHit]:
        keyed = [(d, e, bytes(e["topics"][1])[:16], abi.word_to_address(bytes(e["topics"][2]))) for d, e in found]
        raws = self.raw_records([record_key(p, a) for _, _, a, p in keyed])
        hits = []
        for (d, entry, asset_id, publisher), raw in zip(keyed, raws, strict=True):
            data = bytes(entry["data"])
            fields = (data[:32], data[32:64], data[64:96], data[96:128])
            if not raw.exists or raw.commitment != commitment(*fields):
                log.warning("Anchored event of %s does not match storage; ignored", asset_id.hex())
                continue
            record = LedgerRecord(asset_id, publisher, raw.commitment, datetime.fromtimestamp(raw.timestamp, UTC),
                                  int(entry["blockNumber"]), _tx(entry), raw.revoked, None, None, *fields)
            hits.append(FingerprintHit(record, d))
        return hits

    def _member_hits(self, chain: ChainReads,
                     found: list[tuple[int, dict[str, Any], bytes, bytes, bytes]]) -> list[FingerprintHit]:
        keyed = [(bytes(e["topics"][1]), abi.word_to_address(bytes(e["topics"][2]))) for _, e, _, _, _ in found]
        raws = self.raw_batches([batch_key(p, root) for root, p in keyed])
        hits = []
        digests: dict[int, bytes] = {}  # by id of the packed list: many members of one batch hash it once
        for (d, entry, packed, asset_id, pdq), (root, publisher), batch in zip(found, keyed, raws, strict=True):
            digest = digests.get(id(packed))
            if digest is None:
                digest = digests[id(packed)] = members_digest(packed)
            if not batch.exists or batch.members != digest:
                log.warning("BatchAnchored event of %s does not match storage; ignored", root.hex())
                continue
            record = LedgerRecord(asset_id, publisher, b"", datetime.fromtimestamp(batch.timestamp, UTC),
                                  int(entry["blockNumber"]), _tx(entry), batch.revoked, None, root, pdq=pdq)
            hits.append(FingerprintHit(record, d))
        return hits

    # ------------------------------------------------------------------ checking

    @staticmethod
    def check(record: LedgerRecord, req: AnchorRequest, proof: MerkleProof | None = None) -> bool:
        """True when ``req``'s hashes are what ``record`` commits to (batch: proof included).

        The commitment covers the PDQ fingerprint too. The PDQ used is the record's when
        its event was read (it reproduced storage); when the event is not available
        (pruned log), ``req.pdq`` (the verifier's PDQ of the same pixels) and then "no
        fingerprint" are tried. A batch member is checked through ``proof``, whose leaf
        carries its own PDQ; without a proof it is False (hashes unknown, not different).
        """
        if record.asset_id != req.asset_id:
            return False
        if record.batch_root is None:
            if record.content_hash is not None:
                tried: list[bytes | None] = [record.pdq]
            else:
                tried = list(dict.fromkeys([record.pdq, req.pdq, None]))
            return any(record.commitment == commitment(req.content_hash, req.file_hash, req.manifest_hash, p)
                       for p in tried)
        if proof is None or proof.root != record.batch_root or proof.asset_id != req.asset_id:
            return False
        return verify_proof(record.batch_root, leaf_hash(*req.fields, proof.pdq), proof.siblings)
