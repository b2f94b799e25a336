"""Library runs (shield.pipeline.library, `shield protect DIR -o OUT`): the folder walk, a
folder run with a broken photo in the middle, a kill -9 during a run and its rerun, and a
crash between the outbox commit and the move of the outputs. Real stages throughout
(watermark, C2PA, the embedded anvil devnet); no perturbation, which is not what is tested.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from shield.cli import cli
from shield.config import Settings, load_settings
from shield.ledger import Devnet, open_ledger
from shield.pipeline import ProtectOptions, verify_file
from shield.pipeline.library import RUN_DIR, LibraryOptions, RayNotInstalledError, find_photos, protect_library
from shield.report import Verdict
from tests.library.conftest import library_env, needs_anvil, write_photos

PLAIN = ProtectOptions(adversarial=False)


def _outputs(outdir: Path) -> list[Path]:
    return sorted(p for p in outdir.rglob("*.shield.png") if RUN_DIR not in p.parts)


def _ledger_assets(settings: Settings, *, all_sent: bool = False) -> list[bytes]:
    """Asset ids in the ledger's local index; ``all_sent``: also check the outbox holds no open work."""
    ledger = open_ledger(settings, None, start_devnet=False)
    try:
        if all_sent:
            assert ledger.outbox.open_items() == [], "every batch reached the chain"
        return [a.asset_id for a in ledger.index.all()]
    finally:
        ledger.close()


def _run_assets(outdir: Path) -> dict[str, tuple[str, bytes]]:
    """output -> (state, asset id) of the run manifest; empty while the run has not created it."""
    path = outdir / RUN_DIR / "run.sqlite"
    if not path.exists():
        return {}
    db = sqlite3.connect(path)
    try:
        return {out: (state, asset) for out, state, asset in db.execute("SELECT output, state, asset_id FROM photos")}
    except sqlite3.OperationalError:  # the run has not created its table yet
        return {}
    finally:
        db.close()


