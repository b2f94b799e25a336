"""Thin web3 adapter for the ShieldRegistry contract: reads, signed EIP-1559 transactions,
retries with backoff, revert decoding and chunked event queries.

Everything chain-facing goes through :class:`RegistryClient`; the pure parts (hashing,
Merkle proofs, storage-word decoding) live elsewhere so they can be tested without a node.
"""

from __future__ import annotations

import ast
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from shield.ledger.artifact import Artifact
from shield.ledger.errors import (
    ChainIdMismatchError,
    ChainUnavailableError,
    NoAccountError,
    TransactionError,
)
from shield.ledger.reads import MAX_CLAIMANTS
from shield.ledger.storage import RawBatch, RawRecord, batch_key, decode_batch_word, decode_record_word, record_key

__all__ = [
    "RegistryClient",
    "RawRecord",
    "RawBatch",
    "Revert",
    "SentTx",
    "connect",
    "deploy",
    "decode_record_word",
    "decode_batch_word",
    "as_account",
    "record_key",
    "batch_key",
    "MAX_CLAIMANTS",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Attempts for one RPC call on connection errors, with exponential backoff from BACKOFF_S.
RPC_ATTEMPTS = 4
BACKOFF_S = 0.25
#: Gas estimate head-room: storage refunds and block changes between estimate and mining.
GAS_MARGIN = 1.25
#: Tip used when the node cannot suggest one (1 gwei).
DEFAULT_TIP_WEI = 1_000_000_000
#: Largest block range asked of a node in one eth_getLogs; halved on "range too large".
MAX_LOG_WINDOW = 50_000
MIN_LOG_WINDOW = 1
#: Seconds to wait for a receipt before leaving the transaction to a later drain.
RECEIPT_TIMEOUT_S = 60.0


def as_account(key: bytes | LocalAccount | None) -> LocalAccount | None:
    if key is None or isinstance(key, LocalAccount):
        return key
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise TypeError("account_key must be 32 raw bytes or a LocalAccount")
    account: LocalAccount = Account.from_key(bytes(key))
    return account


@dataclass(frozen=True)
class Revert:
    """A decoded custom error: name and arguments."""

    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class SentTx:
    tx_hash: str
    raw: bytes
    nonce: int


def _unhex(value: object) -> bytes:
    return bytes(value) if isinstance(value, (bytes, bytearray)) else bytes.fromhex(str(value).removeprefix("0x"))


def _log_entry(entry: Any) -> dict[str, Any]:
    """A log as plain values: topics/data/transactionHash as bytes, blockNumber as int."""
    block = entry["blockNumber"]
    return {
        "topics": [_unhex(t) for t in entry["topics"]],
        "data": _unhex(entry["data"]),
        "blockNumber": block if isinstance(block, int) else int(str(block), 16),
        "transactionHash": _unhex(entry["transactionHash"]),
    }


def _retry(what: str, fn: Callable[[], T], attempts: int = RPC_ATTEMPTS) -> T:
    """Call ``fn``, retrying connection failures with exponential backoff."""
    delay = BACKOFF_S
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except (ConnectionError, OSError, TimeoutError) as exc:
            if attempt == attempts:
                raise ChainUnavailableError(f"{what}: the Ethereum node does not answer ({type(exc).__name__})") from exc
            log.debug("%s failed (%s), retry %d in %.2fs", what, exc, attempt, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def connect(rpc_url: str, *, timeout_s: float = 10.0) -> Web3:
    """A Web3 over HTTP; does not contact the node."""
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))


def _fees(w3: Web3) -> dict[str, int]:
    """EIP-1559 fee fields: tip from the node (fallback 1 gwei), cap = 2 x base fee + tip."""
    base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
    try:
        tip = int(w3.eth.max_priority_fee)
    except (Web3RPCError, ValueError):
        tip = DEFAULT_TIP_WEI
    return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip}


