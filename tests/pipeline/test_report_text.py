"""The text form of a verification report: the ledger lines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shield.report import C2paEvidence, LedgerEvidence, VerifyReport, WatermarkEvidence, decide, render_text, summary_for


def _report(hashes_match: bool, revoked: bool = False) -> VerifyReport:
    c2pa = C2paEvidence(state="trusted", signer="shield publisher")
    wm = WatermarkEvidence(present=True, status="intact", intact_fraction=1.0)
    ledger = LedgerEvidence(
        reachable=True, found=True, chain_id=31337, block=3, timestamp=datetime(2026, 11, 24, tzinfo=UTC),
        publisher="0x4B168C10790EbB8bE67e94AD457C61b282f0142e", hashes_match=hashes_match,
        pixels_match=hashes_match, file_match=hashes_match, manifest_match=hashes_match, revoked=revoked,
    )
    verdict, reasons, skipped = decide(c2pa, wm, ledger)
    return VerifyReport(verdict, "aa" * 16, summary_for(verdict), c2pa, wm, ledger, reasons, skipped)


@pytest.mark.parametrize(("hashes_match", "revoked", "line"), [
    (True, False, "hashes match the record"),
    (False, False, "hashes DIFFER from the record"),
    (True, True, "hashes match the record (REVOKED)"),
])
def test_ledger_hashes_are_said_in_words(hashes_match: bool, revoked: bool, line: str) -> None:
    text = render_text(_report(hashes_match, revoked))
    assert f"             {line}\n" in text + "\n"
    assert "True" not in text and "False" not in text
