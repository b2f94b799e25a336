"""A manifest whose signer could not be compared with the ledger's publisher is never
authentic (fail closed).

shield recovers the certificate that signed a manifest (``signer_fingerprint``) only
from PNG and WebP files; the C2PA SDK names the signer of a JPEG's or TIFF's manifest but
does not hand out its certificate. There ``publisher_consistent`` stays None, and another
certificate the verifier trusts could have signed the manifest over the published pixels.
The verdict is then ``unchecked`` with the reason, never ``authentic``; and a kept
manifest of a re-encoded copy is not the publisher's (``invalid``, never ``re-encoded``).
"""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from shield.report import (
    C2paCode,
    C2paEvidence,
    ImageEvidence,
    LedgerEvidence,
    SoftBindingEvidence,
    Verdict,
    WatermarkEvidence,
    decide,
)
from tests.pipeline.conftest import HAS_ANVIL, make_settings, published_batch

ASSET = "c1" * 16
TRUSTED = C2paEvidence(state="trusted", signer="shield publisher", asset_id=ASSET)
INTACT = WatermarkEvidence(present=True, status="intact", intact_fraction=1.0)
ABSENT = WatermarkEvidence(present=False, status="absent")
TIFF = ImageEvidence("received.tif", 64, 48, "TIFF")


def _ledger(**kw: object) -> LedgerEvidence:
    """A found record whose every hash matches and whose publisher proves its keys and is trusted."""
    base: dict[str, object] = dict(reachable=True, found=True, chain_id=31337, block=3, tx="0x" + "bb" * 32,
                                   timestamp=datetime(2026, 12, 3, tzinfo=UTC), publisher="0x" + "ab" * 20,
                                   publisher_proven=True, publisher_trusted=True, publisher_signer="shield publisher",
                                   hashes_match=True, pixels_match=True, file_match=True, manifest_match=True)
    base.update(kw)
    return LedgerEvidence(**base)  # type: ignore[arg-type]


def test_signer_compared_and_the_same_is_authentic() -> None:
    verdict, reasons, skipped = decide(TRUSTED, INTACT, _ledger(publisher_consistent=True), TIFF)
    assert verdict is Verdict.AUTHENTIC and skipped == (), reasons


@pytest.mark.parametrize("ledger", [
    _ledger(publisher_consistent=None),
    _ledger(publisher_consistent=None, hashes_match=None, pixels_match=None, file_match=None, manifest_match=None,
            batch_root="cd" * 32),  # a batch member without its Merkle proof: the comparison is all there is
], ids=["hashes-match", "batch-member-without-proof"])
def test_signer_not_compared_is_not_authentic(ledger: LedgerEvidence) -> None:
    verdict, reasons, skipped = decide(TRUSTED, INTACT, ledger, TIFF)
    assert verdict is Verdict.UNCHECKED and verdict.exit_code == 3, (verdict, reasons)
    assert any("signer could not be compared with the record's publisher" in r for r in reasons), reasons
    assert any(s.startswith("signer vs publisher") and "TIFF file" in s for s in skipped), skipped


def test_signer_not_compared_of_an_untrusted_signer_says_both() -> None:
    valid = dataclasses.replace(TRUSTED, state="valid")
    verdict, reasons, skipped = decide(valid, INTACT, _ledger(publisher_consistent=None), TIFF)
    assert verdict is Verdict.UNCHECKED, reasons
    assert any(s.startswith("signer vs publisher") for s in skipped) and any("signer trust" in s for s in skipped)


def test_signer_not_compared_does_not_ask_for_the_stripped_path() -> None:
    """Without a manifest there is no signer to compare: the registered certificate decides."""
    verdict, reasons, _ = decide(C2paEvidence(state="absent"), INTACT, _ledger(publisher_consistent=None))
    assert verdict is Verdict.AUTHENTIC_STRIPPED, reasons


