"""The standard-library JSON-RPC client: every failure of a node is a typed error, fast."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shield.ledger import abi
from shield.ledger.errors import ChainUnavailableError
from shield.ledger.rpc import JsonRpc, RpcError, RpcRegistry

Reply = Callable[[dict[str, Any]], bytes]


def _serve(reply: Reply) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            data = reply(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def logs_node() -> Iterator[str]:
    """A node that refuses log ranges over 4 blocks and answers eth_call with an address[]."""
    address = bytes(range(20))

    def reply(req: dict[str, Any]) -> bytes:
        method, params = req["method"], req["params"]
        if method == "eth_blockNumber":
            result: Any = hex(10)
        elif method == "eth_getLogs":
            span = int(params[0]["toBlock"], 16) - int(params[0]["fromBlock"], 16) + 1
            if span > 4:
                return json.dumps({"jsonrpc": "2.0", "id": req["id"],
                                   "error": {"code": -32005, "message": "range too large"}}).encode()
            result = [{"topics": ["0x" + "11" * 32], "data": "0x" + "ab" * 4, "blockNumber": params[0]["fromBlock"],
                       "transactionHash": "0x" + "cd" * 32}]
        elif method == "eth_call":
            result = "0x" + (abi.word_uint(32) + abi.word_uint(1) + abi.word_address("0x" + address.hex())).hex()
        else:
            result = None
        return json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": result}).encode()

    yield from _serve(reply)


def test_logs_are_chunked_and_the_window_shrinks(logs_node: str) -> None:
    registry = RpcRegistry(JsonRpc(logs_node), "0x" + "00" * 20)
    entries = list(registry.logs("Anchored", 0))
    # 50,000 blocks halved until the node accepts (3, the first size under 5): 11 blocks in 4 windows
    assert [e["blockNumber"] for e in entries] == [0, 3, 6, 9]
    assert entries[0]["data"] == b"\xab" * 4 and entries[0]["transactionHash"] == b"\xcd" * 32
    assert abi.decode_address_array(registry.call(b"\x00" * 4)) == [abi.checksum(bytes(range(20)))]


def test_refused_connection_is_fast_and_suggests_chain_up() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    rpc = JsonRpc(f"http://127.0.0.1:{port}", fix="run `shield chain up` to start the local devnet")
    t0 = time.perf_counter()
    with pytest.raises(ChainUnavailableError) as err:
        rpc.chain_id()
    assert time.perf_counter() - t0 < 1.0
    assert "refuses connections" in str(err.value) and "shield chain up" in err.value.fix


def test_silent_node_times_out() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)  # accepts the connection, never answers
        rpc = JsonRpc(f"http://127.0.0.1:{server.getsockname()[1]}", timeout_s=0.3)
        t0 = time.perf_counter()
        with pytest.raises(ChainUnavailableError) as err:
            rpc.block_number()
        assert time.perf_counter() - t0 < 2.0 and "did not answer within 0.3 s" in str(err.value)


@pytest.mark.parametrize("body", [b"<html>proxy error</html>", b"[1, 2]", b'{"jsonrpc": "2.0", "id": 1}',
                                  b'{"jsonrpc": "2.0", "id": 1, "result": "12"}',
                                  b'{"jsonrpc": "2.0", "id": 1, "result": "0xzz"}'])
def test_garbage_answers_are_typed_errors(body: bytes) -> None:
    for url in _serve(lambda req: body):
        with pytest.raises(ChainUnavailableError):
            JsonRpc(url).chain_id()


def test_error_object_is_an_rpc_error() -> None:
    answer = b'{"jsonrpc": "2.0", "id": 1, "error": {"code": 3, "message": "execution reverted"}}'
    for url in _serve(lambda req: answer):
        with pytest.raises(RpcError) as err:
            RpcRegistry(JsonRpc(url), "0x" + "00" * 20).call(b"\x01\x02\x03\x04")
        assert err.value.code == 3 and "execution reverted" in str(err.value)


def test_not_http_is_refused() -> None:
    with pytest.raises(ChainUnavailableError):
        JsonRpc("file:///etc/passwd")


def test_hostile_abi_answers_are_bounded() -> None:
    huge = abi.word_uint(32) + abi.word_uint(1 << 40)  # claims 2^40 elements
    with pytest.raises(ChainUnavailableError):
        abi.decode_words_array(huge)
    short = abi.word_uint(32) + abi.word_uint(3) + abi.word_uint(1)  # 3 announced, 1 sent
    with pytest.raises(ChainUnavailableError):
        abi.decode_words_array(short)
    with pytest.raises(ChainUnavailableError):
        abi.decode_bytes(abi.word_uint(1 << 200))  # offset beyond the answer
