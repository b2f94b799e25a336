"""The ledger stage: open a chain (embedded devnet or configured node), anchor through the
durable outbox, read records back from contract storage, revoke, register publishers.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3

from shield.config import Settings
from shield.ledger.artifact import Artifact, load_artifact
from shield.ledger.client import RegistryClient, SentTx, as_account, connect
from shield.ledger.deployment import deploy_registry, fund_on_devnet, read_deployment
from shield.ledger.devnet import Devnet
from shield.ledger.errors import (
    AssetTakenError,
    ChainUnavailableError,
    DeploymentMissingError,
    LedgerError,
    NotFoundError,
    NoAccountError,
    TransactionError,
)
from shield.ledger.index import LocalIndex
from shield.ledger.merkle import build_tree, commitment, leaf_hash, pack_members
from shield.ledger.outbox import Outbox, OutboxItem, open_db
from shield.ledger.proof import make_proof, proof_message, sign_p256_raw
from shield.ledger.reader import devnet_stopped_error
from shield.ledger.reads import ChainReads, RegistryReads
from shield.ledger.types import AnchorOutcome, AnchorRequest, AnchorStatus, PublisherKeys

__all__ = ["Ledger", "open_ledger"]

log = logging.getLogger(__name__)

def open_ledger(settings: Settings, account_key: bytes | LocalAccount | None, *, start_devnet: bool = True,
                w3: Web3 | None = None, publisher_keys: PublisherKeys | None = None) -> Ledger:
    """Open the ledger of ``settings``.

    Never fails because the chain is unreachable: the ledger is then offline
    (``ledger.unavailable`` says why), anchoring queues work, and reads raise that error.

    Args:
        settings: shield settings (chain section, home).
        account_key: 32-byte secp256k1 private key or a LocalAccount; None for read-only.
        start_devnet: start the embedded anvil if it is not running (embedded chain only).
        w3: an already connected Web3 (tests use eth-tester); skips the devnet.
        publisher_keys: the C2PA and watermark private keys that sign the publisher
            proof at registration; None reads them from the local keystore when needed.
    """
    account = as_account(account_key)
    artifact = load_artifact()
    ledger = Ledger(settings, account, artifact)
    ledger.publisher_keys = publisher_keys
    try:
        ledger._connect(w3, start_devnet)
    except (ChainUnavailableError, DeploymentMissingError, LedgerError) as exc:
        if w3 is not None and not isinstance(exc, ChainUnavailableError):
            raise
        ledger.unavailable = exc
        log.info("ledger offline: %s", exc)
    return ledger


class Ledger(RegistryReads):
    """One chain + registry + the local outbox and index (see open_ledger). The reads
    (lookup, claims, find_by_fingerprint, check, ...) are :class:`RegistryReads`'."""

    def __init__(self, settings: Settings, account: LocalAccount | None, artifact: Artifact) -> None:
        self.settings = settings
        self.account = account
        self.artifact = artifact
        self.chain_id: int | None = settings.chain.chain_id
        self.registry_address: str | None = settings.chain.registry
        self.deployment_block = 0
        self.client: RegistryClient | None = None
        self.unavailable: LedgerError | None = None
        self.publisher_keys: PublisherKeys | None = None
        self.db = open_db(settings.home / "ledger.sqlite")
        self.outbox: Outbox = Outbox(self.db)
        self.index: LocalIndex = LocalIndex(self.db)
        if self.registry_address is None and self.chain_id is not None:
            recorded = read_deployment(settings, self.chain_id)  # shown while offline
            self.registry_address = recorded.address if recorded else None

    # ------------------------------------------------------------------ connection

    def _connect(self, w3: Web3 | None, start_devnet: bool) -> None:
        embedded = self.settings.chain.embedded and w3 is None
        if w3 is None:
            devnet = Devnet(self.settings)
            if embedded and start_devnet:
                devnet.start()
            elif embedded and devnet.pid() is None:
                raise devnet_stopped_error(self.settings, devnet.url)
            w3 = connect(self.settings.chain.rpc_url or devnet.url)
        client = RegistryClient(w3, "0x" + "00" * 20, self.artifact, self.account)
        chain_id = client.check_chain_id(self.settings.chain.chain_id)
        self.chain_id = chain_id
        if embedded and self.account is not None:
            fund_on_devnet(w3, self.account.address)
        address = self.settings.chain.registry
        dep = read_deployment(self.settings, chain_id)
        if address is None and dep is not None:
            address = dep.address
        if address is None:
            if not self.settings.chain.embedded or self.account is None:
                raise LedgerError(f"no registry is configured for chain {chain_id}",
                                  fix="run `shield chain deploy`, or set SHIELD_REGISTRY")
            dep = deploy_registry(self.settings, w3, self.artifact, self.account)
            address = dep.address
        self.registry_address = to_checksum_address(address)
        recorded = dep is not None and dep.address == self.registry_address
        client = RegistryClient(w3, self.registry_address, self.artifact, self.account)
        code = client.code()
        if not code:
            raise DeploymentMissingError(
                f"the registry {self.registry_address} is not on chain {chain_id} (chain state lost or wrong address)")
        if code != self.artifact.deployed_bytecode:
            # Another version speaks another ABI (e.g. records not yet keyed per publisher):
            # reading it as this one would give wrong answers, so it is not used at all.
            raise DeploymentMissingError(
                f"the registry at {self.registry_address} runs other code than contracts/ShieldRegistry.json "
                "(an older version of the registry?)")
        self.client = client
        self.deployment_block = dep.block if dep is not None and recorded else self.read_deployment_block()

    def _online(self) -> RegistryClient:
        if self.client is None:
            raise self.unavailable or ChainUnavailableError("the ledger is offline")
        return self.client

    def _reads(self) -> ChainReads:
        return self._online()

    def _own(self, publisher: str) -> bool:
        return self.account is not None and publisher.lower() == self.account.address.lower()

    def _default_publisher(self, publisher: str | None) -> str:
        return super()._default_publisher(self._online().sender if publisher is None else publisher)

    @property
    def online(self) -> bool:
        return self.client is not None

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ publishers

    def publisher_proof(self, cert_fingerprint: bytes, watermark_key: bytes) -> bytes:
        """Sign the registration proof for our address on this chain and registry.

        Raises:
            NoAccountError: no account; LedgerError: the publisher keys do not match the
            fingerprint and watermark key being registered.
        """
        account = self.account
        if account is None or self.chain_id is None or self.registry_address is None:
            raise NoAccountError("registering a publisher needs the account and a connected registry")
        keys = self.publisher_keys or self._local_keys()
        if keys.cert_fingerprint != cert_fingerprint or keys.watermark_public_key != watermark_key:
            raise LedgerError("the publisher keys at hand are not the certificate and watermark key being registered",
                              fix="register with the keystore that holds these keys (`shield anchor --register-publisher`)")
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        leaf = x509.load_pem_x509_certificates(keys.c2pa_cert_chain_pem)[0]
        signer = keys.c2pa_sign
        if signer is None:
            private = serialization.load_pem_private_key(keys.c2pa_private_key_pem, password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey):
                raise LedgerError("the C2PA signing key is not a P-256 key")
            signer = lambda m: sign_p256_raw(private, m)  # noqa: E731
        message = proof_message(self.chain_id, self.registry_address, account.address, cert_fingerprint, watermark_key)
        return make_proof(message, leaf.public_bytes(serialization.Encoding.DER), signer, keys.watermark_key)

    def _local_keys(self) -> PublisherKeys:
        from shield.provenance.keyfiles import keystore_exists, load_meta
        from shield.provenance.keystore import open_keystore

        keys_dir = self.settings.keys_dir
        if self.account is None or not keystore_exists(keys_dir) or \
                str(load_meta(keys_dir).get("eth_address", "")).lower() != self.account.address.lower():
            raise NoAccountError("the proof of a publisher registration needs its C2PA and watermark private keys",
                                 fix="open the ledger with publisher_keys, or register from the publisher's keystore")
        keys: PublisherKeys = open_keystore(self.settings)
        return keys

    def register_publisher(self, cert_fingerprint: bytes, watermark_key: bytes, proof: bytes | None = None) -> str | None:
        """Bind our address to the certificate fingerprint and watermark key (both 32 bytes),
        with the proof that we hold both private keys (signed here when ``proof`` is None).

        Idempotent: returns None without a transaction when already registered so with a
        proof that holds.
        """
        if len(cert_fingerprint) != 32 or len(watermark_key) != 32:
            raise TypeError("cert_fingerprint and watermark_key must be 32 bytes")
        client = self._online()
        current = self.claim(client.sender)
        if current is not None and current.check.valid and \
                (current.info.cert_fingerprint, current.info.watermark_key) == (cert_fingerprint, watermark_key):
            return None
        proof = self.publisher_proof(cert_fingerprint, watermark_key) if proof is None else proof
        receipt = client.transact("registerPublisher", cert_fingerprint, watermark_key, proof)
        return str(receipt["transactionHash"])

    def register_publisher_later(self, cert_fingerprint: bytes, watermark_key: bytes) -> None:
        """Queue the registration durably; the next :meth:`drain` that reaches the chain
        sends it before any record (a record of an unregistered publisher fails verification)."""
        if len(cert_fingerprint) != 32 or len(watermark_key) != 32:
            raise TypeError("cert_fingerprint and watermark_key must be 32 bytes")
        if self.account is None:
            raise TypeError("registering a publisher needs the publisher's account")
        with self.outbox.transaction():
            self.outbox.set_registration(self.account.address, cert_fingerprint, watermark_key)

    def _register_queued(self) -> None:
        if self.account is None:
            return
        queued = self.outbox.registration(self.account.address)
        if queued is not None:
            self.register_publisher(*queued)
            with self.outbox.transaction():
                self.outbox.clear_registration(self.account.address)

    # ------------------------------------------------------------------ anchoring

    def record_fingerprint(self, asset_id: bytes, pdq: bytes, quality: int) -> None:
        """Keep the PDQ fingerprint of ``asset_id`` in the local index (not on chain)."""
        self.index.add_fingerprint(asset_id, pdq, quality)  # autocommit connection

    def enqueue(self, req: AnchorRequest, *, file_name: str | None = None) -> None:
        """Commit ``req`` to the outbox (durable before any send). Idempotent on asset id.

        Args:
            file_name: basename of the protected file, kept in the local index (``shield audit``).
        """
        with self.outbox.transaction():
            self.index.add(*req.fields, pdq=req.pdq, file_name=file_name)
            self.outbox.add("record", req.asset_id, {})

    def enqueue_batch(self, reqs: Sequence[AnchorRequest], *,
                      file_names: Sequence[str | None] | None = None) -> bytes:
        """Commit a Merkle batch of ``reqs`` (one root on chain); return the root.

        Args:
            file_names: per request, the basename of its protected file (see :meth:`enqueue`).
        """
        if not reqs:
            raise ValueError("enqueue_batch needs at least one request")
        if len({r.asset_id for r in reqs}) != len(reqs):
            raise ValueError("duplicate asset id in batch")
        names: list[str | None] = [None] * len(reqs) if file_names is None else list(file_names)
        if len(names) != len(reqs):
            raise ValueError("enqueue_batch needs one file name (or None) per request")
        root, paths = build_tree([leaf_hash(*r.fields, r.pdq) for r in reqs])
        with self.outbox.transaction():
            for req, path, name in zip(reqs, paths, names, strict=True):
                self.index.add(*req.fields, batch_root=root, siblings=path, pdq=req.pdq, file_name=name)
            self.outbox.add("batch", root, {"count": len(reqs)})
        return root

    def anchor(self, req: AnchorRequest) -> AnchorOutcome:
        """Enqueue and drain; with the chain down the outcome is ``queued`` (no exception)."""
        self.enqueue(req)
        for outcome in self.drain():
            if outcome.asset_id == req.asset_id:
                return outcome
        item = self.outbox.get(req.asset_id)
        return self._outcome(item, AnchorStatus.QUEUED, "queued") if item else AnchorOutcome(
            AnchorStatus.QUEUED, req.asset_id, self.chain_id, self.registry_address, None, None, "queued")

    @contextmanager
    def _drain_lock(self) -> Iterator[None]:
        path = self.settings.home / "ledger.lock"
        with path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def drain(self) -> list[AnchorOutcome]:
        """Send all open outbox work; idempotent and safe to rerun after a crash.

        For each item: if the key is already on chain and ours, it is done; if it is
        someone else's, it is rejected; a recorded transaction is awaited or rebroadcast;
        otherwise a new transaction is signed, recorded, then sent.
        """
        outcomes: list[AnchorOutcome] = []
        with self._drain_lock():
            items = self.outbox.open_items()
            if self.client is not None and items:
                try:
                    self._register_queued()
                except ChainUnavailableError as exc:
                    self.client, self.unavailable = None, exc
            for n, item in enumerate(items):
                if self.client is None:
                    outcomes += self._expand(item, AnchorStatus.QUEUED, f"queued: {self.unavailable or 'ledger offline'}")
                    continue
                try:
                    outcomes += self._drain_item(item)
                except ChainUnavailableError as exc:
                    self.client, self.unavailable = None, exc
                    outcomes += self._expand(item, AnchorStatus.QUEUED, f"queued: {exc}")
                except TransactionError as exc:
                    log.warning("anchoring %s failed, left queued: %s", item.key.hex(), exc)
                    self.outbox.mark(item.id, item.state, error=str(exc))
                    outcomes += self._expand(item, AnchorStatus.QUEUED, f"queued after an error: {exc}")
                log.debug("drained %d/%d", n + 1, len(items))
        return outcomes

    def _on_chain(self, client: RegistryClient, item: OutboxItem) -> bool | None:
        """None: our slot for the item is empty; True: it holds this item; False: it holds
        other hashes under the same asset id (only we can write our slots)."""
        if item.kind == "record":
            raw = client.record(client.sender, item.key)
            if not raw.exists:
                return None
            asset = self.index.get(item.key)
            return asset is not None and raw.commitment == commitment(asset.content_hash, asset.file_hash,
                                                                      asset.manifest_hash, asset.pdq)
        return True if client.batch(client.sender, item.key).exists else None

    def _drain_item(self, item: OutboxItem) -> list[AnchorOutcome]:
        client = self._online()
        mine = self._on_chain(client, item)
        if mine is not None:
            return self._settle(item, mine, item.tx_hash)
        if item.tx_hash is not None:
            receipt = client.receipt(item.tx_hash)
            if receipt is None and (client.known_tx(item.tx_hash) or self._rebroadcast(client, item)):
                receipt = client.wait_receipt(item.tx_hash)
                if receipt is None:
                    return self._expand(item, AnchorStatus.QUEUED, f"sent, awaiting inclusion: {item.tx_hash}")
            if receipt is not None and receipt["status"] == 1:
                return self._settle(item, True, item.tx_hash, int(receipt["blockNumber"]))
        return self._send(client, item)

    def _rebroadcast(self, client: RegistryClient, item: OutboxItem) -> bool:
        """Resend the recorded signed tx (e.g. the node restarted without it); False if stale."""
        if item.raw_tx is None:
            return False
        try:
            client.broadcast(item.raw_tx)
            return True
        except TransactionError as exc:
            log.info("recorded tx %s cannot be resent (%s); signing a new one", item.tx_hash, exc)
            return False

    def _send(self, client: RegistryClient, item: OutboxItem) -> list[AnchorOutcome]:
        try:
            sent = self._prepare(client, item)
        except TransactionError as exc:
            revert = getattr(exc, "revert", None)
            if revert is not None and revert.name in ("AlreadyAnchored", "BatchExists"):
                return self._settle(item, bool(self._on_chain(client, item)), item.tx_hash)
            if revert is not None and revert.name == "NotRegistered":
                raise TransactionError(f"{client.sender} is not a registered publisher on {self.registry_address}",
                                       fix="run `shield anchor --register-publisher`, then `shield anchor --pending`") from exc
            raise
        # Commit the signed tx before it leaves this process: a crash after the broadcast
        # then finds its hash and waits for it instead of sending again.
        with self.outbox.transaction():
            self.outbox.mark_sent(item.id, sent.tx_hash, sent.raw, sent.nonce, self.chain_id or 0,
                                  self.registry_address or "")
        client.broadcast(sent.raw)
        receipt = client.wait_receipt(sent.tx_hash)
        if receipt is None:
            return self._expand(item, AnchorStatus.QUEUED, f"sent, awaiting inclusion: {sent.tx_hash}", sent.tx_hash)
        if receipt["status"] == 1:
            return self._settle(item, True, sent.tx_hash, int(receipt["blockNumber"]))
        mine = self._on_chain(client, item)  # reverted: an earlier tx of ours landed first?
        if mine is not None:
            return self._settle(item, mine, sent.tx_hash)
        raise TransactionError(f"transaction {sent.tx_hash} reverted")

    def _prepare(self, client: RegistryClient, item: OutboxItem) -> SentTx:
        if item.kind == "batch":
            members = self.index.members(item.key)
            if len(members) != int(item.payload["count"]):
                raise LedgerError(f"batch {item.key.hex()} has {len(members)} of its {item.payload['count']} members "
                                  "in the index (database damaged?)")
            return client.prepare("anchorBatch", item.key, pack_members([(m.asset_id, m.pdq) for m in members]))
        asset = self.index.get(item.key)
        if asset is None:
            raise LedgerError(f"outbox item {item.key.hex()} has no index entry (database damaged?)")
        req = AnchorRequest(asset.asset_id, asset.content_hash, asset.file_hash, asset.manifest_hash, asset.pdq)
        return client.prepare("anchor", *req.chain_fields)

    def _settle(self, item: OutboxItem, ours: bool, tx_hash: str | None, block: int | None = None) -> list[AnchorOutcome]:
        client = self._online()
        if not ours:
            msg = f"this publisher ({client.sender}) already anchored asset id {item.key.hex()} with other hashes"
            self.outbox.mark(item.id, "rejected", error=msg)
            return self._expand(item, AnchorStatus.REJECTED, msg)
        if block is None and tx_hash is not None:
            receipt = client.receipt(tx_hash)
            block = int(receipt["blockNumber"]) if receipt and receipt["status"] == 1 else None
        needed = max(1, self.settings.chain.confirmations)
        head = client.block_number()
        if block is not None and head - block + 1 < needed:
            self.outbox.mark(item.id, "confirming", block=block, chain_id=self.chain_id, contract=self.registry_address)
            return self._expand(item, AnchorStatus.PENDING_CONFIRMATIONS,
                                f"in block {block}, {head - block + 1}/{needed} confirmations", tx_hash, block)
        self.outbox.mark(item.id, "anchored", block=block, chain_id=self.chain_id, contract=self.registry_address)
        return self._expand(item, AnchorStatus.ANCHORED, "anchored", tx_hash, block)

    def _outcome(self, item: OutboxItem, status: AnchorStatus, message: str) -> AnchorOutcome:
        return AnchorOutcome(status, item.key, self.chain_id, self.registry_address, item.tx_hash, item.block, message)

    def _expand(self, item: OutboxItem, status: AnchorStatus, message: str,
                tx_hash: str | None = None, block: int | None = None) -> list[AnchorOutcome]:
        """One outcome per photo: the record itself, or every member of a batch."""
        tx_hash = tx_hash or item.tx_hash
        block = block if block is not None else item.block
        if item.kind == "record":
            return [AnchorOutcome(status, item.key, self.chain_id, self.registry_address, tx_hash, block, message)]
        return [AnchorOutcome(status, m.asset_id, self.chain_id, self.registry_address, tx_hash, block, message, item.key)
                for m in self.index.members(item.key)]

    # ------------------------------------------------------------------ revocation

    def revoke(self, asset_id_or_root: bytes, reason: str) -> str:
        """Revoke our record (16-byte asset id) or batch (32-byte root); returns the tx hash."""
        client = self._online()
        if len(asset_id_or_root) == 16:
            fn, key = "revokeRecord", asset_id_or_root
        elif len(asset_id_or_root) == 32:
            fn, key = "revokeBatch", asset_id_or_root
        else:
            raise TypeError("revoke takes a 16-byte asset id or a 32-byte batch root")
        try:
            receipt = client.transact(fn, key, reason)
        except TransactionError as exc:
            revert = getattr(exc, "revert", None)
            if revert is not None and revert.name == "NotFound":
                # Each publisher has its own slots: someone else's entry is "not found" here.
                raise NotFoundError(f"{client.sender} anchored nothing under {key.hex()}") from exc
            if revert is not None and revert.name == "AlreadyRevoked":
                raise TransactionError(f"{key.hex()} is already revoked", fix="nothing to do") from exc
            raise
        return str(receipt["transactionHash"])

    def raise_if_rejected(self, outcome: AnchorOutcome) -> None:
        if outcome.status is AnchorStatus.REJECTED:
            raise AssetTakenError(outcome.message)
