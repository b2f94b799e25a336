"""protect -> verify end to end through the recipes (shield.pipeline), real stages throughout:
fragile watermark, C2PA signing with a development keystore, the embedded anvil devnet.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from shield.config import Settings
from shield.errors import CorruptImageError, ImageError, InputError, OutputError, UnsupportedImageError
from shield.ledger import AnchorStatus, Devnet, open_ledger
from shield.pipeline import ProtectOptions, protect_files, verify_file
from shield.pipeline.protect import Stage, StageEvent, StageState
from shield.provenance import ensure_keystore
from shield.report import Verdict
from shield.sample import write_sample
from shield.watermark import BLOCK_SIZE

REPO = Path(__file__).resolve().parents[2]
needs_anvil = pytest.mark.skipif(not os.access(REPO / "node_modules" / ".bin" / "anvil", os.X_OK), reason="needs node_modules/.bin/anvil (run `npm ci` or `make setup`)")

#: The painted square of the edit tests: x, y, side, in pixels of the 512 x 512 portrait.
SQUARE = (300, 200, 64)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _save_pixels(rgb: np.ndarray, path: Path) -> Path:
    """A plain PNG of ``rgb``: pixels only, no metadata chunks."""
    Image.fromarray(rgb).save(path, format="PNG")
    return path


def _digest(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def _paint_square(src: Path, dest: Path) -> Path:
    rgb = _pixels(src).copy()
    x, y, side = SQUARE
    rgb[y : y + side, x : x + side] = (255, 0, 0)
    return _save_pixels(rgb, dest)


def _overlaps(region: object, x: int, y: int, w: int, h: int) -> bool:
    rx, ry, rw, rh = region.x, region.y, region.width, region.height  # type: ignore[attr-defined]
    return rx < x + w and x < rx + rw and ry < y + h and y < ry + rh


# ---------------------------------------------------------------------------- authentic


@needs_anvil
def test_protected_photo_verifies_authentic(published: Any) -> None:
    out = published.outcome
    assert out.output.is_file() and out.output.name == "portrait.shield.png"
    assert out.ledger["status"] == "anchored" and out.ledger["tx"]
    assert out.manifest["state"] == "signed"
    assert out.psnr is None and any("skipped" in n for n in out.notes)

    report = verify_file(out.output, published.settings)

    assert report.verdict is Verdict.AUTHENTIC and report.exit_code == 0, report.reasons
    assert report.asset_id == out.asset_id
    assert report.c2pa.state == "trusted"
    assert report.watermark.status == "intact" and report.watermark.intact_fraction == 1.0
    assert report.watermark.tampered_regions == ()
    assert report.ledger.found and report.ledger.hashes_match is True
    assert report.ledger.tx == out.ledger["tx"] and report.ledger.block == out.ledger["block"]
    assert report.ledger.publisher_consistent is True
    assert report.skipped == ()


@needs_anvil
def test_input_is_left_untouched(published: Any) -> None:
    assert _digest(published.source) == published.source_digest
    assert not np.array_equal(_pixels(published.source), _pixels(published.outcome.output))


@needs_anvil
def test_existing_output_is_refused_and_kept(published: Any) -> None:
    before = _digest(published.outcome.output)
    with pytest.raises(OutputError, match="already exists"):
        protect_files([published.source], published.settings, ProtectOptions(outdir=published.outcome.output.parent, adversarial=False))
    assert _digest(published.outcome.output) == before
    assert _digest(published.source) == published.source_digest


# ---------------------------------------------------------------------------- edits


@needs_anvil
def test_painted_square_is_modified_and_located(published: Any, tmp_path: Path) -> None:
    edited = _paint_square(published.outcome.output, tmp_path / "edited.png")
    tamper_map = tmp_path / "map.png"

    report = verify_file(edited, published.settings, tamper_map=tamper_map)

    assert report.verdict is Verdict.MODIFIED and report.exit_code == 1, report.reasons
    assert report.asset_id == published.outcome.asset_id
    regions = report.watermark.tampered_regions
    x, y, side = SQUARE
    assert regions and any(_overlaps(r, x, y, side, side) for r in regions)
    # Localised: every reported region lies within one block of the painted square.
    for r in regions:
        assert x - BLOCK_SIZE <= r.x and r.x + r.width <= x + side + BLOCK_SIZE, r
        assert y - BLOCK_SIZE <= r.y and r.y + r.height <= y + side + BLOCK_SIZE, r
    assert 0.9 < report.watermark.intact_fraction < 1.0
    with Image.open(tamper_map) as im:
        assert im.width == 512 and 512 + 30 <= im.height <= 512 + 90  # the photo, then the legend strip


# ---------------------------------------------------------------------------- stripped / unknown


@needs_anvil
def test_stripped_metadata_is_authentic_stripped(published: Any, tmp_path: Path) -> None:
    stripped = _save_pixels(_pixels(published.outcome.output), tmp_path / "stripped.png")
    assert stripped.read_bytes() != published.outcome.output.read_bytes()

    report = verify_file(stripped, published.settings)

    # DESIGN.md: exit 0 for "intact pixels with stripped metadata".
    assert report.verdict is Verdict.AUTHENTIC_STRIPPED and report.exit_code == 0, report.reasons
    assert report.c2pa.state == "absent"
    assert report.asset_id == published.outcome.asset_id
    assert report.watermark.present and report.watermark.status == "intact"
    assert report.watermark.key_source == "ledger publisher registry"
    assert report.ledger.found and report.ledger.tx == published.outcome.ledger["tx"]


@needs_anvil
def test_stripped_photo_pixel_hash_is_checked_against_the_ledger(published: Any, tmp_path: Path) -> None:
    stripped = _save_pixels(_pixels(published.outcome.output), tmp_path / "stripped.png")
    report = verify_file(stripped, published.settings)
    assert report.verdict is Verdict.AUTHENTIC_STRIPPED
    assert any("pixel hash matches" in r for r in report.reasons)
    assert report.ledger.pixels_match is True and report.ledger.hashes_match is True


def test_never_protected_photo_has_no_provenance(e2e_settings: Settings, tmp_path: Path) -> None:
    photo = write_sample(tmp_path / "plain.png")
    report = verify_file(photo, e2e_settings)
    assert report.verdict is Verdict.NO_PROVENANCE and report.exit_code == 2
    assert report.asset_id is None
    assert report.c2pa.state == "absent" and not report.watermark.present
    assert not report.ledger.found
    # Nothing may be started or written for a photo without provenance.
    assert Devnet(e2e_settings).pid() is None


# ---------------------------------------------------------------------------- bad inputs


def _bad_inputs(folder: Path) -> dict[str, tuple[Path, type[ImageError]]]:
    good = write_sample(folder / "good.png")
    truncated = folder / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    text = folder / "notes.jpg"
    text.write_text("this is not a photo\n")
    return {
        "missing": (folder / "missing.png", ImageError),
        "not an image": (text, UnsupportedImageError),
        "truncated": (truncated, CorruptImageError),
    }


@pytest.mark.parametrize("case", ["missing", "not an image", "truncated"])
def test_bad_input_is_a_typed_error_and_writes_nothing(e2e_settings: Settings, tmp_path: Path, case: str) -> None:
    photo, error = _bad_inputs(tmp_path)[case]
    before = photo.read_bytes() if photo.exists() else None
    with pytest.raises(error) as info:
        protect_files([photo], e2e_settings, ProtectOptions(outdir=tmp_path / "out", adversarial=False))
    assert photo.name in info.value.message
    assert (photo.read_bytes() if photo.exists() else None) == before
    assert not list(tmp_path.rglob("*.shield.png"))
    with pytest.raises(error):
        verify_file(photo, e2e_settings, use_ledger=False)


def test_two_inputs_with_one_output_name_are_refused(e2e_settings: Settings, tmp_path: Path) -> None:
    a = write_sample(tmp_path / "a" / "same.png")
    b = write_sample(tmp_path / "b" / "same.jpg")
    with pytest.raises(InputError, match="same output"):
        protect_files([a, b], e2e_settings, ProtectOptions(outdir=tmp_path / "out", adversarial=False))


# ---------------------------------------------------------------------------- ledger offline


def _protect_with_chain_down(cfg: Settings, photo: Path) -> tuple[str, Path]:
    """Protect while the devnet cannot start (its port is taken); returns (asset id, output)."""
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", cfg.chain.anvil_port))
        blocker.listen()
        [outcome] = protect_files([photo], cfg, ProtectOptions(adversarial=False))
    assert outcome.ledger["status"] == "queued", outcome.ledger
    assert outcome.output.is_file()
    return outcome.asset_id, outcome.output


def test_queued_anchor_tells_how_to_send_it_later(e2e_settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", e2e_settings.chain.anvil_port))
        blocker.listen()
        [outcome] = protect_files([write_sample(tmp_path / "photo.png")], e2e_settings, ProtectOptions(adversarial=False))
    assert outcome.ledger["status"] == "queued"
    assert "shield anchor --pending" in outcome.ledger["message"]


def _drain(cfg: Settings) -> list[object]:
    keys = ensure_keystore(cfg)
    ledger = open_ledger(cfg, keys.eth_private_key)
    try:
        assert ledger.online, ledger.unavailable
        return list(ledger.drain())
    finally:
        ledger.close()


def test_protect_with_chain_down_queues_the_anchor(e2e_settings: Settings, tmp_path: Path) -> None:
    asset_id, output = _protect_with_chain_down(e2e_settings, write_sample(tmp_path / "photo.png"))

    ledger = open_ledger(e2e_settings, None, start_devnet=False)
    try:
        assert not ledger.online
        queued = [item.key.hex() for item in ledger.outbox.open_items()]
    finally:
        ledger.close()
    assert queued == [asset_id]

    report = verify_file(output, e2e_settings)
    # DESIGN.md: exit 3 "could not check", naming the skipped check.
    assert report.verdict is Verdict.UNCHECKED and report.exit_code == 3, report.reasons
    assert any(s.startswith("ledger") for s in report.skipped)
    assert report.c2pa.state == "trusted" and report.watermark.status == "intact"
    assert Devnet(e2e_settings).pid() is None  # verify never starts a devnet


@needs_anvil
def test_queued_anchor_is_sent_when_the_chain_is_back(e2e_settings: Settings, tmp_path: Path) -> None:
    asset_id, output = _protect_with_chain_down(e2e_settings, write_sample(tmp_path / "photo.png"))

    outcomes = _drain(e2e_settings)

    assert [(o.asset_id.hex(), o.status) for o in outcomes] == [(asset_id, AnchorStatus.ANCHORED)]  # type: ignore[attr-defined]
    assert _drain(e2e_settings) == []  # nothing left queued, nothing sent twice
    report = verify_file(output, e2e_settings)
    assert report.ledger.found and report.ledger.hashes_match is True
    assert report.ledger.tx == outcomes[0].tx_hash  # type: ignore[attr-defined]


@needs_anvil
def test_queued_then_anchored_photo_verifies_authentic(e2e_settings: Settings, tmp_path: Path) -> None:
    _, output = _protect_with_chain_down(e2e_settings, write_sample(tmp_path / "photo.png"))
    _drain(e2e_settings)
    report = verify_file(output, e2e_settings)
    assert report.verdict is Verdict.AUTHENTIC and report.exit_code == 0, report.reasons


# ---------------------------------------------------------------------------- real perturbation


@needs_anvil
def test_adversarial_fast_on_a_face_photo_then_verify(shared_data: Path, e2e_settings: Settings, tmp_path: Path) -> None:
    photo = shutil.copyfile(shared_data / "photos" / "deepface_img25.jpg", tmp_path / "face.jpg")
    before = _digest(photo)

    [outcome] = protect_files([photo], e2e_settings, ProtectOptions(strength="fast", seed=7))

    assert _digest(photo) == before
    assert outcome.faces >= 1
    assert outcome.psnr is not None and 30.0 < outcome.psnr < 60.0
    assert outcome.ssim is not None and outcome.ssim > 0.9
    assert outcome.threat_models, "the self-check names the targeted threat models"
    for check in outcome.threat_models.values():
        assert 0.0 <= check["disruption"] <= 1.0 and check["trials"] >= 1
    assert outcome.face_stages and {s.model for s in outcome.face_stages[0].stages} == set(outcome.threat_models)
    assert {s.role for s in outcome.face_stages[0].stages} >= {"detector", "landmarks"}
    assert outcome.ledger["status"] == "anchored"

    report = verify_file(outcome.output, e2e_settings)
    assert report.verdict is Verdict.AUTHENTIC and report.exit_code == 0, report.reasons
    assert report.c2pa.state == "trusted" and report.ledger.hashes_match is True


def test_settings_of_each_test_are_private(e2e_settings: Settings, tmp_path: Path) -> None:
    """Guard for the fixtures: nothing points at the repository's own state."""
    for path in (e2e_settings.home, e2e_settings.keys_dir):
        assert tmp_path in path.parents and REPO not in path.parents
    assert e2e_settings.chain.anvil_port != 8545


