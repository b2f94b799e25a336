"""Two homes on one machine: while this home's devnet is stopped, its reads never go to the
node of another home that listens on the same port (that chain is not this home's: its
answers would read as "registry not on chain (state lost)"). They fail with the typed
"node not running" error that says `shield chain up`.

No anvil needed: the other home's node is a small JSON-RPC server that answers like an
anvil without this home's registry, and counts what it is asked.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shield.config import Settings
from shield.ledger import Devnet, open_ledger, open_reader
from shield.ledger.deployment import Deployment, write_deployment
from shield.ledger.errors import ChainUnavailableError, DeploymentMissingError

REGISTRY = "0x" + "5e" * 20


class _OtherNode:
    """A node on chain 31337 whose state has no contract at all (another home's chain)."""

    def __init__(self) -> None:
        self.methods: list[str] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.methods.append(str(body["method"]))
                result = {"eth_chainId": "0x7a69", "eth_getCode": "0x", "eth_blockNumber": "0x5"}.get(body["method"])
                out = json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": result}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture()
def other_node() -> Iterator[_OtherNode]:
    node = _OtherNode()
    node.thread.start()
    yield node
    node.server.shutdown()
    node.server.server_close()


@pytest.fixture()
def stopped_home(settings: Settings, other_node: _OtherNode) -> Settings:
    """A home whose devnet recorded the other node's port (two homes both started on 8545,
    this one first) and deployed its registry there, now stopped."""
    cfg = dataclasses.replace(settings, home=settings.home.parent / "stopped").with_chain(anvil_port=None)
    (cfg.home / "chain").mkdir(parents=True)
    (cfg.home / "chain" / "anvil.port").write_text(f"{other_node.port}\n")
    write_deployment(cfg, Deployment(31337, REGISTRY, 1, "0x" + "00" * 32, "", "2026-01-01T00:00:00+00:00"))
    return cfg


def test_the_other_node_would_read_as_state_lost(stopped_home: Settings, other_node: _OtherNode) -> None:
    """What asking the other home's node would say (the wrong answer the guard prevents)."""
    reader = open_reader(stopped_home.with_chain(rpc_url=other_node.url, chain_id=31337))
    assert isinstance(reader.unavailable, DeploymentMissingError), reader.unavailable
    assert "eth_getCode" in other_node.methods
    reader.close()


def test_verify_reads_in_a_stopped_home_say_node_not_running(stopped_home: Settings, other_node: _OtherNode) -> None:
    devnet = Devnet(stopped_home)
    assert devnet.url == other_node.url and devnet.pid() is None
    reader = open_reader(stopped_home)
    try:
        exc = reader.unavailable
        assert type(exc) is ChainUnavailableError, exc
        assert f"the local devnet of the home {stopped_home.home} is not running ({other_node.url})" in str(exc)
        assert "shield chain up" in exc.fix
        assert not reader.online
    finally:
        reader.close()
    assert other_node.methods == []  # the other home's node was never asked
    assert sorted(p.name for p in (stopped_home.home / "chain").iterdir()) == ["anvil.port", "deployment.json"]


def test_ledger_reads_in_a_stopped_home_say_node_not_running(stopped_home: Settings, other_node: _OtherNode) -> None:
    for account in (None, (0xA11CE).to_bytes(32, "big")):
        ledger = open_ledger(stopped_home, account, start_devnet=False)
        try:
            exc = ledger.unavailable
            assert type(exc) is ChainUnavailableError, exc
            assert "is not running" in str(exc) and "shield chain up" in exc.fix
            assert not ledger.online and ledger.registry_address == REGISTRY  # still shown, from the home
        finally:
            ledger.close()
    assert other_node.methods == []
