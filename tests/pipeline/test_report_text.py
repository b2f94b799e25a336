"""The text form of a verification report: the ledger lines, the steps it asks the user to
take when a check could not run, and identifiers written alike in text and JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from shield.commands._common import to_jsonable
from shield.report import (
    C2paCode,
    C2paEvidence,
    LedgerEvidence,
    LedgerProblem,
    SoftBindingEvidence,
    Verdict,
    VerifyReport,
    WatermarkEvidence,
    decide,
    next_steps,
    render_text,
    summary_for,
)

PUBLISHER = "0x4B168C10790EbB8bE67e94AD457C61b282f0142e"
REGISTRY = "0xc17d2da62FbE15A59e629B4CA4078080bA9e0996"
TX = "0x" + "bb" * 32
INTACT = WatermarkEvidence(present=True, status="intact", intact_fraction=1.0)
TRUSTED = C2paEvidence(state="trusted", signer="shield publisher")
STRIPPED = C2paEvidence(state="absent")


def _ledger(**kw: object) -> LedgerEvidence:
    base: dict[str, object] = dict(reachable=True, found=True, chain_id=31337, contract=REGISTRY, block=3, tx=TX,
                                   timestamp=datetime(2026, 11, 24, tzinfo=UTC), publisher=PUBLISHER,
                                   publisher_proven=True, publisher_trusted=True, publisher_signer="shield publisher")
    base.update(kw)
    return LedgerEvidence(**base)  # type: ignore[arg-type]


def _report(c2pa: C2paEvidence, ledger: LedgerEvidence, soft: SoftBindingEvidence | None = None,
            wm: WatermarkEvidence = INTACT) -> VerifyReport:
    verdict, reasons, skipped = decide(c2pa, wm, ledger, None, soft)
    return VerifyReport(verdict, "aa" * 16, summary_for(verdict, soft, ledger), c2pa, wm, ledger, reasons, skipped,
                        soft_binding=soft or SoftBindingEvidence(),
                        next_steps=next_steps(verdict, c2pa, ledger, soft))


def _hash_line(text: str) -> str:
    [line] = [x.strip() for x in text.splitlines() if x.strip().startswith(("hashes", "pixel hash"))]
    return line


@pytest.mark.parametrize(("ledger", "line"), [
    (_ledger(hashes_match=True, pixels_match=True, file_match=True, manifest_match=True),
     "hashes match the record (pixels, file, manifest)"),
    (_ledger(hashes_match=True, pixels_match=True, file_match=True, manifest_match=True, revoked=True),
     "hashes match the record (pixels, file, manifest) (REVOKED)"),
    (_ledger(hashes_match=False, pixels_match=True, file_match=False, manifest_match=True),
     "hashes DIFFER from the record (file)"),
    (_ledger(hashes_match=False), "hashes DIFFER from the record"),
])
def test_ledger_hashes_are_said_in_words(ledger: LedgerEvidence, line: str) -> None:
    text = render_text(_report(TRUSTED, ledger))
    assert _hash_line(text) == line
    assert "True" not in text and "False" not in text and "None" not in text


def test_stripped_photo_does_not_claim_the_file_and_manifest_match() -> None:
    ledger = _ledger(hashes_match=True, pixels_match=True, file_match=False, manifest_match=False)
    text = render_text(_report(STRIPPED, ledger))
    assert _hash_line(text) == "pixel hash matches the record; file and manifest differ (metadata stripped)"


def test_unknown_hashes_are_not_claimed_to_match() -> None:
    text = render_text(_report(STRIPPED, _ledger()))  # the node returned no anchoring event
    assert _hash_line(text).startswith("hashes not compared")


def test_chain_down_on_the_devnet_says_shield_chain_up() -> None:
    down = LedgerEvidence(reachable=False, chain_id=31337, problem=LedgerProblem.NODE_UNREACHABLE,
                          fix="start the local devnet with `shield chain up`, then verify again",
                          explanation="eth_chainId: the Ethereum node does not answer (ConnectionError)")
    report = _report(TRUSTED, down)
    text = render_text(report)
    assert report.exit_code == 3
    assert "  to do      start the local devnet with `shield chain up`, then verify again" in text.splitlines()
    assert json.loads(json.dumps(to_jsonable(report)))["ledger"]["problem"] == "node-unreachable"


def test_untrusted_signer_names_the_trust_flag_and_the_signer() -> None:
    c2pa = C2paEvidence(state="valid", signer="alice", signer_fingerprint="ab" * 32)
    report = _report(c2pa, _ledger(hashes_match=True, pixels_match=True, file_match=True, manifest_match=True))
    [step] = report.next_steps
    assert step.startswith(f"pass --trust FILE.pem holding the trust anchors of alice (certificate SHA-256 {'ab' * 32})")
    assert "shield keys export-trust FILE.pem" in step


def test_untrusted_publisher_of_a_stripped_photo_names_its_record() -> None:
    ledger = _ledger(hashes_match=True, pixels_match=True, publisher_trusted=False, publisher_signer="bob")
    [step] = _report(STRIPPED, ledger).next_steps
    assert step.startswith(f"pass --trust FILE.pem holding the trust anchors of bob (record: chain 31337, "
                           f"publisher {PUBLISHER}, tx {TX})")


def test_registry_named_by_the_photo_is_given_as_settings() -> None:
    c2pa = C2paEvidence(state="trusted", signer="alice", ledger_chain_id=11155111, ledger_registry=REGISTRY,
                        ledger_publisher=PUBLISHER)
    none = LedgerEvidence(reachable=False, chain_id=31337, problem=LedgerProblem.NO_REGISTRY,
                          fix="set SHIELD_REGISTRY", explanation="no registry is configured for chain 31337")
    steps = _report(c2pa, none).next_steps
    assert any(f"SHIELD_CHAIN_ID=11155111 SHIELD_REGISTRY={REGISTRY}" in s and "chain 11155111" in s
               and PUBLISHER in s for s in steps), steps


def test_nothing_to_do_for_a_settled_verdict() -> None:
    ok = _ledger(hashes_match=True, pixels_match=True, file_match=True, manifest_match=True)
    report = _report(TRUSTED, ok)
    assert report.next_steps == () and "to do" not in render_text(report)


def test_asset_ids_read_the_same_in_text_and_json() -> None:
    soft = SoftBindingEvidence(True, "c1" * 16, "pdq", 3)
    report = _report(STRIPPED, _ledger(), soft, WatermarkEvidence(present=False, status="absent"))
    doc = json.loads(json.dumps(to_jsonable(report)))
    text = render_text(report)
    for value in (doc["asset_id"], doc["soft_binding"]["asset_id"]):
        assert re.fullmatch("[0-9a-f]{32}", value) and value in text


def test_batch_record_without_its_proof_asks_for_it() -> None:
    report = _report(TRUSTED, _ledger(batch_root="cd" * 32, publisher_consistent=True))  # batch event, no proof
    assert report.verdict.exit_code == 0 and report.skipped, report.reasons
    assert _hash_line(render_text(report)) == "hashes not compared (no Merkle proof of the batch this record is in)"
    [step] = report.next_steps
    assert step.startswith(f"pass --proof PHOTO.proof.json, the Merkle proof of batch {'cd' * 32}")


ASSET = "c1" * 16
ABSENT = WatermarkEvidence(present=False, status="absent")
_MISMATCH = C2paCode("assertion.dataHash.mismatch", "failure",
                     "The image bytes differ from the ones that were signed: the image was modified, or the manifest"
                     " was copied from another image.")


def _kept(*codes: C2paCode, asset_id: str = ASSET) -> C2paEvidence:
    """The manifest of a copy re-encoded after signing: signature valid, data hash not."""
    signed = (C2paCode("claimSignature.validated", "info", "The publisher's signature over the manifest is valid."),)
    return C2paEvidence(state="invalid", codes=codes or (_MISMATCH, _MISMATCH) + signed, signer="shield publisher",
                        signer_fingerprint="ab" * 32, data_hash_ok=False, asset_id=asset_id)


def test_kept_manifest_of_a_reencoded_copy_is_reencoded() -> None:
    report = _report(_kept(), _ledger(publisher_consistent=True), SoftBindingEvidence(True, ASSET, "pdq", 4), ABSENT)
    assert report.verdict is Verdict.REENCODED and report.exit_code == 1, report.reasons
    assert report.reasons[0] == (
        f"published by shield publisher ({PUBLISHER}) at 2026-11-24T00:00:00+00:00 (record asset {ASSET}, tx {TX},"
        " chain 31337); this copy was re-compressed or resized after signing, so exact integrity cannot be certified;"
        " the manifest is the publisher's; visual match 98%")
    text = render_text(report)
    assert text.count("assertion.dataHash.mismatch") == 1 and report.next_steps == ()
    assert _hash_line(text).startswith("hashes not compared (a re-encoded copy")


@pytest.mark.parametrize(("soft", "ledger", "why"), [
    (SoftBindingEvidence(True, "d2" * 16, "shield.sstile.v1", 2), _ledger(publisher_consistent=True),
     "not to the asset"),
    (SoftBindingEvidence(True, ASSET, "shield.sstile.v1", 120), _ledger(publisher_consistent=True),
     "does not look like the recorded one"),
    (SoftBindingEvidence(True, ASSET, "pdq", 4), _ledger(publisher_consistent=False),
     "not registered with the certificate that signed the manifest"),
    (SoftBindingEvidence(True, ASSET, "pdq", 4), _ledger(publisher_consistent=True, revoked=True), "revoked"),
    (SoftBindingEvidence(True, ASSET, "pdq", 4), _ledger(publisher_consistent=True, publisher_trusted=False),
     "not in your trust anchors"),
    (SoftBindingEvidence(True, ASSET, "pdq", 4), _ledger(publisher_consistent=True, publisher_proven=False),
     "cannot prove"),
    (SoftBindingEvidence(explanation="no robust mark read"), _ledger(publisher_consistent=True), "no robust mark"),
], ids=["other-asset", "far-pdq", "other-signer", "revoked", "untrusted", "unproven", "nothing-found"])
def test_kept_manifest_stays_invalid_unless_it_all_holds(soft: SoftBindingEvidence, ledger: LedgerEvidence,
                                                        why: str) -> None:
    verdict, reasons, _ = decide(_kept(), ABSENT, ledger, None, soft)
    assert verdict is Verdict.INVALID, reasons
    assert reasons[0].startswith("C2PA: The image bytes differ") and not reasons[1].startswith("C2PA: ")
    assert any(why in r for r in reasons), reasons


def test_a_forged_signature_is_not_a_reencoded_copy() -> None:
    forged = C2paCode("claimSignature.mismatch", "failure", "The signature does not match the manifest.")
    c2pa = _kept(_MISMATCH, forged)
    assert not c2pa.bytes_changed
    verdict, reasons, _ = decide(c2pa, ABSENT, _ledger(publisher_consistent=True),
                                 None, SoftBindingEvidence(True, ASSET, "pdq", 4))
    assert verdict is Verdict.INVALID and len(reasons) == 2, reasons


def test_repeated_c2pa_failures_are_said_once() -> None:
    report = _report(_kept(_MISMATCH, _MISMATCH), _ledger(), None, ABSENT)
    assert report.verdict is Verdict.INVALID
    assert report.reasons == ("C2PA: " + _MISMATCH.explanation,)
    assert render_text(report).count(_MISMATCH.code) == 1
