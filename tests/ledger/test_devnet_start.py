"""Finding the node tools, and Devnet.start against node programs that fail: one that exits at once, one that never answers."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import pytest

from shield.config import Settings, find_node_tool
from shield.ledger import Devnet, DevnetError
from shield.ledger import devnet as devnet_module

REPO_BIN = Path(__file__).resolve().parents[2] / "node_modules" / ".bin"


def _fake_node(folder: Path, body: str) -> Path:
    """A Python program named ``anvil`` in ``folder`` running ``body``."""
    folder.mkdir()
    anvil = folder / "anvil"
    anvil.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    anvil.chmod(0o755)
    return anvil


def _running(program: Path) -> list[int]:
    """Pids of the processes whose command line names ``program``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and str(program).encode() in cmd:
            pids.append(int(proc.name))
    return pids


def test_a_node_that_exits_at_start_is_reported_with_its_last_words(settings: Settings, free_port: int, tmp_path: Path) -> None:
    _fake_node(tmp_path / "bin", "sys.stderr.write('error: unexpected argument --frobnicate\\n'); sys.exit(2)")
    cfg = dataclasses.replace(settings.with_chain(anvil_port=free_port), node_bin=tmp_path / "bin")
    devnet = Devnet(cfg)
    with pytest.raises(DevnetError, match="exited at start: error: unexpected argument --frobnicate"):
        devnet.start()
    assert not devnet.pid_file.exists()


def test_a_node_that_never_answers_is_stopped_after_the_timeout(
    settings: Settings, free_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    anvil = _fake_node(tmp_path / "bin", "time.sleep(60)")
    cfg = dataclasses.replace(settings.with_chain(anvil_port=free_port), node_bin=tmp_path / "bin")
    monkeypatch.setattr(devnet_module, "START_TIMEOUT_S", 1.0)
    devnet = Devnet(cfg)
    started = time.monotonic()
    with pytest.raises(DevnetError, match="did not answer .* within 1s"):
        devnet.start()
    assert time.monotonic() - started < 10
    assert devnet.pid() is None and not devnet.pid_file.exists()
    assert _running(anvil) == []  # the silent node was stopped, not left running


def test_node_tools_are_found_in_node_bin_first_then_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = _fake_node(tmp_path / "bin", "pass")
    on_path = _fake_node(tmp_path / "path", "pass")
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert find_node_tool("anvil", ours.parent) == ours
    installed = REPO_BIN / "anvil"  # the repository's own copy comes before PATH
    expected = installed if installed.is_file() else on_path
    assert find_node_tool("anvil", tmp_path / "missing") == expected
    assert find_node_tool("shield-no-such-tool", ours.parent) is None
    ours.chmod(0o644)  # not executable: not a tool
    assert find_node_tool("anvil", ours.parent) != ours
