"""A read-only Ethereum JSON-RPC client over the standard library (urllib), for the
reads ``shield verify`` makes: no web3 (about 1.5 s of a cold start) is imported.

:class:`JsonRpc` sends one request with a timeout and turns every failure into a typed
ledger error; :class:`RpcRegistry` is the registry's read side on top of it (the
:class:`~shield.ledger.reads.ChainReads` a :class:`~shield.ledger.reader.LedgerReader`
reads through): ``eth_call`` to the registry, chunked ``eth_getLogs``, chain id, code.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from shield.ledger.abi import checksum, event_topic
from shield.ledger.errors import ChainUnavailableError

__all__ = ["JsonRpc", "RpcRegistry", "RpcError", "TIMEOUT_S", "MAX_RESPONSE_BYTES"]

log = logging.getLogger(__name__)

#: Seconds one request may take (connect and answer): a verifier says "could not check"
#: after this rather than hang.
TIMEOUT_S = 5.0
#: Largest answer read from a node (a log query over a busy range is the biggest): a
#: hostile or broken node cannot make the reader buffer without bound.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Attempts on a dropped connection (not on a refused one: nothing listens, retrying waits for nothing).
ATTEMPTS = 2
#: Largest block range asked in one eth_getLogs; halved when the node refuses a range.
MAX_LOG_WINDOW = 50_000
MIN_LOG_WINDOW = 1

#: Event signatures of the registry (ShieldRegistry.sol).
EVENTS = {
    "Anchored": "Anchored(bytes16,address,bytes32,bytes32,bytes32,bytes32)",
    "BatchAnchored": "BatchAnchored(bytes32,address,uint32,bytes)",
    "RecordRevoked": "RecordRevoked(bytes16,address,string)",
    "BatchRevoked": "BatchRevoked(bytes32,address,string)",
    "PublisherRegistered": "PublisherRegistered(address,uint32,bytes32,bytes32)",
}


class RpcError(ChainUnavailableError):
    """The node answered a JSON-RPC error (``code`` and ``message`` as it sent them)."""

    def __init__(self, message: str, *, code: int | None = None, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.code = code


def _unhex(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ChainUnavailableError(f"malformed answer from the Ethereum node ({what})")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise ChainUnavailableError(f"malformed answer from the Ethereum node ({what})") from exc


def _quantity(value: object, what: str) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ChainUnavailableError(f"malformed answer from the Ethereum node ({what})")
    try:
        return int(value, 16)
    except ValueError as exc:
        raise ChainUnavailableError(f"malformed answer from the Ethereum node ({what})") from exc


class JsonRpc:
    """One Ethereum node over HTTP(S).

    Args:
        url: the node's JSON-RPC endpoint.
        timeout_s: seconds per request.
        fix: what to tell the user when the node does not answer (the embedded devnet
            suggests ``shield chain up``).
    """

    def __init__(self, url: str, *, timeout_s: float = TIMEOUT_S, fix: str | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ChainUnavailableError(f"not an HTTP JSON-RPC endpoint: {url!r}", fix="set SHIELD_RPC_URL to http(s)://...")
        self.url = url
        self.timeout_s = timeout_s
        self.fix = fix
        self._id = 0

    def request(self, method: str, params: list[Any]) -> Any:
        """The ``result`` of ``method(params)``.

        Raises:
            ChainUnavailableError: no answer (refused, timed out, dropped), or not JSON-RPC.
            RpcError: the node answered with an error object.
        """
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - http(s) checked above
                    raw = resp.read(MAX_RESPONSE_BYTES + 1)
                break
            except urllib.error.HTTPError as exc:
                raise ChainUnavailableError(f"{method}: the Ethereum node at {self.url} answered HTTP {exc.code}",
                                            fix=self.fix) from exc
            except (urllib.error.URLError, OSError) as exc:
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                refused = isinstance(reason, ConnectionRefusedError)
                timed_out = isinstance(reason, (TimeoutError, socket.timeout))
                if refused or timed_out or attempt == ATTEMPTS:
                    what = "refuses connections" if refused else (
                        f"did not answer within {self.timeout_s:g} s" if timed_out else f"does not answer ({reason})")
                    raise ChainUnavailableError(f"{method}: the Ethereum node at {self.url} {what}", fix=self.fix) from exc
                log.debug("%s failed (%s), retrying", method, exc)
                time.sleep(0.1)
        if len(raw) > MAX_RESPONSE_BYTES:
            raise ChainUnavailableError(f"{method}: the node's answer is larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ChainUnavailableError(f"{method}: {self.url} did not answer JSON-RPC", fix=self.fix) from exc
        if not isinstance(doc, dict):
            raise ChainUnavailableError(f"{method}: {self.url} did not answer JSON-RPC", fix=self.fix)
        if "error" in doc:
            err = doc["error"] if isinstance(doc["error"], dict) else {"message": str(doc["error"])}
            raw_code = err.get("code")
            code = raw_code if isinstance(raw_code, int) else None
            raise RpcError(f"{method}: the node answered an error: {err.get('message')}", code=code)
        if "result" not in doc:
            raise ChainUnavailableError(f"{method}: {self.url} did not answer JSON-RPC", fix=self.fix)
        return doc["result"]

    def chain_id(self) -> int:
        return _quantity(self.request("eth_chainId", []), "eth_chainId")

    def block_number(self) -> int:
        return _quantity(self.request("eth_blockNumber", []), "eth_blockNumber")

    def code(self, address: str) -> bytes:
        return _unhex(self.request("eth_getCode", [address, "latest"]), "eth_getCode")


class RpcRegistry:
    """The registry's reads over :class:`JsonRpc` (what :class:`~shield.ledger.reads.ChainReads` asks)."""

    def __init__(self, rpc: JsonRpc, address: str) -> None:
        self.rpc = rpc
        self.address = checksum(bytes.fromhex(address.removeprefix("0x")))
        self._topics = {name: "0x" + event_topic(sig).hex() for name, sig in EVENTS.items()}

    def call(self, data: bytes) -> bytes:
        """eth_call of the registry with calldata ``data`` at the latest block.

        Raises:
            RpcError: the call reverted (or the node refused it).
        """
        return _unhex(self.rpc.request("eth_call", [{"to": self.address, "data": "0x" + data.hex()}, "latest"]),
                      "eth_call")

    def block_number(self) -> int:
        return self.rpc.block_number()

    def logs(self, event: str, from_block: int, to_block: int | None = None,
             key_topic: bytes | None = None, publisher_topic: str | None = None) -> Iterator[dict[str, Any]]:
        """Logs of ``event`` in [from_block, to_block] as plain values (topics, data and
        transactionHash as bytes, blockNumber as int), fetched in chunks whose window
        halves whenever the node refuses a range (public nodes cap ranges)."""
        end = self.block_number() if to_block is None else to_block
        topics: list[str | None] = [self._topics[event]]
        if key_topic is not None or publisher_topic is not None:
            topics.append(None if key_topic is None else "0x" + key_topic.ljust(32, b"\0").hex())
        if publisher_topic is not None:
            topics.append("0x" + bytes.fromhex(publisher_topic.removeprefix("0x")).rjust(32, b"\0").hex())
        window, start = MAX_LOG_WINDOW, from_block
        while start <= end:
            stop = min(end, start + window - 1)
            params = {"address": self.address, "fromBlock": hex(start), "toBlock": hex(stop), "topics": topics}
            try:
                result = self.rpc.request("eth_getLogs", [params])
            except RpcError as exc:
                if window <= MIN_LOG_WINDOW:
                    raise ChainUnavailableError(f"the node refuses log queries even over {window} blocks: {exc}") from exc
                window = max(MIN_LOG_WINDOW, window // 2)
                log.info("eth_getLogs refused %d blocks, shrinking the window to %d", stop - start + 1, window)
                continue
            if not isinstance(result, list):
                raise ChainUnavailableError("malformed answer from the Ethereum node (eth_getLogs)")
            for entry in result:
                if not isinstance(entry, dict) or not isinstance(entry.get("topics"), list):
                    raise ChainUnavailableError("malformed answer from the Ethereum node (eth_getLogs)")
                yield {
                    "topics": [_unhex(t, "log topic") for t in entry["topics"]],
                    "data": _unhex(entry.get("data"), "log data"),
                    "blockNumber": _quantity(entry.get("blockNumber"), "log block"),
                    "transactionHash": _unhex(entry.get("transactionHash"), "log tx"),
                }
            start = stop + 1