def test_kept_manifest_whose_signer_was_not_compared_is_not_reencoded() -> None:
    signed = C2paCode("claimSignature.validated", "info", "The publisher's signature over the manifest is valid.")
    mismatch = C2paCode("assertion.dataHash.mismatch", "failure", "The image bytes differ from the ones that were signed.")
    kept = C2paEvidence(state="invalid", codes=(mismatch, signed), signer="shield publisher", data_hash_ok=False,
                        asset_id=ASSET)
    soft = SoftBindingEvidence(True, ASSET, "pdq", 4)
    ledger = _ledger(publisher_consistent=None, hashes_match=None, pixels_match=None, file_match=None,
                     manifest_match=None)
    verdict, reasons, _ = decide(kept, ABSENT, ledger, None, soft)
    assert verdict is Verdict.INVALID, reasons
    assert any("signer could not be compared with the record's publisher" in r for r in reasons), reasons
    assert decide(kept, ABSENT, dataclasses.replace(ledger, publisher_consistent=True), None, soft)[0] \
        is Verdict.REENCODED


@pytest.mark.skipif(not HAS_ANVIL, reason="needs node_modules/.bin/anvil (run `npm ci` or `make setup`)")
def test_batch_member_resigned_as_tiff_by_another_trusted_signer_is_not_authentic(tmp_path: Path) -> None:
    """Real protect, real devnet, real c2pa: Mallory saves the victim's pixels losslessly as
    TIFF (the fragile watermark holds) and signs a manifest naming the victim's asset id,
    watermark key and record with her own certificate, which the verifier also trusts.
    Without the batch's Merkle proof no hash is compared, and the TIFF's signer certificate
    is not recovered, so nothing compares the signer with the publisher."""
    from shield.ledger import Devnet
    from shield.pipeline import verify_file
    from shield.provenance import ManifestSpec, ensure_keystore, export_trust, read_manifest, sign_image

    with published_batch(tmp_path) as (cfg, out):
        genuine = read_manifest(out.output.read_bytes(), "image/png", None)
        assert genuine.shield is not None and genuine.shield.watermark_public_key is not None

        mallory = ensure_keystore(make_settings(tmp_path / "mallory"), env={})
        target = genuine.shield.ledger
        spec = ManifestSpec(
            title="received.tif",
            format="image/tiff",
            asset_id=genuine.shield.asset_id,
            watermark={"scheme": genuine.shield.watermark_scheme, "block_size": 8,
                       "public_key": genuine.shield.watermark_public_key.hex()},
            ledger={"chain_id": target.chain_id, "registry": target.registry, "publisher": target.publisher},
        )
        tiff = io.BytesIO()
        Image.open(out.output).convert("RGB").save(tiff, "TIFF")
        forged = tmp_path / "received.tif"
        forged.write_bytes(sign_image(tiff.getvalue(), spec, mallory, mime="image/tiff").data)

        verifier = dataclasses.replace(cfg, home=tmp_path / "v-home", keys_dir=tmp_path / "v-keys").with_chain(
            rpc_url=Devnet(cfg).url, chain_id=31337, registry=str(out.ledger["contract"]))
        anchors = export_trust(cfg.keys_dir, tmp_path / "pub.pem").read_bytes() + mallory.trust_anchors_pem
        report = verify_file(forged, verifier, trust_anchors=anchors)

        # Everything else holds: a trusted signature, the victim's intact watermark, its batch record.
        assert report.c2pa.state == "trusted" and report.watermark.status == "intact", (report.c2pa, report.watermark)
        assert report.ledger.found and report.ledger.batch_root and report.ledger.hashes_match is None, report.ledger
        assert report.c2pa.signer_fingerprint is None and report.ledger.publisher_consistent is None
        assert report.verdict is not Verdict.AUTHENTIC and report.verdict is Verdict.UNCHECKED, report.reasons
        assert any("signer could not be compared" in r for r in report.reasons), report.reasons

        # With the batch's proof the hashes are compared, and the forgery's differ.
        proven = verify_file(forged, verifier, trust_anchors=anchors, proof_path=Path(str(out.ledger["proof"])))
        assert proven.verdict is Verdict.INVALID, (proven.verdict, proven.reasons)
