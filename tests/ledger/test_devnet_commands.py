"""The devnet commands' words without a node: the home line, audit on a stopped devnet, the
audit summary and its file column."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from shield.cli import cli
from shield.commands.audit import _table, summary_line
from shield.config import Settings
from shield.ledger import Devnet
from shield.ledger.audit import AuditEntry

REPO = Path(__file__).resolve().parents[2]


def _env(settings: Settings, port: int) -> dict[str, str]:
    return {"SHIELD_HOME": str(settings.home), "SHIELD_KEYS_DIR": str(settings.keys_dir),
            "SHIELD_NODE_BIN": str(settings.node_bin), "SHIELD_ANVIL_PORT": str(port)}


def test_audit_on_a_stopped_devnet_says_so_and_starts_nothing(settings: Settings, free_port: int) -> None:
    proc = subprocess.run([sys.executable, "-m", "shield.cli", "audit"], env=_env(settings, free_port), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 18, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip() == (
        f"shield: error: the local devnet of the home {settings.home} is not running (http://127.0.0.1:{free_port}); "
        "audit reads the chain and does not start it (fix: start it with `shield chain up`, then run `shield audit` again)")
    assert Devnet(settings.with_chain(anvil_port=free_port)).pid() is None
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", free_port)) != 0  # no node was started


def test_chain_status_names_the_home_and_the_port(settings: Settings, free_port: int) -> None:
    out = CliRunner().invoke(cli, ["chain", "status"], env=_env(settings, free_port), catch_exceptions=False)
    lines = out.output.splitlines()
    assert lines[0] == f"home: {settings.home} (from SHIELD_HOME)"
    assert lines[1] == f"devnet http://127.0.0.1:{free_port}: stopped"


def test_audit_summary_counts_in_words() -> None:
    assert summary_line({}) == "no entries"
    assert summary_line({"record": 1}) == "1 record; none flagged"
    assert summary_line({"record": 24, "publisher": 2, "batch": 1, "batch-member": 3, "local": 1,
                         "duplicate": 2, "queued": 1}) == \
        "2 publishers, 24 records, 1 batch, 3 batch members, 1 local entry; flagged: 2 duplicate, 1 queued"


def _entry(kind: str, asset_id: bytes | None, file_name: str | None) -> AuditEntry:
    return AuditEntry(kind, asset_id, None, "0x" + "ab" * 20, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), 7, None,
                      False, None, (), file_name=file_name)


def test_audit_table_has_a_file_column_when_the_index_names_files() -> None:
    plain = _table([_entry("publisher", None, None), _entry("record", b"\x01" * 16, None)])
    assert "file" not in plain[0].split()
    named = _table([_entry("publisher", None, None), _entry("record", b"\x01" * 16, "astronaut.shield.png"),
                    _entry("record", b"\x02" * 16, "a-very-long-name-of-a-protected-photo.shield.png")])
    assert named[0].split()[:5] == ["kind", "id", "/", "root", "file"]
    assert named[1].split()[1] == "-"  # a publisher has no file
    assert named[2].split()[2] == "astronaut.shield.png"
    assert named[3].split()[2] == "...rotected-photo.shield.png"  # 28 characters, the end kept
    assert len({line.index("0xabab") for line in named[1:]}) == 1  # the columns line up
