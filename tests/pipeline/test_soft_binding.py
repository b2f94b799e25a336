"""A protected photo re-posted (metadata stripped, re-encoded, resized) is traced back to its
record through the robust soft-binding mark or the PDQ fingerprint (issue 19 items 1-3):
real protect, real devnet, real c2pa, as in test_protect_verify.py.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from shield import fingerprint, softbinding
from shield.ledger.index import read_fingerprints
from shield.pipeline import verify_file
from shield.provenance import ensure_keystore
from shield.provenance.manifest import SOFT_BINDING_ALG
from shield.report import Verdict, render_text

REPO = Path(__file__).resolve().parents[2]
needs_anvil = pytest.mark.skipif(not os.access(REPO / "node_modules" / ".bin" / "anvil", os.X_OK),
                                 reason="needs node_modules/.bin/anvil (run `npm ci` or `make setup`)")


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _jpeg(rgb: np.ndarray, path: Path, quality: int, scale: float = 1.0) -> Path:
    """What a social network does: optional resize, then JPEG, no metadata kept."""
    im = Image.fromarray(rgb)
    if scale != 1.0:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    path.write_bytes(buf.getvalue())
    return path


def test_manifest_names_the_robust_mark_as_soft_binding() -> None:
    assert SOFT_BINDING_ALG == softbinding.ALG == "shield.sstile.v1"


@needs_anvil
def test_protect_embeds_the_mark_and_records_the_fingerprint(published: Any) -> None:
    out = published.outcome
    assert out.soft_binding["alg"] == softbinding.ALG and out.soft_binding["embedded"]
    assert out.soft_binding["psnr"] > 44.0  # the mark alone: 45.3 dB by design
    read = softbinding.extract(_pixels(out.output), softbinding.DEFAULT_KEY)
    assert read.found and read.asset_id == bytes.fromhex(out.asset_id)
    rows = {aid: pdq for aid, pdq, _ in read_fingerprints(published.settings.home / "ledger.sqlite")}
    assert rows[bytes.fromhex(out.asset_id)] == fingerprint.compute(_pixels(out.output)).value


@needs_anvil
@pytest.mark.parametrize(("quality", "scale"), [(75, 1.0), (75, 0.5), (90, 1.0)])
def test_reencoded_copy_is_a_reencoded_match(published: Any, tmp_path: Path, quality: int, scale: float) -> None:
    copy = _jpeg(_pixels(published.outcome.output), tmp_path / "posted.jpg", quality, scale)

    report = verify_file(copy, published.settings)

    assert report.verdict is Verdict.REENCODED_MATCH and report.exit_code == 1, report.reasons
    assert report.asset_id == published.outcome.asset_id
    sb = report.soft_binding
    assert sb.found and sb.asset_id == published.outcome.asset_id
    assert sb.method in (softbinding.ALG, fingerprint.NAME)
    assert sb.distance is not None and sb.distance <= fingerprint.MATCH_THRESHOLD
    assert report.ledger.found and report.ledger.tx == published.outcome.ledger["tx"]
    assert report.summary.startswith("RE-ENCODED MATCH: published by ")
    assert "this copy was re-encoded, so exact integrity cannot be certified; visual match" in report.summary
    assert published.outcome.ledger["tx"] in report.summary
    assert "soft bind" in render_text(report)


@needs_anvil
def test_reencoded_match_json_has_soft_binding(published: Any, tmp_path: Path) -> None:
    from shield.commands._common import to_jsonable

    copy = _jpeg(_pixels(published.outcome.output), tmp_path / "posted.jpg", 75)
    doc = json.loads(json.dumps(to_jsonable(verify_file(copy, published.settings))))
    assert doc["verdict"] == "re-encoded-match"
    assert set(doc["soft_binding"]) >= {"found", "asset_id", "method", "distance"}
    assert doc["soft_binding"]["found"] is True and doc["soft_binding"]["asset_id"] == published.outcome.asset_id


@needs_anvil
def test_copied_mark_on_another_picture_does_not_match(published: Any, tmp_path: Path) -> None:
    """The mark's key is public: anyone can put a published asset id on their own picture."""
    from skimage import data

    other = np.ascontiguousarray(np.asarray(Image.fromarray(data.coffee()).resize((512, 512))))
    forged = softbinding.embed(other, bytes.fromhex(published.outcome.asset_id), softbinding.DEFAULT_KEY)
    copy = _jpeg(forged, tmp_path / "forged.jpg", 90)
    assert softbinding.extract(_pixels(copy), softbinding.DEFAULT_KEY).asset_id == bytes.fromhex(published.outcome.asset_id)

    report = verify_file(copy, published.settings)

    assert report.verdict is Verdict.NO_PROVENANCE and report.exit_code == 2, report.reasons
    assert report.asset_id is None
    assert report.soft_binding.matched is False
    assert any("does not look like the recorded one" in r for r in report.reasons)


@needs_anvil
def test_unrelated_photo_stays_no_provenance(published: Any, tmp_path: Path) -> None:
    from skimage import data

    copy = _jpeg(np.ascontiguousarray(data.chelsea()), tmp_path / "cat.jpg", 75)
    report = verify_file(copy, published.settings)
    assert report.verdict is Verdict.NO_PROVENANCE and report.exit_code == 2, report.reasons
    assert not report.soft_binding.found and report.asset_id is None


@needs_anvil
def test_reencoded_copy_of_an_untrusted_publisher_is_not_checked(published: Any, tmp_path: Path) -> None:
    """The same trust decision as a stripped photo: the verifier's anchors, not the record's."""
    strangers = ensure_keystore(dataclasses.replace(published.settings, keys_dir=tmp_path / "stranger-keys"))
    copy = _jpeg(_pixels(published.outcome.output), tmp_path / "posted.jpg", 75)

    report = verify_file(copy, published.settings, trust_anchors=strangers.trust_anchors_pem)

    assert report.verdict is Verdict.UNCHECKED and report.exit_code == 3, report.reasons
    assert report.ledger.found and report.ledger.publisher_proven and not report.ledger.publisher_trusted
    assert any("trust anchors" in s for s in report.skipped)


@needs_anvil
def test_reencoded_copy_offline_is_not_checked(published: Any, tmp_path: Path) -> None:
    copy = _jpeg(_pixels(published.outcome.output), tmp_path / "posted.jpg", 75)
    report = verify_file(copy, published.settings, use_ledger=False)
    assert report.verdict is Verdict.UNCHECKED and report.exit_code == 3
    assert report.soft_binding.found and any("--offline" in s for s in report.skipped)


@needs_anvil
def test_cli_reports_the_reencoded_match(published: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from shield.cli import cli

    cfg = published.settings
    env = {"SHIELD_HOME": str(cfg.home), "SHIELD_KEYS_DIR": str(cfg.keys_dir), "SHIELD_NODE_BIN": str(cfg.node_bin),
           "SHIELD_ANVIL_PORT": str(cfg.chain.anvil_port)}
    copy = _jpeg(_pixels(published.outcome.output), tmp_path / "posted.jpg", 75, 0.5)
    text = CliRunner().invoke(cli, ["verify", str(copy), "--tamper-map", str(tmp_path / "map.png")], env=env)
    assert text.exit_code == 1, text.output
    assert text.output.startswith("RE-ENCODED MATCH: published by "), text.output
    assert "tamper map not written" in text.output and not (tmp_path / "map.png").exists()
    doc = CliRunner().invoke(cli, ["verify", str(copy), "--json"], env=env)
    assert doc.exit_code == 1 and json.loads(doc.output)["soft_binding"]["asset_id"] == published.outcome.asset_id