def deploy(w3: Web3, artifact: Artifact, account: LocalAccount) -> tuple[str, int, str]:
    """Deploy the registry; return (address, block, tx hash)."""
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx: dict[str, Any] = {
        "from": account.address,
        "nonce": _retry("nonce", lambda: w3.eth.get_transaction_count(account.address, "pending")),
        "chainId": w3.eth.chain_id,
        **_fees(w3),
    }
    tx = dict(factory.constructor().build_transaction(tx))
    # Head-room: a node may estimate at block 0, where the constructor's write of the
    # deployment block stores zero and is priced 20k gas too low.
    tx["gas"] = int(int(tx["gas"]) * GAS_MARGIN)
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
    address = receipt.get("contractAddress")
    if receipt["status"] != 1 or address is None:
        raise TransactionError("deploying the registry failed")
    return to_checksum_address(address), int(receipt["blockNumber"]), "0x" + bytes(tx_hash).hex()


class RegistryClient:
    """Reads and writes one deployed ShieldRegistry.

    Args:
        w3: connected Web3.
        address: registry address.
        artifact: compiled artifact (ABI).
        account: signer for transactions, or None for read-only use.
    """

    def __init__(self, w3: Web3, address: str, artifact: Artifact, account: LocalAccount | None = None) -> None:
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.contract = w3.eth.contract(address=self.address, abi=artifact.abi)
        self.account = account
        self._errors = {
            keccak(text=f"{e['name']}({','.join(i['type'] for i in e['inputs'])})")[:4]: e
            for e in artifact.abi
            if e.get("type") == "error"
        }
        self._topics = {
            e["name"]: "0x" + keccak(text=f"{e['name']}({','.join(i['type'] for i in e['inputs'])})").hex()
            for e in artifact.abi
            if e.get("type") == "event"
        }

    # ------------------------------------------------------------------ basics

    def chain_id(self) -> int:
        return _retry("eth_chainId", lambda: int(self.w3.eth.chain_id))

    def check_chain_id(self, expected: int | None) -> int:
        actual = self.chain_id()
        if expected is not None and actual != expected:
            raise ChainIdMismatchError(f"the node is on chain {actual}, the configuration says {expected}")
        return actual

    def code(self) -> bytes:
        return bytes(_retry("eth_getCode", lambda: self.w3.eth.get_code(self.address)))

    def block_number(self) -> int:
        return _retry("eth_blockNumber", lambda: int(self.w3.eth.block_number))

    def topic(self, event: str) -> str:
        return self._topics[event]

    @property
    def sender(self) -> str:
        if self.account is None:
            raise NoAccountError("this ledger was opened without an account key")
        return str(self.account.address)

    # ------------------------------------------------------------------ reads

    def call(self, data: bytes) -> bytes:
        """eth_call of the registry with raw calldata (the reads decode by hand, shield.ledger.abi)."""
        return bytes(_retry("eth_call", lambda: self.w3.eth.call({"to": self.address, "data": data})))

    def record(self, publisher: str, asset_id: bytes) -> RawRecord:
        return self.raw_records([record_key(publisher, asset_id)])[0]

    def _words(self, signature: str, arg_type: str, values: Sequence[bytes]) -> list[bytes]:
        """Call a ``f(T[]) returns (bytes32[])`` view; encoded and split by hand because
        web3's generic ABI decoding dominated the audit of 10^4 records."""
        data = keccak(text=signature)[:4] + self.w3.codec.encode([arg_type], [list(values)])
        out = bytes(_retry(signature, lambda: self.w3.eth.call({"to": self.address, "data": data})))
        count = int.from_bytes(out[32:64], "big")
        if len(out) != 64 + 32 * count or count != len(values):
            raise ChainUnavailableError(f"{signature}: malformed answer from the node")
        return [out[64 + 32 * i: 96 + 32 * i] for i in range(count)]

    def raw_records(self, keys: Sequence[bytes]) -> list[RawRecord]:
        """Records by storage key (:func:`record_key`)."""
        words = self._words("rawRecords(bytes32[])", "bytes32[]", [bytes(k) for k in keys])
        return [decode_record_word(w) for w in words]

    def batch(self, publisher: str, root: bytes) -> RawBatch:
        return self.raw_batches([batch_key(publisher, root)])[0]

    def raw_batches(self, keys: Sequence[bytes]) -> list[RawBatch]:
        """Batches by storage key (:func:`batch_key`)."""
        words = self._words("rawBatches(bytes32[])", "bytes32[]", [bytes(k) for k in keys])
        return [decode_batch_word(w) for w in words]

    def publisher_address(self, publisher_id: int) -> str | None:
        addr = _retry("publisherAddress", self.contract.functions.publisherAddress(publisher_id).call)
        return None if int(addr, 16) == 0 else to_checksum_address(addr)

    def publisher_of(self, address: str) -> tuple[bytes, bytes, int, int]:
        """(cert fingerprint, watermark key, registeredAt, id); zeros when unknown."""
        fn = self.contract.functions.publisherOf(to_checksum_address(address))
        cert, wm, at, pid = _retry("publisherOf", fn.call)
        return bytes(cert), bytes(wm), int(at), int(pid)

    def publisher_proof(self, address: str) -> bytes:
        """The registration proof stored for ``address`` (empty when none)."""
        fn = self.contract.functions.publisherProof(to_checksum_address(address))
        return bytes(_retry("publisherProof", fn.call))

    def is_batch_member(self, publisher: str, root: bytes, fields: tuple[bytes, bytes, bytes, bytes, bytes],
                        proof: Sequence[bytes]) -> bool:
        """ShieldRegistry.isBatchMember; ``fields`` as AnchorRequest.chain_fields."""
        fn = self.contract.functions.isBatchMember(to_checksum_address(publisher), root, *fields, list(proof))
        return bool(_retry("isBatchMember", fn.call))

    # ------------------------------------------------------------------ writes

    def decode_revert(self, exc: Exception) -> Revert | None:
        """The custom error inside a revert, if it is one of the registry's."""
        data = getattr(exc, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        if data is None and exc.args and isinstance(exc.args[0], str) and "reverted: b" in exc.args[0]:
            try:
                data = "0x" + ast.literal_eval(exc.args[0].split("reverted: ", 1)[1]).hex()
            except (ValueError, SyntaxError, AttributeError):
                data = None
        if not isinstance(data, str) or not data.startswith("0x") or len(data) < 10:
            return None
        raw = bytes.fromhex(data[2:])
        spec = self._errors.get(raw[:4])
        if spec is None:
            return None
        types = [i["type"] for i in spec["inputs"]]
        return Revert(spec["name"], tuple(self.w3.codec.decode(types, raw[4:])))

    def prepare(self, fn_name: str, *args: Any) -> SentTx:
        """Estimate, then sign a transaction calling ``fn_name(*args)`` (not yet sent).

        Raises:
            TransactionError: the call would revert (``.revert`` holds the decoded error).
        """
        account = self.account
        if account is None:
            raise NoAccountError("this ledger was opened without an account key")
        call = getattr(self.contract.functions, fn_name)(*args)
        try:
            gas = _retry("eth_estimateGas", lambda: call.estimate_gas({"from": account.address}))
        except ChainUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001 - narrowed just below
            # web3 raises ContractLogicError; the in-process eth-tester raises its own
            # TransactionFailed carrying the same revert data.
            if not isinstance(exc, ContractLogicError) and type(exc).__name__ != "TransactionFailed":
                raise
            revert = self.decode_revert(exc)
            err = TransactionError(f"{fn_name} would revert: {revert or exc}")
            err.revert = revert  # type: ignore[attr-defined]
            raise err from exc
        nonce = _retry("nonce", lambda: self.w3.eth.get_transaction_count(account.address, "pending"))
        tx = call.build_transaction(
            {
                "from": account.address,
                "nonce": nonce,
                "gas": int(gas * GAS_MARGIN),
                "chainId": self.chain_id(),
                **_retry("fees", lambda: _fees(self.w3)),
            }
        )
        signed = account.sign_transaction(tx)
        return SentTx(tx_hash="0x" + bytes(signed.hash).hex(), raw=bytes(signed.raw_transaction), nonce=nonce)

    def broadcast(self, raw: bytes) -> None:
        """Send a signed transaction; a node that already knows it is not an error."""
        try:
            _retry("eth_sendRawTransaction", lambda: self.w3.eth.send_raw_transaction(raw))
        except Web3RPCError as exc:
            text = str(exc).lower()
            if "already known" in text or "already imported" in text:
                return
            raise TransactionError(f"the node rejected the transaction: {exc}") from exc

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        try:
            return dict(_retry("eth_getTransactionReceipt", lambda: self.w3.eth.get_transaction_receipt(tx_hash)))  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def known_tx(self, tx_hash: str) -> bool:
        try:
            _retry("eth_getTransactionByHash", lambda: self.w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
            return True
        except TransactionNotFound:
            return False

    def wait_receipt(self, tx_hash: str, timeout_s: float = RECEIPT_TIMEOUT_S, poll_s: float = 0.05) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout_s
        while True:
            receipt = self.receipt(tx_hash)
            if receipt is not None or time.monotonic() > deadline:
                return receipt
            time.sleep(poll_s)
            poll_s = min(poll_s * 2, 1.0)

    def transact(self, fn_name: str, *args: Any) -> dict[str, Any]:
        """Prepare, send and wait: for rare operations (register, revoke) with no outbox."""
        sent = self.prepare(fn_name, *args)
        self.broadcast(sent.raw)
        receipt = self.wait_receipt(sent.tx_hash)
        if receipt is None:
            raise TransactionError(f"{fn_name}: no receipt for {sent.tx_hash} after {RECEIPT_TIMEOUT_S:.0f}s")
        if receipt["status"] != 1:
            raise TransactionError(f"{fn_name}: transaction {sent.tx_hash} reverted")
        receipt["transactionHash"] = sent.tx_hash
        return receipt

    # ------------------------------------------------------------------ events

    def _get_logs(self, params: dict[str, Any]) -> dict[str, Any]:
        """eth_getLogs as a JSON-RPC response dict ({"result": [...]} or {"error": ...})."""
        if isinstance(self.w3.provider, HTTPProvider):
            return dict(self.w3.provider.make_request(RPCEndpoint("eth_getLogs"), [params]))
        # In-process providers (eth-tester) need web3's request formatting.
        try:
            query: Any = {**params, "fromBlock": int(params["fromBlock"], 16), "toBlock": int(params["toBlock"], 16)}
            return {"result": self.w3.eth.get_logs(query)}
        except Web3RPCError as exc:
            return {"error": str(exc)}

    def logs(self, event: str, from_block: int, to_block: int | None = None,
             key_topic: bytes | None = None, publisher_topic: str | None = None) -> Iterator[dict[str, Any]]:
        """Raw logs of ``event`` in [from_block, to_block], fetched in chunks.

        The window starts at MAX_LOG_WINDOW and halves whenever the node refuses a range
        (public nodes cap ranges or result sizes), down to MIN_LOG_WINDOW.
        """
        end = self.block_number() if to_block is None else to_block
        window = MAX_LOG_WINDOW
        start = from_block
        topics: list[str | None] = [self.topic(event)]
        if key_topic is not None or publisher_topic is not None:
            topics.append(None if key_topic is None else "0x" + key_topic.ljust(32, b"\0").hex())
        if publisher_topic is not None:
            topics.append("0x" + bytes.fromhex(publisher_topic.removeprefix("0x")).rjust(32, b"\0").hex())
        while start <= end:
            stop = min(end, start + window - 1)
            params = {"address": self.address, "fromBlock": hex(start), "toBlock": hex(stop), "topics": topics}
            # Raw RPC: web3's per-log result formatting dominated the time of auditing 10^4 records.
            response = _retry("eth_getLogs", lambda: self._get_logs(params))
            if "error" in response:
                if window <= MIN_LOG_WINDOW:
                    raise ChainUnavailableError(f"the node refuses log queries even over {window} blocks: "
                                                f"{response['error']}")
                window = max(MIN_LOG_WINDOW, window // 2)
                log.info("eth_getLogs refused %d blocks, shrinking the window to %d", stop - start + 1, window)
                continue
            chunk = [_log_entry(e) for e in response["result"]]
            yield from (dict(entry) for entry in chunk)
            start = stop + 1
