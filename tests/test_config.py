"""Where the home is (one rule for `make run` and a hand-run `shield`), and the anvil port."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shield.config import load_settings
from shield.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_the_home_is_shield_home_else_the_config_file_else_dot_shield(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    default = load_settings(env={}, cwd=tmp_path)
    assert default.home == tmp_path / "user" / ".shield" and default.home_origin == "default"
    assert default.keys_dir == default.home / "keys"
    chosen = load_settings(env={"SHIELD_HOME": str(tmp_path / "h")}, cwd=tmp_path)
    assert chosen.home == tmp_path / "h" and chosen.home_origin == "SHIELD_HOME"
    assert chosen.keys_dir == tmp_path / "h" / "keys"
    (tmp_path / "shield.toml").write_text(f'home = "{tmp_path / "from-toml"}"\n')
    configured = load_settings(env={}, cwd=tmp_path)
    assert configured.home == tmp_path / "from-toml" and configured.home_origin == str(tmp_path / "shield.toml")
    assert load_settings(env={"SHIELD_HOME": str(tmp_path / "h")}, cwd=tmp_path).home == tmp_path / "h"


def test_a_relative_home_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The devnet recognises its node by the absolute state path on its command line."""
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={"SHIELD_HOME": "rel"}, cwd=tmp_path).home == tmp_path / "rel"


def test_the_makefile_sets_no_home_of_its_own() -> None:
    """`make run` must use the home a hand-run `shield` uses: no SHIELD_HOME or
    SHIELD_KEYS_DIR exported for every target (only `make test` picks a throw-away one)."""
    makefile = (REPO / "Makefile").read_text()
    assert not re.search(r"^export SHIELD_(HOME|KEYS_DIR)", makefile, re.MULTILINE)
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    commands = [line for line in run.splitlines() if "$(SHIELD)" in line or "$(PY)" in line]
    assert len(commands) >= 4 and not any("SHIELD_HOME" in c or "SHIELD_KEYS_DIR" in c for c in commands)
    assert "$(SHIELD) chain up" in run  # prints `home: ...` first
    test = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert 'SHIELD_HOME="$$home"' in test and "mktemp -d" in test


def test_anvil_port_is_none_unless_configured(tmp_path: Path) -> None:
    assert load_settings(env={}, cwd=tmp_path).chain.anvil_port is None
    assert load_settings(env={"SHIELD_ANVIL_PORT": "9000"}, cwd=tmp_path).chain.anvil_port == 9000
    (tmp_path / "shield.toml").write_text("[chain]\nanvil_port = 9100\n")
    assert load_settings(env={}, cwd=tmp_path).chain.anvil_port == 9100
    for bad in ("0", "70000", "eighty"):
        with pytest.raises(ConfigError, match="anvil_port"):
            load_settings(env={"SHIELD_ANVIL_PORT": bad}, cwd=tmp_path)
