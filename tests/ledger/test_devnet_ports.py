"""Two homes on one machine: each devnet records its port, and a start whose port is held
by another home's node (or any other program) moves to the next free port and says so."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from shield.config import DEFAULT_ANVIL_PORT, Settings
from shield.ledger import Devnet, PortBusyError
from shield.ledger.devnet import _rpc

REPO = Path(__file__).resolve().parents[2]

needs_anvil = pytest.mark.skipif(not os.access(REPO / "node_modules/.bin/anvil", os.X_OK),
                                 reason="needs node_modules/.bin/anvil (run npm ci)")


def _home(settings: Settings, name: str, recorded: int | None) -> Settings:
    """Settings of another home under the test folder, without a configured port,
    whose devnet recorded ``recorded`` (None: never started)."""
    cfg = dataclasses.replace(settings, home=settings.home.parent / name).with_chain(anvil_port=None)
    if recorded is not None:
        chain = cfg.home / "chain"
        chain.mkdir(parents=True)
        (chain / "anvil.port").write_text(f"{recorded}\n")
    return cfg


@pytest.fixture()
def two_homes(settings: Settings, free_port: int) -> Iterator[tuple[Settings, Settings]]:
    """Two homes that both recorded ``free_port`` (as two homes both start on 8545)."""
    a, b = _home(settings, "a", free_port), _home(settings, "b", free_port)
    yield a, b
    for cfg in (a, b):
        Devnet(cfg).stop()


def test_a_home_without_a_recorded_or_configured_port_uses_8545(settings: Settings) -> None:
    assert Devnet(_home(settings, "fresh", None)).port == DEFAULT_ANVIL_PORT
    assert Devnet(_home(settings, "moved", 9123)).port == 9123
    assert Devnet(_home(settings, "pinned", 9123).with_chain(anvil_port=9200)).port == 9200


@needs_anvil
def test_second_home_moves_to_a_free_port_and_keeps_it(two_homes: tuple[Settings, Settings], free_port: int,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    a, b = two_homes
    first = Devnet(a)
    first.start()
    assert first.port == free_port
    second = Devnet(b)
    with caplog.at_level(logging.WARNING, logger="shield.ledger.devnet"):
        second.start()
    assert second.port != free_port
    [line] = [r.getMessage() for r in caplog.records]
    assert f"port {free_port} is used by the devnet of the shield home {a.home}" in line
    assert f"uses port {second.port} from now on" in line
    assert Devnet(b).recorded_port() == second.port
    # Each home's commands talk to their own node: two chains, two sets of blocks.
    assert Devnet(a).url == first.url and Devnet(b).url == second.url != first.url
    assert _rpc(Devnet(b).url, "eth_chainId") == "0x7a69"
    assert Devnet(a).status().running and Devnet(b).status().running
    # The first home stops: the second keeps its recorded port, stopped or running.
    assert Devnet(a).stop()
    assert Devnet(b).port == second.port
    assert Devnet(b).stop()
    assert Devnet(b).port == second.port and Devnet(b).url == second.url
    pid = Devnet(b).start()
    assert Devnet(b).port == second.port and Devnet(b).pid() == pid


@needs_anvil
def test_a_configured_port_is_never_moved(two_homes: tuple[Settings, Settings], free_port: int) -> None:
    a, b = two_homes
    Devnet(a).start()
    pinned = Devnet(b.with_chain(anvil_port=free_port))
    with pytest.raises(PortBusyError, match=f"port {free_port} is already used by the devnet of the shield home {a.home}"):
        pinned.start()
    assert Devnet(b).recorded_port() == free_port  # nothing recorded by the refused start
    assert "is used by the devnet of the shield home" in Devnet(b).status().message


def test_a_port_held_by_any_other_program_is_skipped_too(settings: Settings, free_port: int,
                                                        caplog: pytest.LogCaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """No node needed: the start stops right after the port was chosen."""
    from shield.ledger import DevnetError

    def no_node(self: Devnet, anvil: Path, port: int) -> int:
        raise DevnetError("anvil exited at start")

    monkeypatch.setattr(Devnet, "_launch", no_node)
    cfg = _home(settings, "c", free_port)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", free_port))
        holder.listen()
        devnet = Devnet(cfg)
        assert devnet.status().message == f"stopped; its recorded port {free_port} is used by another program"
        pinned = Devnet(_home(settings, "d", None).with_chain(anvil_port=free_port))
        assert pinned.status().message == f"stopped; its port {free_port} is used by another program"
        with caplog.at_level(logging.WARNING, logger="shield.ledger.devnet"), pytest.raises(DevnetError):
            devnet.start()
    assert f"port {free_port} is used by another program; this home's devnet uses port" in caplog.text
    assert devnet.recorded_port() == free_port  # a start that fails changes nothing


@needs_anvil
def test_a_port_taken_between_the_check_and_the_bind_is_chosen_again(
    settings: Settings, free_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two homes starting at once can both find a port free; the one whose node loses the
    bind picks the next port instead of failing (a configured port fails, clearly)."""
    from shield.ledger import devnet as devnet_module

    real = devnet_module._port_free
    lies = [free_port]  # the check sees the port free once, then the truth

    def racy(port: int) -> bool:
        if port in lies:
            lies.remove(port)
            return True
        return real(port)

    monkeypatch.setattr(devnet_module, "_port_free", racy)
    cfg = _home(settings, "racer", free_port)
    with socket.socket() as winner:
        winner.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        winner.bind(("127.0.0.1", free_port))
        winner.listen()
        pinned = Devnet(cfg.with_chain(anvil_port=free_port))
        with pytest.raises(PortBusyError, match=f"port {free_port} was taken by another program while"):
            pinned.start()
        devnet = Devnet(cfg)
        lies.append(free_port)
        try:
            devnet.start()
            assert devnet.port != free_port and devnet.recorded_port() == devnet.port
            assert _rpc(devnet.url, "eth_chainId") == "0x7a69"
        finally:
            devnet.stop()
