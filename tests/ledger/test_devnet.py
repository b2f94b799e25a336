"""Integration with a real anvil process (npm): persistence, crash safety, failure modes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from shield.config import Settings
from shield.ledger import (
    AnchorRequest,
    AnchorStatus,
    DeploymentMissingError,
    Devnet,
    PortBusyError,
    Ledger,
    StateCorruptError,
    audit,
    open_ledger,
)
from shield.ledger.client import record_key
from tests.ledger.conftest import make_keys

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.chain, pytest.mark.skipif(not os.access(REPO / "node_modules/.bin/anvil", os.X_OK),
                                                     reason="needs node_modules/.bin/anvil (run npm ci)")]

KEY = (0xC0FFEE).to_bytes(32, "big")
KEYS = make_keys("devnet test")


def _open(cfg: Settings, start_devnet: bool = True) -> Ledger:
    """Our publisher's ledger, registered (with its proof) whenever the chain is up."""
    ledger = open_ledger(cfg, KEY, publisher_keys=KEYS, start_devnet=start_devnet)
    if ledger.online:
        ledger.register_publisher(KEYS.cert_fingerprint, KEYS.watermark_public_key)
    return ledger


def _req() -> AnchorRequest:
    return AnchorRequest(os.urandom(16), os.urandom(32), os.urandom(32), os.urandom(32))


@pytest.fixture()
def chain_settings(settings: Settings, free_port: int) -> Iterator[Settings]:
    cfg = settings.with_chain(anvil_port=free_port)
    yield cfg
    Devnet(cfg).stop()


def test_records_survive_restart(chain_settings: Settings) -> None:
    ledger = _open(chain_settings)
    assert ledger.unavailable is None, ledger.unavailable
    single, members = _req(), [_req() for _ in range(3)]
    assert ledger.anchor(single).status is AnchorStatus.ANCHORED
    ledger.enqueue_batch(members)
    assert {o.status for o in ledger.drain()} == {AnchorStatus.ANCHORED}
    ledger.close()
    devnet = Devnet(chain_settings)
    pid = devnet.pid()
    assert pid is not None and devnet.stop()
    assert devnet.status().running is False
    ledger = _open(chain_settings)  # restarts anvil from the saved state
    assert devnet.pid() not in (None, pid)
    rec = ledger.lookup(single.asset_id)
    assert rec is not None and ledger.check(rec, single, None)
    rec = ledger.lookup(members[1].asset_id)
    assert rec is not None and ledger.check(rec, members[1], ledger.proof_for(members[1].asset_id))
    report = audit(chain_settings, ledger)
    kinds = sorted(e.kind for e in report.entries)
    assert kinds == ["batch", "batch-member", "batch-member", "batch-member", "publisher", "record"], report.entries
    assert all(e.flags == () for e in report.entries)  # registered with a proof that holds, nothing missing
    ledger.close()


_CRASHER = textwrap.dedent("""
    import os, sys, signal
    from shield.config import load_settings
    from shield.ledger import AnchorRequest, open_ledger
    from shield.ledger.client import RegistryClient
    mode, n = sys.argv[1], int(sys.argv[2])
    original = RegistryClient.broadcast
    calls = []
    def broadcast(self, raw):
        calls.append(1)
        if mode == "before-send" and len(calls) == n:
            os.kill(os.getpid(), signal.SIGKILL)
        original(self, raw)
        if mode == "after-send" and len(calls) == n:
            os.kill(os.getpid(), signal.SIGKILL)
    RegistryClient.broadcast = broadcast
    ledger = open_ledger(load_settings(), bytes.fromhex(sys.argv[3]))
    for i in range(5):
        ledger.enqueue(AnchorRequest(bytes([i + 1]) * 16, bytes([i]) * 32, bytes([i]) * 32, bytes([i]) * 32))
    ledger.enqueue_batch([AnchorRequest(bytes([100 + i]) * 16, bytes([i]) * 32, bytes([i]) * 32, bytes([i]) * 32)
                          for i in range(4)])
    print(len(ledger.drain()))
""")