# ---------------------------------------------------------------------------- stages, formats, faces


def _stage_log(events: list[StageEvent]) -> list[tuple[str | None, Stage, StageState]]:
    return [(e.photo.name if e.photo else None, e.stage, e.state) for e in events if e.state is not StageState.ADVANCED]


@needs_anvil
def test_each_stage_is_reported_and_timed(e2e_settings: Settings, tmp_path: Path) -> None:
    photos = [write_sample(tmp_path / "a.png"), write_sample(tmp_path / "b.png")]
    events: list[StageEvent] = []

    outcomes = protect_files(photos, e2e_settings, ProtectOptions(adversarial=False), progress=events.append)

    per_photo = [Stage.LOAD, Stage.ROBUST_MARK, Stage.WATERMARK, Stage.FINGERPRINT, Stage.ENCODE, Stage.SIGN, Stage.WRITE]
    expected: list[tuple[str | None, Stage, StageState]] = [(None, Stage.SETUP, StageState.STARTED), (None, Stage.SETUP, StageState.FINISHED)]
    expected += [(p.name, s, state) for p in photos for s in per_photo for state in (StageState.STARTED, StageState.FINISHED)]
    expected += [(None, Stage.ANCHOR, StageState.STARTED), (None, Stage.ANCHOR, StageState.FINISHED)]
    assert _stage_log(events) == expected
    finished = [e for e in events if e.state is StageState.FINISHED]
    assert all(e.seconds >= 0 for e in finished)
    for outcome, photo in zip(outcomes, photos):
        assert [t.stage for t in outcome.timings] == [Stage.SETUP, *per_photo, Stage.ANCHOR]
        mine = [e for e in finished if e.photo == photo]
        assert [t.seconds for t in outcome.timings[1:-1]] == [e.seconds for e in mine]
        assert "2 photos, 2 sent" in outcome.timings[-1].detail
        assert outcome.faces == 0 and not outcome.whole_frame


