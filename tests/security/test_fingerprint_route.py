"""The fingerprint-only route on the ledger (issue 19): anyone can anchor a PDQ value near a
published photo's under their own address, so a copy found by its fingerprint goes to the
publisher in the verifier's trust anchors, never to the nearer attacker's record."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import secrets
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shield import fingerprint, softbinding
from shield.ledger import Devnet
from shield.pipeline import verify_file
from shield.provenance import ensure_keystore, export_trust
from shield.report import Verdict
from tests.pipeline.conftest import HAS_ANVIL
from tests.security.conftest import Victim, attacker, pixels

pytestmark = [pytest.mark.chain, pytest.mark.skipif(not HAS_ANVIL, reason="needs node_modules/.bin/anvil (run npm ci)")]


def _jpeg(rgb: np.ndarray, path: Path, quality: int) -> Path:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    path.write_bytes(buf.getvalue())
    return path


def test_an_attackers_nearer_fingerprint_does_not_take_the_copy(victim: Victim, tmp_path: Path) -> None:
    photo = victim.photos[0]
    copy = _jpeg(pixels(photo.output), tmp_path / "posted-q30.jpg", 30)  # the robust mark does not survive
    rgb = pixels(copy)
    assert not softbinding.extract(rgb, softbinding.DEFAULT_KEY).found
    mallory = attacker(victim.settings, tmp_path, victim.registry, "oscar")
    keys = mallory.publisher_keys
    assert keys is not None
    mallory.register_publisher(keys.cert_fingerprint, keys.watermark_public_key)
    # The copy's own fingerprint, distance 0: nearer than the publisher's record.
    fake = [hashlib.sha256(x).digest() for x in (b"content", b"file", b"manifest")]
    mallory._online().transact("anchor", secrets.token_bytes(16), *fake, fingerprint.compute(rgb).value)
    mallory.close()
    cfg = dataclasses.replace(victim.settings, home=tmp_path / "verifier-home", keys_dir=tmp_path / "verifier-keys")
    cfg = cfg.with_chain(rpc_url=Devnet(victim.settings).url, chain_id=31337, registry=victim.registry)
    anchors = export_trust(victim.settings.keys_dir, tmp_path / "victim.pem").read_bytes()

    report = verify_file(copy, cfg, trust_anchors=anchors)

    assert report.verdict is Verdict.REENCODED_MATCH, (report.reasons, report.skipped)
    assert report.soft_binding.asset_id == photo.asset_id and report.soft_binding.method == fingerprint.NAME
    assert report.ledger.publisher == ensure_keystore(victim.settings).eth_address

    untrusted = verify_file(copy, cfg)  # nobody's anchors: no publisher is taken on trust
    assert untrusted.verdict is Verdict.UNCHECKED and untrusted.exit_code == 3, untrusted.reasons
    assert any(s.startswith("pass --trust FILE.pem") for s in untrusted.next_steps)