def test_find_photos_mirrors_folders_and_skips_outputs(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    for rel in ("a.jpg", "b.PNG", "notes.txt", ".hidden.jpg", "a.shield.png", "b.shield.webp", "sub/c.webp", "sub/deeper/d.tif"):
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        (lib / rel).write_bytes(b"x")
    out = lib / "out"
    (out / "e.jpg").parent.mkdir()
    (out / "e.jpg").write_bytes(b"x")
    flat = find_photos([lib], out)
    assert [(p.name, rel) for p, rel in flat] == [("a.jpg", "a.shield.png"), ("b.PNG", "b.shield.png")]
    deep = find_photos([lib, lib / "a.jpg"], out, recursive=True)
    assert [rel for _, rel in deep] == [
        "a.shield.png", "b.shield.png", "sub/c.shield.png", "sub/deeper/d.shield.png", "a.shield.png"]
    with pytest.raises(Exception, match="no such file or folder"):
        find_photos([tmp_path / "absent"], out)


def test_ray_missing_is_a_typed_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_photos(tmp_path / "lib", 1)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    settings = load_settings(env=library_env(tmp_path), cwd=tmp_path)
    with pytest.raises(RayNotInstalledError) as err:
        protect_library([tmp_path / "lib"], settings, PLAIN, LibraryOptions(tmp_path / "out", ray_address="auto"))
    assert "pip install 'shield[ray]'" in err.value.fix
    assert not (tmp_path / "home").exists(), "nothing may start before the Ray check"


@needs_anvil
def test_folder_run_reports_a_broken_photo_and_reruns_nothing(tmp_path: Path, lib_settings: Settings) -> None:
    photos = write_photos(tmp_path / "lib", 3, corrupt_at=1)
    out = tmp_path / "out"
    events: list[str] = []
    report = protect_library([tmp_path / "lib"], lib_settings, PLAIN, LibraryOptions(out, batch_size=2),
                             progress=lambda e: events.append(e.kind))
    assert events[0] == "start" and events.count("done") == 3 and events.count("failed") == 1
    assert [f.input.name for f in report.failures] == [photos[2].name]
    assert "ImageError: " in report.failures[0].reason and "broken.jpg" in report.failures[0].reason
    assert [p.name for p in _outputs(out)] == ["p00.shield.png", "p01.shield.png", "p02.shield.png"]
    assert report.anchored == 3 and report.queued == 0
    assert sorted(bytes.fromhex(o.asset_id) for o in report.protected) == sorted(_ledger_assets(lib_settings))
    ledger = open_ledger(lib_settings, None, start_devnet=False)
    try:  # as with protect_files, each photo's perceptual fingerprint is in the local index
        assert all(ledger.index.fingerprint(bytes.fromhex(o.asset_id)) is not None for o in report.protected)
    finally:
        ledger.close()
    assert not any((out / RUN_DIR / "staged").iterdir()), "no staged file is left behind"
    # a batch member verifies with its proof sidecar, as a single `shield protect --batch` photo does
    assert verify_file(out / "p02.shield.png", lib_settings).verdict is Verdict.AUTHENTIC

    env = {**library_env(tmp_path), "SHIELD_ANVIL_PORT": str(lib_settings.chain.anvil_port)}
    rerun = CliRunner().invoke(cli, ["protect", str(tmp_path / "lib"), "-o", str(out), "--no-adversarial"], env=env)
    assert rerun.exit_code == 1, rerun.output
    assert "0 protected, 3 already done, 1 failed of 4 photos" in rerun.output
    assert f"{photos[2]}: TruncatedImageError" in rerun.output
    assert len(_ledger_assets(lib_settings)) == 3, "a rerun anchors nothing twice"


@needs_anvil
def test_kill9_during_a_run_then_rerun_protects_each_photo_once(tmp_path: Path, lib_settings: Settings) -> None:
    count = 8
    write_photos(tmp_path / "lib", count)
    out = tmp_path / "out"
    env = {**os.environ, **library_env(tmp_path), "SHIELD_ANVIL_PORT": str(lib_settings.chain.anvil_port)}
    cmd = [sys.executable, "-c", "from shield.cli import main; main()", "protect", str(tmp_path / "lib"), "-o", str(out),
           "--no-adversarial", "--workers", "2", "--batch-size", "2"]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(_run_assets(out)) >= 3:
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, mid-run
        proc.wait()
    killed_state = _run_assets(out)
    assert 3 <= len(killed_state) < count, "the kill must land during the run"

    report = protect_library([tmp_path / "lib"], lib_settings, PLAIN, LibraryOptions(out, batch_size=2))
    assert report.ok and report.total == count
    final = _run_assets(out)
    assert len(final) == count and all(state == "done" for state, _ in final.values())
    for rel, (state, asset) in killed_state.items():
        assert final[rel][1] == asset, f"{rel} was recorded before the kill and must not be protected again"
    outputs = _outputs(out)
    assert [p.name for p in outputs] == [f"p{i:02d}.shield.png" for i in range(count)]
    ledger = _ledger_assets(lib_settings, all_sent=True)
    assert report.anchored == len(report.protected) and report.queued == 0
    assert len(ledger) == count and sorted(ledger) == sorted(a for _, a in final.values())
    assert not any((out / RUN_DIR / "staged").iterdir())


@needs_anvil
def test_crash_between_outbox_and_outputs_is_finished_by_the_rerun(
    tmp_path: Path, lib_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shield.pipeline.library as library

    write_photos(tmp_path / "lib", 3)
    out = tmp_path / "out"
    calls = {"n": 0}
    real_move = library._Committer._move

    def crash_on_second(self: library._Committer, row: library._Row) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated crash after the batch reached the outbox")
        real_move(self, row)

    monkeypatch.setattr(library._Committer, "_move", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        protect_library([tmp_path / "lib"], lib_settings, PLAIN, LibraryOptions(out, batch_size=3))
    monkeypatch.setattr(library._Committer, "_move", real_move)
    assert len(_outputs(out)) == 1 and len(_ledger_assets(lib_settings)) == 3

    report = protect_library([tmp_path / "lib"], lib_settings, PLAIN, LibraryOptions(out, batch_size=3))
    assert report.ok and len(report.protected) == 2 and report.skipped == 1 and report.anchored == 2
    assert len(_outputs(out)) == 3
    assert sorted(_ledger_assets(lib_settings)) == sorted(a for _, a in _run_assets(out).values())
    Devnet(lib_settings).stop()
