"""`shield audit`: list every record and batch of the registry (from events, fetched in
chunks), check each against contract storage and the local index, and flag problems.

Flags:
    revoked            the publisher revoked the entry (reason from its event)
    duplicate          the asset id appears in more than one anchoring (a record and/or
                       batches), or the same pixels were anchored under another asset id
    unknown-publisher  the publisher address never registered a certificate/watermark key
    unproven-publisher the publisher's registration proof does not hold (it claims keys it
                       cannot sign with: squatting); its entries are never authentic
    shared-key         (publisher entries) the certificate fingerprint or the watermark key
                       is claimed by two or more addresses
    missing-on-chain   known locally (or from an event) as anchored, but absent in storage
    storage-mismatch   storage does not hold the commitment of the event's hashes and PDQ
                       (a batch: the digest of its event's member list; a member of our
                       own batch: its local proof or PDQ disagrees with the chain)
    queued             known locally, not yet anchored (outbox)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import UTC, datetime

from eth_utils import to_checksum_address

from shield.config import Settings
from shield.ledger.client import RegistryClient, batch_key, record_key
from shield.ledger.ledger import Ledger
from shield.ledger.merkle import commitment, leaf_hash, members_digest, unpack_members, verify_proof
from shield.ledger.reads import batch_event_members

__all__ = ["AuditEntry", "AuditReport", "audit", "STORAGE_CHUNK"]

#: ids per rawRecords/rawBatches call: keeps each eth_call well under node limits.
STORAGE_CHUNK = 500


@dataclass(frozen=True)
class AuditEntry:
    kind: str  # 'record' | 'batch' | 'batch-member' | 'local' | 'publisher'
    asset_id: bytes | None
    batch_root: bytes | None
    publisher: str | None
    timestamp: datetime | None
    block: int | None
    tx_hash: str | None
    revoked: bool
    revocation_reason: str | None
    flags: tuple[str, ...]
    detail: str = ""
    content_hash: bytes | None = None
    file_name: str | None = None  # the output file, when the local index knows it
    pdq: bytes | None = None  # the PDQ fingerprint anchored with the photo, when known


@dataclass(frozen=True)
class AuditReport:
    chain_id: int | None
    contract: str | None
    from_block: int
    to_block: int
    entries: tuple[AuditEntry, ...]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not any(set(e.flags) - {"queued"} for e in self.entries)


@dataclass
class _Draft:
    kind: str
    asset_id: bytes | None
    batch_root: bytes | None
    publisher: str | None
    block: int | None
    tx_hash: str | None
    content_hash: bytes | None = None
    timestamp: datetime | None = None
    revoked: bool = False
    reason: str | None = None
    flags: set[str] = field(default_factory=set)
    detail: list[str] = field(default_factory=list)
    pdq: bytes | None = None
    members: bytes | None = None  # a batch's packed member list, from its event


def _chunks(items: list[bytes], size: int = STORAGE_CHUNK) -> Iterable[list[bytes]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@lru_cache(maxsize=4096)
def _addr(topic: bytes) -> str:
    return to_checksum_address(bytes(topic)[12:])


def _reasons(client: RegistryClient, event: str, start: int, end: int) -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    for entry in client.logs(event, start, end):
        key = bytes(entry["topics"][1])
        out[key[:16] if event == "RecordRevoked" else key] = str(client.w3.codec.decode(["string"], bytes(entry["data"]))[0])
    return out


def _collect(ledger: Ledger, client: RegistryClient, start: int, end: int) -> list[_Draft]:
    drafts: list[_Draft] = []
    records: dict[bytes, _Draft] = {}  # by storage key: every publisher has its own slots
    for entry in client.logs("Anchored", start, end):
        topics, data = entry["topics"], bytes(entry["data"])
        d = _Draft("record", bytes(topics[1])[:16], None, _addr(topics[2]), int(entry["blockNumber"]),
                   "0x" + bytes(entry["transactionHash"]).hex(), data[:32])
        d.pdq = data[96:128] if len(data) == 128 and any(data[96:128]) else None
        d.detail.append(commitment(data[:32], data[32:64], data[64:96], d.pdq).hex())  # expected commitment
        drafts.append(d)
        records[record_key(d.publisher, d.asset_id)] = d  # type: ignore[arg-type]
    batches: dict[bytes, _Draft] = {}
    for entry in client.logs("BatchAnchored", start, end):
        topics = entry["topics"]
        d = _Draft("batch", None, bytes(topics[1]), _addr(topics[2]), int(entry["blockNumber"]),
                   "0x" + bytes(entry["transactionHash"]).hex())
        d.members = batch_event_members(bytes(entry["data"]))
        drafts.append(d)
        batches[batch_key(d.publisher, d.batch_root)] = d  # type: ignore[arg-type]
    own = ledger.account.address if ledger.account is not None else None
    ids = list(records)
    for chunk in _chunks(ids):
        for key, raw in zip(chunk, client.raw_records(chunk), strict=True):
            d = records[key]
            expected = d.detail.pop()
            if not raw.exists:
                d.flags.add("missing-on-chain")
                continue
            d.timestamp, d.revoked = datetime.fromtimestamp(raw.timestamp, UTC), raw.revoked
            if raw.commitment.hex() != expected:
                d.flags.add("storage-mismatch")
            elif own is not None and d.publisher == own and d.asset_id is not None:
                local = ledger.index.get(d.asset_id)
                if local is not None and (local.content_hash, local.pdq) != (d.content_hash, d.pdq):
                    d.flags.add("storage-mismatch")
                    d.detail.append("the anchored hashes or PDQ are not the local index's")
    roots = list(batches)
    for chunk in _chunks(roots):
        for root, braw in zip(chunk, client.raw_batches(chunk), strict=True):
            d = batches[root]
            if not braw.exists:
                d.flags.add("missing-on-chain")
                continue
            d.timestamp, d.revoked = datetime.fromtimestamp(braw.timestamp, UTC), braw.revoked
            d.detail.append(f"{braw.count} photos")
            if d.members is None or braw.members != members_digest(d.members):
                d.flags.add("storage-mismatch")
                d.detail.append("its event's member list does not match the stored digest")
    drafts += _members(ledger, batches.values())
    return drafts


def _members(ledger: Ledger, batches: Iterable[_Draft]) -> list[_Draft]:
    """One entry per member of each batch whose event's member list matches storage (asset
    id and PDQ from the event, so every publisher's members are listed); our own members
    are cross-checked with the local index (the leaf, PDQ included, must hash up to the
    root, and the PDQ must be the one the event lists)."""
    own = ledger.account.address if ledger.account is not None else None
    out: list[_Draft] = []
    for b in batches:
        broot = b.batch_root
        if broot is None or b.members is None or b.flags & {"storage-mismatch", "missing-on-chain"}:
            continue
        local = {m.asset_id: m for m in ledger.index.members(broot)} if b.publisher == own else {}
        for asset_id, pdq in unpack_members(b.members):
            md = _Draft("batch-member", asset_id, broot, b.publisher, b.block, b.tx_hash, None, b.timestamp,
                        b.revoked, flags=set(b.flags), pdq=pdq)
            m = local.get(asset_id)
            if m is not None:
                md.content_hash = m.content_hash
                ok = m.siblings is not None and m.pdq == pdq and verify_proof(
                    broot, leaf_hash(m.asset_id, m.content_hash, m.file_hash, m.manifest_hash, m.pdq), m.siblings)
                if not ok:
                    md.flags.add("storage-mismatch")
                    md.detail.append("the local proof or PDQ does not match the anchored batch")
            out.append(md)
    return out


def _local_only(ledger: Ledger, seen_ids: set[bytes], seen_roots: set[bytes]) -> list[_Draft]:
    out: list[_Draft] = []
    items = {i.key: i for i in ledger.outbox.all_items()}
    for asset in ledger.index.all():
        key = asset.batch_root or asset.asset_id
        if asset.asset_id in seen_ids or (asset.batch_root is not None and asset.batch_root in seen_roots):
            continue
        item = items.get(key)
        state = item.state if item else "unknown"
        d = _Draft("local", asset.asset_id, asset.batch_root, None, item.block if item else None,
                   item.tx_hash if item else None, asset.content_hash)
        d.flags.add("missing-on-chain" if state == "anchored" else "queued" if state in ("pending", "sent", "confirming") else state)
        d.detail.append(f"outbox state {state}")
        out.append(d)
    return out


def _publishers(ledger: Ledger, client: RegistryClient) -> tuple[list[_Draft], dict[str, str | None]]:
    """One entry per registered publisher; returns them and, per address, why its proof
    fails (None when it holds)."""
    drafts: list[_Draft] = []
    problems: dict[str, str | None] = {}
    claims = []
    for pid in range(1, int(client.contract.functions.publisherCount().call()) + 1):
        address = client.publisher_address(pid)
        claim = ledger.claim(address) if address is not None else None
        if claim is not None:
            claims.append(claim)
    by_cert: dict[bytes, set[str]] = defaultdict(set)
    by_wm: dict[bytes, set[str]] = defaultdict(set)
    for c in claims:
        by_cert[c.info.cert_fingerprint].add(c.info.address)
        by_wm[c.info.watermark_key].add(c.info.address)
    for c in claims:
        d = _Draft("publisher", None, None, c.info.address, None, None, timestamp=c.info.registered_at)
        problems[c.info.address] = None if c.check.valid else c.check.reason
        if not c.check.valid:
            d.flags.add("unproven-publisher")
            d.detail.append(c.check.reason)
        else:
            d.detail.append(f"proof holds, certificate {c.check.subject!r}")
        for what, table, key in (("certificate fingerprint", by_cert, c.info.cert_fingerprint),
                                 ("watermark key", by_wm, c.info.watermark_key)):
            others = sorted(table[key] - {c.info.address})
            if others:
                d.flags.add("shared-key")
                d.detail.append(f"{what} {key.hex()[:16]}... also claimed by {', '.join(others[:3])}")
        drafts.append(d)
    return drafts, problems


def _file_names(ledger: Ledger) -> Callable[[_Draft], str | None]:
    """The file name the local index recorded for an entry, or None. An entry on chain
    gets it only when it is the anchoring the index recorded (a record with the index's
    content hash, a member of the index's batch) and, when the ledger has our account,
    ours: another publisher's entry under the same asset id never shows our file."""
    index = {a.asset_id: a for a in ledger.index.all() if a.file_name is not None}
    own = ledger.account.address if ledger.account is not None else None

    def name(d: _Draft) -> str | None:
        local = index.get(d.asset_id) if d.asset_id is not None else None
        if local is None:
            return None
        if d.kind != "local" and own is not None and d.publisher != own:
            return None
        same = (d.kind == "local" or (d.kind == "record" and local.content_hash == d.content_hash)
                or (d.kind == "batch-member" and local.batch_root == d.batch_root))
        return local.file_name if same else None

    return name


def audit(settings: Settings, ledger: Ledger, *, publisher: str | None = None,
          since: datetime | None = None) -> AuditReport:
    """Audit the registry of ``ledger`` (see the module docstring for the flags).

    Args:
        settings: shield settings (unused beyond the ledger's, kept for the CLI's symmetry).
        ledger: an online ledger.
        publisher: only entries of this address.
        since: only entries at or after this time (timezone-aware; naive means UTC).
    Raises:
        ChainUnavailableError: the ledger is offline.
    """
    client = ledger._online()
    start, end = ledger.deployment_block, client.block_number()
    drafts = _collect(ledger, client, start, end)
    seen_ids = {d.asset_id for d in drafts if d.asset_id is not None}
    seen_roots = {d.batch_root for d in drafts if d.kind == "batch" and d.batch_root is not None}
    drafts += _local_only(ledger, seen_ids, seen_roots)
    record_reasons = _reasons(client, "RecordRevoked", start, end)
    batch_reasons = _reasons(client, "BatchRevoked", start, end)
    publisher_drafts, problems = _publishers(ledger, client)
    by_id: dict[bytes, list[_Draft]] = defaultdict(list)
    by_content: dict[bytes, set[bytes]] = defaultdict(set)
    for d in drafts:
        if d.asset_id is not None:
            by_id[d.asset_id].append(d)
            if d.content_hash is not None:
                by_content[d.content_hash].add(d.asset_id)
    for d in drafts:
        if d.revoked:
            d.flags.add("revoked")
            d.reason = record_reasons.get(d.asset_id) if d.kind == "record" else batch_reasons.get(d.batch_root)  # type: ignore[arg-type]
        if d.publisher is not None and d.publisher not in problems:
            d.flags.add("unknown-publisher")
        elif d.publisher is not None and problems[d.publisher] is not None:
            d.flags.add("unproven-publisher")
        if d.asset_id is not None and len([x for x in by_id[d.asset_id] if x.kind != "local"]) > 1:
            d.flags.add("duplicate")
            d.detail.append("asset id anchored more than once")
        if d.content_hash is not None and len(by_content[d.content_hash]) > 1:
            d.flags.add("duplicate")
            others = sorted(x.hex() for x in by_content[d.content_hash] - {d.asset_id or b""})
            d.detail.append(f"same pixels as {', '.join(others[:3])}")
    drafts += publisher_drafts
    want = to_checksum_address(publisher) if publisher else None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    names = _file_names(ledger)
    entries = tuple(
        AuditEntry(d.kind, d.asset_id, d.batch_root, d.publisher, d.timestamp, d.block, d.tx_hash, d.revoked,
                   d.reason, tuple(sorted(d.flags)), "; ".join(d.detail), d.content_hash,
                   file_name=names(d), pdq=d.pdq)
        for d in drafts
        if (want is None or d.publisher == want) and (since is None or d.timestamp is None or d.timestamp >= since)
    )
    counts: dict[str, int] = defaultdict(int)
    for e in entries:
        counts[e.kind] += 1
        for f in e.flags:
            counts[f] += 1
    return AuditReport(ledger.chain_id, ledger.registry_address, start, end, entries, dict(counts))
