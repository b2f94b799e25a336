"""`shield models` through the CLI entry point, with a temporary settings home."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from shield.adversarial import zoo
from shield.adversarial.models.fomm import FOMM, save_official_checkpoint
from shield.adversarial.models.fomm.config import TINY
from shield.cli import cli, main
from shield.imaging.hashing import file_sha256


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"SHIELD_HOME": str(tmp_path / "home"), "SHIELD_KEYS_DIR": str(tmp_path / "keys")}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture()
def tiny_official(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """fomm-vox-256 at the TINY configuration, and a random checkpoint in its layout."""
    official = tuple(
        dataclasses.replace(s, config=TINY.to_dict()) if s.name == "fomm-vox-256" else s for s in zoo.registry._OFFICIAL
    )
    monkeypatch.setattr(zoo.registry, "_OFFICIAL", official)
    torch.manual_seed(0)
    path = tmp_path / "vox-cpk.pth.tar"
    save_official_checkpoint(FOMM(TINY).eval(), path)
    return path


def run(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_list_and_verify_json(env: dict[str, str]) -> None:
    listed = run(env, "models", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in json.loads(listed.stdout)["models"]}
    assert rows["fomm-mini-a"]["status"] == "shipped" and len(rows["fomm-mini-a"]["sha256"]) == 64
    assert rows["fomm-vox-256"]["status"] == "not imported" and rows["fomm-vox-256"]["bytes"] is None
    assert rows["dlib-resnet"]["status"] == "installed"
    verified = run(env, "models", "verify", "--json")
    assert verified.exit_code == 0
    report = json.loads(verified.stdout)
    assert report["ok"] is True
    assert {r["name"]: r["status"] for r in report["results"]}["faceswap-ae"] == "ok"
    text = run(env, "models", "list")
    assert "fomm-mini-b" in text.stdout and "not imported" in text.stdout


def test_import_then_tamper_fails_verify(env: dict[str, str], tiny_official: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(env, "models", "import", "fomm-vox-256", str(tiny_official), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["name"] == "fomm-vox-256" and record["sha256"] == file_sha256(tiny_official)
    stored = Path(record["file"])
    assert stored.parent == Path(env["SHIELD_HOME"]) / "models" / "fomm-vox-256"
    listed = {r["name"]: r for r in json.loads(run(env, "models", "list", "--json").stdout)["models"]}
    assert listed["fomm-vox-256"]["status"] == "imported"
    assert run(env, "models", "verify").exit_code == 0

    stored.write_bytes(stored.read_bytes()[:-10])
    code, out, err = run_main(capsys, "models", "verify", "--json")
    assert code == 19
    report = json.loads(out)
    assert report["ok"] is False
    assert {r["name"]: r["status"] for r in report["results"]}["fomm-vox-256"] == "mismatch"
    assert err.startswith("shield: error: weights failed verification: fomm-vox-256 (mismatch)") and err.count("\n") == 1


def test_bad_import_is_one_line_error(env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "vox-cpk.pth.tar"
    garbage.write_bytes(b"<html>quota exceeded</html>")
    code, out, err = run_main(capsys, "models", "import", "fomm-vox-256", str(garbage))
    assert code == 19 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("shield: error: ") and "not a valid fomm-vox-256 checkpoint" in last and "fix:" in last
    assert not (Path(env["SHIELD_HOME"]) / "models" / "fomm-vox-256").exists()
    code, _, err = run_main(capsys, "models", "import", "faceswap-ae", str(garbage))
    assert code == 19 and "nothing to import" in err


def test_fetch_gives_the_url_and_fails(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "models", "fetch", "simswap-224")
    assert code == 19 and out == ""
    assert "never downloads" in err and "https://github.com/neuralchen/SimSwap/releases/download/1.0/checkpoints.zip" in err
    assert "shield models import simswap-224 /path/to/latest_net_G.pth" in err
    code, out, _ = run_main(capsys, "models", "fetch", "arcface-r100", "--json")
    info = json.loads(out)
    assert code == 19 and info["available"] is False and info["urls"][0].endswith("arcface_checkpoint.tar")
    shipped = run(env, "models", "fetch", "fomm-mini-a", "--json")
    assert shipped.exit_code == 0 and json.loads(shipped.stdout)["available"] is True
    code, _, err = run_main(capsys, "models", "fetch", "no-such-model")
    assert code == 19 and "unknown model" in err


def test_list_does_not_load_torch(env: dict[str, str]) -> None:
    """Listing reads records and hashes only: it must stay quick (no torch import)."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from shield.cli import main\n"
        "try:\n    main(['models', 'list'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert "fomm-mini-a" in done.stdout and done.stdout.strip().endswith("NO-TORCH"), done.stdout + done.stderr