@needs_anvil
def test_webp_output_is_lossless_and_verifies_authentic(e2e_settings: Settings, tmp_path: Path) -> None:
    src = write_sample(tmp_path / "portrait.png")

    [outcome] = protect_files([src], e2e_settings, ProtectOptions(adversarial=False, output_format="webp"))

    assert outcome.output == tmp_path / "portrait.shield.webp"
    data = outcome.output.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:16] == b"VP8L", "lossless WebP"
    assert b"C2PA" in data, "the manifest is embedded in the WebP"
    report = verify_file(outcome.output, e2e_settings)
    assert report.verdict is Verdict.AUTHENTIC and report.exit_code == 0, report.reasons
    assert report.c2pa.state == "trusted" and report.ledger.hashes_match is True
    assert report.watermark.status == "intact"


def test_unknown_output_format_is_refused() -> None:
    with pytest.raises(InputError, match="jpeg"):
        ProtectOptions(output_format="jpeg")


@needs_anvil
def test_whole_frame_without_a_face_says_so_and_reports_the_attack(e2e_settings: Settings, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    flat = np.clip(rng.normal(128, 20, (96, 128, 3)), 0, 255).astype(np.uint8)  # texture, no face
    photo = _save_pixels(flat, tmp_path / "wall.png")
    events: list[StageEvent] = []

    [outcome] = protect_files([photo], e2e_settings, ProtectOptions(strength="fast", whole_frame=True, seed=1), progress=events.append)

    assert outcome.whole_frame and outcome.faces == 0
    assert outcome.protected_what == "whole frame (no face found)"
    stages = [e.stage for e in events if e.state is StageState.FINISHED]
    assert stages[:7] == [Stage.SETUP, Stage.LOAD, Stage.FACES, Stage.MODELS, Stage.ATTACK, Stage.SELF_CHECK, Stage.ROBUST_MARK]
    steps = [e for e in events if e.stage is Stage.ATTACK and e.state is StageState.ADVANCED]
    assert steps and steps[-1].done == steps[-1].total and all(e.done <= e.total for e in steps)
    attack = next(t for t in outcome.timings if t.stage is Stage.ATTACK)
    assert "whole frame (no face found)" in attack.detail


@needs_anvil
def test_monkey_is_not_protected_as_a_face(shared_data: Path, e2e_settings: Settings, tmp_path: Path) -> None:
    from shield.errors import NoFaceError

    with Image.open(shared_data / "nonfaces" / "liveportrait_s22.jpg") as im:
        monkey = _save_pixels(np.asarray(im.convert("RGB")), tmp_path / "monkey.png")
    with pytest.raises(NoFaceError, match="rejected as not human"):
        protect_files([monkey], e2e_settings, ProtectOptions(strength="fast"))
    assert not (tmp_path / "monkey.shield.png").exists()


@needs_anvil
def test_lossy_webp_input_is_named_and_the_output_is_lossless(e2e_settings: Settings, tmp_path: Path) -> None:
    rgb = _pixels(write_sample(tmp_path / "portrait.png"))
    lossy = tmp_path / "lossy.webp"
    Image.fromarray(rgb).save(lossy, format="WEBP", quality=80)
    assert lossy.read_bytes()[12:16] == b"VP8 "

    [outcome] = protect_files([lossy], e2e_settings, ProtectOptions(adversarial=False, output_format="webp"))

    assert any("lossy-compressed" in n for n in outcome.notes)
    assert outcome.output.name == "lossy.shield.webp" and outcome.output.read_bytes()[12:16] == b"VP8L"
