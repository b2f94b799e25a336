"""`shield keys` end to end through the CLI entry point (real keystore)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from shield.cli import cli, main


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return {"SHIELD_HOME": str(tmp_path / "home"), "SHIELD_KEYS_DIR": str(tmp_path / "keys"), "SHIELD_KEYS_PASSWORD": ""}


def run(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_init_show_export_rotate(env, tmp_path):
    result = run(env, "keys", "init", "--name", "Alice Example", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["development"] and info["publisher_name"] == "Alice Example"
    assert "development keys" in result.stderr

    shown = run(env, "keys", "show", "--json")
    status = json.loads(shown.stdout)
    assert status["certificate_valid_now"] and status["warnings"] == []
    assert status["info"]["cert_fingerprint"] == info["cert_fingerprint"]
    assert "development keys" in shown.stderr

    out = tmp_path / "anchors.pem"
    assert run(env, "keys", "export-trust", str(out)).exit_code == 0
    assert out.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")

    rotated = run(env, "keys", "rotate", "--json")
    result_json = json.loads(rotated.stdout)
    assert result_json["old_fingerprint"] == info["cert_fingerprint"] != result_json["new_fingerprint"]
    assert "ledger" in rotated.stderr


def test_password_from_env_makes_protected_keys(env):
    env = {**env, "SHIELD_KEYS_PASSWORD": "a long enough password"}
    result = run(env, "keys", "init", "--json")
    assert result.exit_code == 0 and not json.loads(result.stdout)["development"]
    assert "development keys" not in result.stderr


def test_show_warns_about_open_permissions(env):
    run(env, "keys", "init")
    os.chmod(Path(env["SHIELD_KEYS_DIR"]) / "c2pa-signing.key.pem", 0o644)
    status = json.loads(run(env, "keys", "show", "--json").stdout)
    assert any("chmod 600" in w for w in status["warnings"])


def test_errors_are_one_line_with_exit_code(env, monkeypatch, capsys):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exc:
        main(["keys", "show"])
    assert exc.value.code == 15
    err = capsys.readouterr().err.strip()
    assert err.startswith("shield: error: no keystore") and "\n" not in err and "fix:" in err


def test_prompt_without_terminal_fails_fast(env, monkeypatch, capsys):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exc:
        main(["keys", "init", "--prompt"])
    assert exc.value.code == 15
    assert "terminal" in capsys.readouterr().err
    assert not (Path(env["SHIELD_KEYS_DIR"]) / "keystore.json").exists()
