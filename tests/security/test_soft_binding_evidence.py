"""The soft-binding route's verdict from typed evidence (issue 19): a copy without manifest
and fragile watermark is at best `re-encoded-match`, never authentic, and only when the
mark (public, so forgeable) is backed by a visual match, a proven publisher and trust.
No files, keys or chain here; tests/pipeline/test_soft_binding.py runs the real route.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shield.report import (
    C2paEvidence,
    LedgerEvidence,
    SoftBindingEvidence,
    Verdict,
    WatermarkEvidence,
    decide,
    summary_for,
)

ABSENT = C2paEvidence(state="absent")
NO_MARK = WatermarkEvidence(present=False, status="absent")
AID = "c1" * 16
MARK = SoftBindingEvidence(found=True, asset_id=AID, method="shield.sstile.v1", distance=4)
REPO = Path(__file__).resolve().parents[2]


def _ledger(**kw: object) -> LedgerEvidence:
    base: dict[str, object] = dict(reachable=True, found=True, chain_id=31337, block=3, tx="0x" + "12" * 32,
                                   publisher="0x" + "ab" * 20, timestamp=datetime(2026, 12, 3, tzinfo=UTC),
                                   publisher_proven=True, publisher_trusted=True, publisher_signer="alice")
    base.update(kw)
    return LedgerEvidence(**base)  # type: ignore[arg-type]


def test_full_evidence_is_a_reencoded_match_never_authentic() -> None:
    verdict, reasons, skipped = decide(ABSENT, NO_MARK, _ledger(), None, MARK)
    assert verdict is Verdict.REENCODED_MATCH and verdict.exit_code == 1 and not skipped
    summary = summary_for(verdict, MARK, _ledger())
    assert summary.startswith("RE-ENCODED MATCH: published by alice (0x" + "ab" * 20 + ") at 2026-12-03T00:00:00+00:00")
    assert f"(record asset {AID}, tx 0x{'12' * 32}, chain 31337)" in summary
    assert summary.endswith("this copy was re-encoded, so exact integrity cannot be certified; visual match 98%")


@pytest.mark.parametrize(("soft", "ledger", "verdict", "words"), [
    (SoftBindingEvidence(), _ledger(), Verdict.NO_PROVENANCE, "no shield watermark"),
    (SoftBindingEvidence(True, AID, "shield.sstile.v1", 120), _ledger(), Verdict.NO_PROVENANCE, "copied onto another picture"),
    (MARK, _ledger(found=False), Verdict.NO_PROVENANCE, "no publisher that proves its keys has a record"),
    (MARK, _ledger(reachable=False, found=False, explanation="node down"), Verdict.UNCHECKED, "node down"),
    (MARK, _ledger(publisher_trusted=False), Verdict.UNCHECKED, "not in your trust anchors"),
    (MARK, _ledger(revoked=True, revocation_reason="leaked"), Verdict.INVALID, "revoked"),
    (MARK, _ledger(publisher_proven=False), Verdict.INVALID, "cannot prove"),
    (SoftBindingEvidence(True, AID, "shield.sstile.v1", None, explanation="kept elsewhere"), _ledger(),
     Verdict.UNCHECKED, "kept elsewhere"),
])
def test_each_gap_keeps_it_from_matching(soft: SoftBindingEvidence, ledger: LedgerEvidence, verdict: Verdict, words: str) -> None:
    got, reasons, skipped = decide(ABSENT, NO_MARK, ledger, None, soft)
    assert got is verdict, (reasons, skipped)
    assert words in " ".join(reasons + skipped), (reasons, skipped)


def test_threshold_is_inclusive() -> None:
    at = SoftBindingEvidence(True, AID, "pdq", 31)
    over = SoftBindingEvidence(True, AID, "pdq", 32)
    assert decide(ABSENT, NO_MARK, _ledger(), None, at)[0] is Verdict.REENCODED_MATCH
    assert decide(ABSENT, NO_MARK, _ledger(), None, over)[0] is Verdict.NO_PROVENANCE


def test_a_present_fragile_watermark_takes_the_usual_route() -> None:
    """The soft binding never overrides the fragile watermark's finding."""
    tampered = WatermarkEvidence(present=True, status="tampered", intact_fraction=0.5)
    assert decide(ABSENT, tampered, _ledger(), None, MARK)[0] is Verdict.MODIFIED


@pytest.mark.skipif(not os.access(REPO / "node_modules" / ".bin" / "anvil", os.X_OK), reason="needs node_modules/.bin/anvil")
def test_revoked_record_makes_a_reencoded_copy_invalid(tmp_path: Path) -> None:
    import io

    from PIL import Image

    from shield.ledger import Devnet, open_ledger
    from shield.pipeline import ProtectOptions, protect_files, verify_file
    from shield.provenance import ensure_keystore
    from shield.sample import write_sample
    from tests.pipeline.conftest import make_settings

    cfg = make_settings(tmp_path)
    try:
        [out] = protect_files([write_sample(tmp_path / "p.png")], cfg, ProtectOptions(adversarial=False))
        ledger = open_ledger(cfg, ensure_keystore(cfg).eth_private_key)
        ledger.revoke(bytes.fromhex(out.asset_id), "key leaked")
        ledger.close()
        buf = io.BytesIO()
        Image.open(out.output).convert("RGB").save(buf, format="JPEG", quality=75)
        (tmp_path / "posted.jpg").write_bytes(buf.getvalue())
        report = verify_file(tmp_path / "posted.jpg", cfg)
        assert report.verdict is Verdict.INVALID and "key leaked" in " ".join(report.reasons), report.reasons
    finally:
        Devnet(cfg).stop()