@pytest.mark.parametrize("mode,n", [("before-send", 3), ("after-send", 3), ("after-send", 6)])
def test_kill9_mid_drain_loses_nothing_anchors_once(chain_settings: Settings, mode: str, n: int) -> None:
    env = {**os.environ, "SHIELD_HOME": str(chain_settings.home), "SHIELD_KEYS_DIR": str(chain_settings.keys_dir),
           "SHIELD_NODE_BIN": str(chain_settings.node_bin), "SHIELD_ANVIL_PORT": str(chain_settings.chain.anvil_port)}
    _open(chain_settings).close()  # deploys the registry and registers the publisher
    proc = subprocess.run([sys.executable, "-c", _CRASHER, mode, str(n), KEY.hex()], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    ledger = _open(chain_settings)
    outcomes = ledger.drain()
    assert all(o.status is AnchorStatus.ANCHORED for o in outcomes)
    assert not ledger.outbox.open_items()
    client = ledger.client
    assert client is not None
    address = Account.from_key(KEY).address
    ids = [bytes([i + 1]) * 16 for i in range(5)]
    assert all(r.exists for r in client.raw_records([record_key(address, i) for i in ids]))
    # Exactly one Anchored event per id and one batch: nothing was anchored twice.
    anchored = [bytes(e["topics"][1])[:16] for e in client.logs("Anchored", 0)]
    assert sorted(anchored) == sorted(ids)
    assert len(list(client.logs("BatchAnchored", 0))) == 1
    address = Account.from_key(KEY).address
    # deploy + registration + 5 records + 1 batch: no extra sends
    assert client.w3.eth.get_transaction_count(address) == 8
    ledger.close()


def test_chain_down_queues_then_drains(chain_settings: Settings) -> None:
    ledger = _open(chain_settings, start_devnet=False)
    assert ledger.unavailable is not None
    req = _req()
    out = ledger.anchor(req)
    assert out.status is AnchorStatus.QUEUED and out.tx_hash is None
    ledger.close()
    remote_down = chain_settings.with_chain(rpc_url=f"http://127.0.0.1:{chain_settings.chain.anvil_port}", chain_id=31337)
    ledger = _open(remote_down)
    assert ledger.anchor(_req()).status is AnchorStatus.QUEUED
    ledger.close()
    ledger = _open(chain_settings)
    outs = ledger.drain()
    assert len(outs) == 2 and all(o.status is AnchorStatus.ANCHORED for o in outs)
    assert ledger.lookup(req.asset_id) is not None
    ledger.close()


def test_busy_port_stale_pid_corrupt_state_lost_deployment(chain_settings: Settings) -> None:
    devnet = Devnet(chain_settings)
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", chain_settings.chain.anvil_port))
        busy.listen()
        with pytest.raises(PortBusyError):
            devnet.start()
    devnet.dir.mkdir(parents=True, exist_ok=True)
    devnet.pid_file.write_text("999999")
    assert devnet.pid() is None and not devnet.pid_file.exists()
    ledger = _open(chain_settings)
    assert ledger.anchor(_req()).status is AnchorStatus.ANCHORED
    ledger.close()
    devnet.stop()
    good = devnet.state_file.read_bytes()
    devnet.state_file.write_bytes(good[: len(good) // 2])
    with pytest.raises(StateCorruptError):
        devnet.start()
    assert devnet.state_file.read_bytes() == good[: len(good) // 2]  # never reset silently
    devnet.state_file.unlink()  # the user moves it aside: an empty chain, the old registry is gone
    devnet.start()
    ledger = _open(chain_settings)
    assert isinstance(ledger.unavailable, DeploymentMissingError)
    assert ledger.anchor(_req()).status is AnchorStatus.QUEUED
    ledger.close()


def test_stop_waits_until_the_node_has_let_go_of_its_port(chain_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node whose main thread has exited can still hold its socket for a moment."""
    import threading
    import time

    from shield.ledger import devnet as devnet_module

    devnet = Devnet(chain_settings)
    devnet.dir.mkdir(parents=True, exist_ok=True)
    devnet.pid_file.write_text(str(os.getpid()))
    monkeypatch.setattr(devnet_module, "_is_our_anvil", lambda pid, state: True)
    monkeypatch.setattr(devnet_module.os, "kill", lambda pid, sig: None)
    calls = iter([True])  # alive when stop() looks it up, then gone at once
    monkeypatch.setattr(devnet_module, "_pid_alive", lambda pid: next(calls, False))
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", chain_settings.chain.anvil_port))
    holder.listen()
    released = threading.Event()

    def release_later() -> None:
        time.sleep(0.5)
        holder.close()
        released.set()

    threading.Thread(target=release_later, daemon=True).start()
    assert devnet.stop() is True
    assert released.is_set() and not devnet.pid_file.exists()
