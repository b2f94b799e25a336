"""A batch member re-signed by another publisher is never authentic, with or without its
Merkle proof: the manifest's signer must be the on-chain publisher's certificate.

The forgery keeps the victim's pixels (so its fragile watermark) and names the victim's
asset id and watermark key (all public), but its C2PA manifest is signed by Mallory, whose
certificate the verifier also trusts. Without the ``.proof.json`` sidecar the record's
hashes cannot be compared, so the signer/publisher comparison is all that stands between
the forgery and "authentic". Real protect, real devnet, real c2pa.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from shield.ledger import Devnet
from shield.pipeline import verify_file
from shield.provenance import ManifestSpec, ensure_keystore, export_trust, read_manifest, sign_image
from shield.report import Verdict
from tests.pipeline.conftest import HAS_ANVIL, make_settings, published_batch

pytestmark = pytest.mark.skipif(not HAS_ANVIL, reason="needs node_modules/.bin/anvil (run `npm ci` or `make setup`)")


def test_batch_member_signed_by_another_publisher_is_invalid_without_its_proof(tmp_path: Path) -> None:
    with published_batch(tmp_path) as (cfg, out):
        genuine = read_manifest(out.output.read_bytes(), "image/png", None)
        assert genuine.shield is not None and genuine.signer is not None
        assert genuine.shield.watermark_public_key is not None

        # Mallory's own (valid, trusted by the verifier) keys sign a manifest naming the
        # victim's asset id, watermark key and ledger record over the victim's pixels.
        mallory = ensure_keystore(make_settings(tmp_path / "mallory"), env={})
        assert mallory.cert_fingerprint != genuine.signer.fingerprint
        target = genuine.shield.ledger
        spec = ManifestSpec(
            title="received.png",
            asset_id=genuine.shield.asset_id,
            watermark={"scheme": genuine.shield.watermark_scheme, "block_size": 8,
                       "public_key": genuine.shield.watermark_public_key.hex()},
            ledger={"chain_id": target.chain_id, "registry": target.registry, "publisher": target.publisher},
        )
        forged = tmp_path / "received.png"  # the victim's sidecar stays behind
        forged.write_bytes(sign_image(out.output.read_bytes(), spec, mallory).data)

        verifier = dataclasses.replace(cfg, home=tmp_path / "v-home", keys_dir=tmp_path / "v-keys").with_chain(
            rpc_url=Devnet(cfg).url, chain_id=31337, registry=str(out.ledger["contract"]))
        anchors = export_trust(cfg.keys_dir, tmp_path / "pub.pem").read_bytes() + mallory.trust_anchors_pem

        report = verify_file(forged, verifier, trust_anchors=anchors)

        # The forgery gets this far: trusted signature, intact watermark, the victim's batch record.
        assert report.c2pa.state == "trusted" and report.c2pa.signer_fingerprint == mallory.cert_fingerprint.hex()
        assert report.watermark.status == "intact", report.watermark
        assert report.ledger.found and report.ledger.batch_root and report.ledger.hashes_match is None
        # ... and stops at the publisher check.
        assert report.ledger.publisher_consistent is False, report.ledger
        assert report.verdict is Verdict.INVALID, (report.verdict, report.reasons)
        assert any("not registered with this signer's certificate" in r for r in report.reasons), report.reasons

        # With the proof the verdict is the same, and the same comparison says so.
        proven = verify_file(forged, verifier, trust_anchors=anchors, proof_path=Path(str(out.ledger["proof"])))
        assert proven.verdict is Verdict.INVALID and proven.ledger.publisher_consistent is False, proven.reasons

        # The genuine member, without its proof, still verifies authentic: the check
        # holds the forgery only.
        genuine_copy = tmp_path / "genuine.png"
        genuine_copy.write_bytes(out.output.read_bytes())
        ok = verify_file(genuine_copy, verifier, trust_anchors=anchors)
        assert ok.verdict is Verdict.AUTHENTIC and ok.ledger.publisher_consistent is True, ok.reasons
