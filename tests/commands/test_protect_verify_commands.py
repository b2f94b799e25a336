"""`shield protect` / `shield verify` / `shield anchor --pending` as a user runs them: a separate
process per command, exit codes and JSON per DESIGN.md's command-line contract, one-line
errors on stderr and never a traceback.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from shield.config import load_settings
from shield.ledger import Devnet
from shield.sample import write_sample

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / "node_modules" / ".bin"
needs_anvil = pytest.mark.skipif(not os.access(NODE_BIN / "anvil", os.X_OK), reason="needs node_modules/.bin/anvil (run `npm ci` or `make setup`)")

#: Seconds one command may take: protect without perturbation starts the devnet and
#: creates keys on first use; a hang must fail the test rather than the whole run.
COMMAND_TIMEOUT_S = 120

#: The painted square of the edit test: x, y, side, in pixels of the 512 x 512 portrait.
SQUARE = (300, 200, 64)

#: DESIGN.md: the JSON of `shield verify` has at least these fields.
VERIFY_FIELDS = {"verdict", "asset_id", "c2pa", "watermark", "ledger"}
C2PA_FIELDS = {"state", "codes"}
WATERMARK_FIELDS = {"present", "intact_fraction", "tampered_regions"}
LEDGER_FIELDS = {"found", "chain_id", "contract", "tx", "block", "timestamp", "publisher", "hashes_match"}
VERDICTS = {"authentic", "authentic-stripped", "modified", "re-encoded", "invalid", "no-provenance", "unchecked"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Shell:
    """Runs `shield` in its own process with a private home, keystore and devnet port."""

    root: Path
    env: dict[str, str]

    def __call__(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "shield.cli", *map(str, args)],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def json(self, *args: str | Path) -> tuple[int, Any]:
        done = self(*args, "--json")
        try:
            return done.returncode, json.loads(done.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"not JSON (exit {done.returncode}): {done.stdout!r} {done.stderr!r}") from exc

    @property
    def port(self) -> int:
        return int(self.env["SHIELD_ANVIL_PORT"])

    def stop_devnet(self) -> None:
        Devnet(load_settings(env=self.env, cwd=self.root)).stop()


def _shell(root: Path) -> Shell:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIELD_")}
    env.update(
        SHIELD_HOME=str(root / "home"),
        SHIELD_KEYS_DIR=str(root / "keys"),
        SHIELD_NODE_BIN=str(NODE_BIN),
        SHIELD_ANVIL_PORT=str(_free_port()),
    )
    return Shell(root, env)


@pytest.fixture()
def shell(tmp_path: Path) -> Iterator[Shell]:
    sh = _shell(tmp_path)
    yield sh
    sh.stop_devnet()


@dataclass(frozen=True)
class Published:
    shell: Shell
    source: Path
    source_digest: str
    output: Path
    protect_doc: dict[str, Any]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """`shield protect portrait.png --no-adversarial -o out --json`, once for the module."""
    if not os.access(NODE_BIN / "anvil", os.X_OK):
        pytest.skip("needs node_modules/.bin/anvil (run `npm ci` or `make setup`)")
    sh = _shell(tmp_path_factory.mktemp("cli"))
    src = write_sample(sh.root / "portrait.png")
    digest = _sha(src)
    try:
        code, doc = sh.json("protect", src, "--no-adversarial", "-o", sh.root / "out")
        assert code == 0, doc
        [entry] = doc
        yield Published(sh, src, digest, Path(entry["output"]), entry)
    finally:
        sh.stop_devnet()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _assert_verify_contract(doc: dict[str, Any]) -> None:
    assert VERIFY_FIELDS <= doc.keys()
    assert doc["verdict"] in VERDICTS
    assert C2PA_FIELDS <= doc["c2pa"].keys() and isinstance(doc["c2pa"]["codes"], list)
    assert WATERMARK_FIELDS <= doc["watermark"].keys()
    for region in doc["watermark"]["tampered_regions"]:
        assert set(region) == {"x", "y", "width", "height"}
    assert LEDGER_FIELDS <= doc["ledger"].keys()


# ---------------------------------------------------------------------------- protect


@needs_anvil
def test_protect_json_names_what_was_done(published: Published) -> None:
    doc = published.protect_doc
    assert len(doc["asset_id"]) == 32 and int(doc["asset_id"], 16) >= 0
    assert published.output == published.shell.root / "out" / "portrait.shield.png"
    assert published.output.is_file()
    assert {"psnr", "ssim", "threat_models", "manifest", "ledger"} <= doc.keys()
    assert doc["manifest"]["state"] == "signed"
    assert doc["ledger"]["status"] == "anchored" and doc["ledger"]["tx"].startswith("0x")
    assert doc["ledger"]["chain_id"] == 31337
    # per-stage times, and what the perturbation covered (nothing: --no-adversarial)
    stages = [t["stage"] for t in doc["timings"]]
    assert stages == ["setup", "load", "robust mark", "fragile watermark", "fingerprint", "encode", "sign", "write", "anchor"]
    assert all(t["seconds"] >= 0 for t in doc["timings"])
    assert doc["faces"] == 0 and doc["whole_frame"] is False
    # The input is never overwritten.
    assert _sha(published.source) == published.source_digest


@needs_anvil
def test_protect_text_output(published: Published, tmp_path: Path) -> None:
    photo = write_sample(tmp_path / "second.png")
    done = published.shell("protect", photo, "--no-adversarial")
    assert done.returncode == 0, done.stderr
    assert f"{photo} -> {tmp_path / 'second.shield.png'}" in done.stdout
    for label in ("asset id", "watermark", "manifest   signed", "ledger     anchored", "output     PNG lossless"):
        assert label in done.stdout
    # not a terminal: one plain line per finished stage, with its time, on stderr
    stage_lines = [line for line in done.stderr.splitlines() if line.startswith("second.png: ")]
    parsed = [re.fullmatch(r"second\.png: (.+?) (\d+\.\d+) s(?: \((.*)\))?", line) for line in stage_lines]
    assert all(parsed), stage_lines
    assert [m.group(1) for m in parsed if m][:2] == ["load", "robust mark"]
    assert parsed[0] is not None and parsed[0].group(3) == "512x512"
    assert any(line.startswith("second.png: sign ") and line.endswith(" s") for line in stage_lines), done.stderr
    assert any(line.startswith("all photos: anchor ") for line in done.stderr.splitlines()), done.stderr


@needs_anvil
def test_existing_output_is_an_error_without_traceback(published: Published) -> None:
    before = _sha(published.output)
    done = published.shell("protect", published.source, "--no-adversarial", "-o", published.output.parent)
    assert done.returncode == 14, (done.stdout, done.stderr)
    assert done.stderr.startswith("shield: error:") and "already exists" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert _sha(published.output) == before and _sha(published.source) == published.source_digest


def _bad_input(folder: Path, case: str) -> Path:
    if case == "missing":
        return folder / "missing.png"
    if case == "not an image":
        path = folder / "notes.jpg"
        path.write_text("this is not a photo\n")
        return path
    good = write_sample(folder / "good.png")
    path = folder / "truncated.png"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    return path


@needs_anvil
@pytest.mark.parametrize("command", ["protect", "verify"])
@pytest.mark.parametrize("case", ["missing", "not an image", "truncated"])
def test_bad_input_is_a_one_line_error(published: Published, tmp_path: Path, command: str, case: str) -> None:
    photo = _bad_input(tmp_path, case)
    args = ("protect", photo, "--no-adversarial") if command == "protect" else ("verify", photo)
    done = published.shell(*args)
    assert done.returncode == 13, (done.stdout, done.stderr)  # ImageError
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("shield: error:") and photo.name in lines[-1]
    assert not list(tmp_path.rglob("*.shield.png"))


def test_usage_errors_are_not_tracebacks(shell: Shell) -> None:
    done = shell("protect")
    assert done.returncode == 2 and "Usage" in done.stderr
    done = shell("protect", shell.root / "x.png", "--strength", "extreme")
    assert done.returncode == 2 and "extreme" in done.stderr


@needs_anvil
def test_protect_webp_then_verify_is_authentic(published: Published, tmp_path: Path) -> None:
    photo = write_sample(tmp_path / "third.png")
    code, doc = published.shell.json("protect", photo, "--no-adversarial", "--format", "webp")
    assert code == 0, doc
    [entry] = doc
    output = Path(entry["output"])
    assert output == tmp_path / "third.shield.webp" and output.read_bytes()[12:16] == b"VP8L"
    assert _pixels(output).shape == _pixels(photo).shape
    code, report = published.shell.json("verify", output)
    assert code == 0 and report["verdict"] == "authentic", report
    assert report["ledger"]["hashes_match"] is True


@needs_anvil
def test_whole_frame_without_a_face_says_so(published: Published, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    wall = tmp_path / "wall.png"
    Image.fromarray(np.clip(rng.normal(128, 20, (96, 128, 3)), 0, 255).astype(np.uint8)).save(wall)
    done = published.shell("protect", wall, "--whole-frame", "--strength", "fast", "--seed", "1")
    assert done.returncode == 0, done.stderr
    assert "vs input, whole frame (no face found)" in done.stdout and "face)" not in done.stdout
    assert "wall.png: attack " in done.stderr and "whole frame (no face found)" in done.stderr


def test_folder_run_refuses_webp_without_traceback(shell: Shell) -> None:
    folder = shell.root / "photos"
    folder.mkdir()
    done = shell("protect", folder, "-o", shell.root / "out", "--format", "webp")
    assert done.returncode == 2 and "--format webp" in done.stderr


# ---------------------------------------------------------------------------- verify


@needs_anvil
def test_verify_protected_photo_is_authentic(published: Published) -> None:
    code, doc = published.shell.json("verify", published.output)
    assert code == 0, doc
    _assert_verify_contract(doc)
    assert doc["verdict"] == "authentic" and doc["asset_id"] == published.protect_doc["asset_id"]
    assert doc["c2pa"]["state"] == "trusted"
    assert doc["watermark"]["present"] is True and doc["watermark"]["intact_fraction"] == 1.0
    assert doc["watermark"]["tampered_regions"] == []
    ledger = doc["ledger"]
    assert ledger["found"] is True and ledger["hashes_match"] is True
    assert ledger["tx"] == published.protect_doc["ledger"]["tx"]
    assert ledger["contract"] == published.protect_doc["ledger"]["contract"]

    text = published.shell("verify", published.output)
    assert text.returncode == 0 and text.stdout.startswith("AUTHENTIC")


@needs_anvil
def test_verify_edited_photo_is_modified_and_located(published: Published, tmp_path: Path) -> None:
    rgb = _pixels(published.output).copy()
    x, y, side = SQUARE
    rgb[y : y + side, x : x + side] = (0, 255, 0)
    edited = tmp_path / "edited.png"
    Image.fromarray(rgb).save(edited)
    tamper_map = tmp_path / "map.png"

    code, doc = published.shell.json("verify", edited, "--tamper-map", tamper_map)

    assert code == 1, doc
    _assert_verify_contract(doc)
    assert doc["verdict"] == "modified"
    regions = doc["watermark"]["tampered_regions"]
    assert any(r["x"] < x + side and x < r["x"] + r["width"] and r["y"] < y + side and y < r["y"] + r["height"] for r in regions), regions
    assert sum(r["width"] * r["height"] for r in regions) <= 4 * side * side
    assert tamper_map.is_file()

    text = published.shell("verify", edited)
    assert text.returncode == 1 and text.stdout.startswith("MODIFIED") and "changed region" in text.stdout


@needs_anvil
def test_verify_stripped_metadata(published: Published, tmp_path: Path) -> None:
    stripped = tmp_path / "stripped.png"
    Image.fromarray(_pixels(published.output)).save(stripped)

    code, doc = published.shell.json("verify", stripped)

    # DESIGN.md: 0 for "intact pixels with stripped metadata"; the watermark names the record.
    assert code == 0, doc
    _assert_verify_contract(doc)
    assert doc["verdict"] == "authentic-stripped"
    assert doc["c2pa"]["state"] == "absent"
    assert doc["asset_id"] == published.protect_doc["asset_id"]
    assert doc["watermark"]["present"] is True and doc["ledger"]["found"] is True


@needs_anvil
def test_verify_offline_says_which_check_was_skipped(published: Published) -> None:
    code, doc = published.shell.json("verify", published.output, "--offline")
    assert code == 3, doc
    assert doc["verdict"] == "unchecked"
    assert any(s.startswith("ledger") for s in doc["skipped"])


def test_verify_never_protected_photo_is_unknown_origin(shell: Shell) -> None:
    photo = write_sample(shell.root / "plain.png")
    code, doc = shell.json("verify", photo)
    assert code == 2, doc
    _assert_verify_contract(doc)
    assert doc["verdict"] == "no-provenance" and doc["asset_id"] is None
    text = shell("verify", photo)
    assert text.returncode == 2 and text.stdout.startswith("UNKNOWN ORIGIN")


# ---------------------------------------------------------------------------- ledger down, then back


@needs_anvil
def test_chain_down_queues_then_anchor_pending_sends(shell: Shell) -> None:
    photo = write_sample(shell.root / "photo.png")
    with socket.socket() as blocker:  # the devnet cannot start while its port is taken
        blocker.bind(("127.0.0.1", shell.port))
        blocker.listen()
        code, doc = shell.json("protect", photo, "--no-adversarial")
    assert code == 0, doc
    [entry] = doc
    assert entry["ledger"]["status"] == "queued"
    output = Path(entry["output"])
    assert output.is_file()

    code, report = shell.json("verify", output)
    assert code == 3 and report["verdict"] == "unchecked", report
    assert report["ledger"]["found"] is False

    code, sent = shell.json("anchor", "--pending")
    assert code == 0, sent
    assert [(o["asset_id"], o["status"]) for o in sent["outcomes"]] == [(entry["asset_id"], "anchored")]
    again = shell("anchor", "--pending")
    assert again.returncode == 0 and "nothing queued" in again.stderr

    code, report = shell.json("verify", output)
    assert report["ledger"]["found"] is True and report["ledger"]["hashes_match"] is True, report
    assert report["ledger"]["tx"] == sent["outcomes"][0]["tx_hash"]


# ---------------------------------------------------------------------------- progress display


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _attack_events(photo: Path, total: int) -> list[Any]:
    from shield.pipeline.protect import Stage, StageEvent, StageState

    events = [StageEvent(photo, Stage.FACES, StageState.STARTED), StageEvent(photo, Stage.FACES, StageState.FINISHED, seconds=0.5, detail="1 face"),
              StageEvent(photo, Stage.ATTACK, StageState.STARTED, total=total)]
    events += [StageEvent(photo, Stage.ATTACK, StageState.ADVANCED, done=i, total=total) for i in range(1, total + 1)]
    events += [StageEvent(photo, Stage.ATTACK, StageState.FINISHED, seconds=11.25, detail=f"{total} steps, 1 face"),
               StageEvent(photo, Stage.SIGN, StageState.STARTED), StageEvent(photo, Stage.SIGN, StageState.FINISHED, seconds=0.04)]
    return events


def test_progress_on_a_terminal_is_a_bar_over_attack_steps() -> None:
    from shield.commands.protect import _StageDisplay

    stream = _Terminal()
    display = _StageDisplay(stream)
    for event in _attack_events(Path("astronaut.png"), 40):
        display(event)
    display.close()
    shown = stream.getvalue()
    assert "astronaut.png: faces..." in shown and "astronaut.png: sign..." in shown
    assert "astronaut.png: attack" in shown and "40/40" in shown and "100%" in shown
    assert "11.2 s" not in shown  # durations are for logs; the terminal shows the bar


def test_progress_in_a_log_is_one_line_per_stage() -> None:
    from shield.commands.protect import _StageDisplay

    stream = io.StringIO()
    display = _StageDisplay(stream)
    for event in _attack_events(Path("astronaut.png"), 40):
        display(event)
    display.close()
    assert stream.getvalue().splitlines() == [
        "astronaut.png: faces 0.50 s (1 face)",
        "astronaut.png: attack 11.2 s (40 steps, 1 face)",
        "astronaut.png: sign 0.04 s",
    ]
