"""A re-encoded copy verified where the publisher's local index is not (issue 19 item 2): the
visual match is measured against the PDQ fingerprint the record carries on chain, and a copy
whose robust mark is unreadable is found on the ledger by its fingerprint alone.
Real protect, real devnet, real c2pa; the verifier has its own empty home.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from shield import fingerprint, softbinding
from shield.config import Settings
from shield.ledger import Devnet
from shield.pipeline import verify_file
from shield.provenance import export_trust
from shield.report import LedgerProblem, Verdict, render_text
from tests.pipeline.conftest import HAS_ANVIL, free_port

pytestmark = pytest.mark.skipif(not HAS_ANVIL, reason="needs node_modules/.bin/anvil (run `npm ci` or `make setup`)")


def _jpeg(rgb: np.ndarray, path: Path, quality: int) -> Path:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    path.write_bytes(buf.getvalue())
    return path


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _verifier(published: Any, root: Path, rpc_url: str | None = None) -> Settings:
    """Another person's home and keys, pointed at the publisher's chain and registry."""
    cfg = dataclasses.replace(published.settings, home=root / "verifier-home", keys_dir=root / "verifier-keys")
    return cfg.with_chain(rpc_url=rpc_url or Devnet(published.settings).url, chain_id=31337,
                          registry=str(published.outcome.ledger["contract"]))


def _anchors(published: Any, root: Path) -> bytes:
    return export_trust(published.settings.keys_dir, root / "publisher.pem").read_bytes()


def test_reencoded_copy_from_another_home_is_a_reencoded_match(published: Any, tmp_path: Path) -> None:
    copy = _jpeg(_pixels(published.outcome.output), tmp_path / "posted.jpg", 75)
    cfg = _verifier(published, tmp_path)

    report = verify_file(copy, cfg, trust_anchors=_anchors(published, tmp_path))

    assert not (cfg.home / "ledger.sqlite").exists(), "no local index here"
    assert report.verdict is Verdict.REENCODED_MATCH and report.exit_code == 1, (report.reasons, report.skipped)
    sb = report.soft_binding
    assert sb.method == softbinding.ALG and sb.asset_id == published.outcome.asset_id
    assert sb.distance is not None and sb.distance <= fingerprint.MATCH_THRESHOLD
    assert "ledger record" in sb.explanation
    assert report.ledger.tx == published.outcome.ledger["tx"]
    assert "recorded fingerprint read from the ledger record" in render_text(report)


def test_copy_with_an_unreadable_mark_is_found_on_the_ledger_by_fingerprint(published: Any, tmp_path: Path) -> None:
    """JPEG quality 30 erases the robust mark but keeps the PDQ fingerprint close."""
    copy = _jpeg(_pixels(published.outcome.output), tmp_path / "posted-q30.jpg", 30)
    assert not softbinding.extract(_pixels(copy), softbinding.DEFAULT_KEY).found
    cfg = _verifier(published, tmp_path)

    report = verify_file(copy, cfg, trust_anchors=_anchors(published, tmp_path))

    assert report.verdict is Verdict.REENCODED_MATCH, (report.reasons, report.skipped, report.soft_binding)
    sb = report.soft_binding
    assert sb.method == fingerprint.NAME and sb.asset_id == published.outcome.asset_id
    assert sb.distance is not None and sb.distance <= fingerprint.MATCH_THRESHOLD
    assert "found on the ledger by its fingerprint" in sb.explanation
    assert report.ledger.found and report.ledger.publisher_trusted


def test_copied_mark_is_caught_by_the_fingerprint_on_chain(published: Any, tmp_path: Path) -> None:
    """Without the local index, the chain's fingerprint still shows the picture is another."""
    from skimage import data

    other = np.ascontiguousarray(np.asarray(Image.fromarray(data.coffee()).resize((512, 512))))
    forged = softbinding.embed(other, bytes.fromhex(published.outcome.asset_id), softbinding.DEFAULT_KEY)
    copy = _jpeg(forged, tmp_path / "forged.jpg", 90)

    report = verify_file(copy, _verifier(published, tmp_path), trust_anchors=_anchors(published, tmp_path))

    assert report.verdict is Verdict.NO_PROVENANCE and report.exit_code == 2, report.reasons
    assert report.soft_binding.matched is False and report.asset_id is None
    assert any("does not look like the recorded one" in r for r in report.reasons)


def test_unrelated_photo_is_searched_on_the_ledger_and_stays_no_provenance(published: Any, tmp_path: Path) -> None:
    from skimage import data

    copy = _jpeg(np.ascontiguousarray(data.chelsea()), tmp_path / "cat.jpg", 75)
    report = verify_file(copy, _verifier(published, tmp_path))
    assert report.verdict is Verdict.NO_PROVENANCE and not report.soft_binding.found
    assert "nor among the records on chain 31337" in report.soft_binding.explanation
    assert report.next_steps == ()


def test_unrelated_photo_with_the_node_down_says_the_ledger_was_not_searched(published: Any, tmp_path: Path) -> None:
    from skimage import data

    copy = _jpeg(np.ascontiguousarray(data.chelsea()), tmp_path / "cat.jpg", 75)
    report = verify_file(copy, _verifier(published, tmp_path, rpc_url=f"http://127.0.0.1:{free_port()}"))
    assert report.verdict is Verdict.NO_PROVENANCE and report.exit_code == 2
    assert report.ledger.problem is LedgerProblem.NODE_UNREACHABLE
    assert "could not be searched by fingerprint" in report.soft_binding.explanation
    [step] = report.next_steps
    assert "SHIELD_RPC_URL" in step
