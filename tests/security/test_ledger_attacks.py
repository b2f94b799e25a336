"""Attacks on the ledger (issue 18, failure 1 and 2) against a real anvil, each with the
exact verdict and exit code: record squatting with copied keys, hostile revocation, a
rejected anchor, an untrusted publisher's stripped photo."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from shield import fingerprint
from shield.cli import cli
from shield.config import Settings
from shield.imaging import load_image, pixel_hash
from shield.ledger import AssetTakenError, Devnet, NotFoundError, audit, open_ledger
from shield.pipeline import ProtectOptions, protect_files, verify_file
from shield.provenance import ensure_keystore, read_manifest
from shield.report import Verdict
from shield.sample import write_sample
from tests.pipeline.conftest import HAS_ANVIL, make_settings
from tests.security.conftest import Victim, attacker, digest, pixels, save_pixels

pytestmark = [pytest.mark.chain, pytest.mark.skipif(not HAS_ANVIL, reason="needs node_modules/.bin/anvil (run npm ci)")]


def _env(cfg: Settings) -> dict[str, str]:
    return {"SHIELD_HOME": str(cfg.home), "SHIELD_KEYS_DIR": str(cfg.keys_dir), "SHIELD_NODE_BIN": str(cfg.node_bin),
            "SHIELD_ANVIL_PORT": str(cfg.chain.anvil_port)}


def _verify_cli(cfg: Settings, photo: Path, *extra: str) -> tuple[int, str]:
    out = CliRunner().invoke(cli, ["verify", str(photo), *extra], env=_env(cfg), catch_exceptions=False)
    return out.exit_code, out.output


def _pdq(photo: Path) -> bytes:
    """The photo's PDQ fingerprint, public like its pixels: anchored along with the hashes."""
    return fingerprint.compute(pixels(photo)).value


def _public_values(photo: Path) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes]:
    """What anyone reads from a published file: asset id, the three hashes, cert fp, wm key."""
    data = photo.read_bytes()
    rep = read_manifest(data, "image/png", None)
    assert rep.shield is not None and rep.signer is not None and rep.manifest_hash is not None
    assert rep.shield.watermark_public_key is not None and rep.signer.fingerprint is not None
    content = pixel_hash(load_image(photo, max_pixels=10**8).rgb)
    return (rep.shield.asset_id, content, digest(photo), rep.manifest_hash, rep.signer.fingerprint,
            rep.shield.watermark_public_key)


def test_squatting_while_the_victims_anchor_is_queued(tmp_path: Path) -> None:
    """Chain down at protect time; the attacker copies the victim's keys and asset id,
    anchors first and revokes; the victim's photo is never AUTHENTIC for the attacker and
    verifies AUTHENTIC for the victim once its anchor is sent."""
    cfg = make_settings(tmp_path / "v")
    try:
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", cfg.chain.anvil_port))
            blocker.listen()
            [out] = protect_files([write_sample(tmp_path / "photo.png")], cfg, ProtectOptions(adversarial=False))
        assert out.ledger["status"] == "queued"
        keys = ensure_keystore(cfg)
        victim = open_ledger(cfg, keys.eth_private_key)  # chain back: deploys the registry, sends nothing
        assert victim.online and victim.registry_address
        registry = victim.registry_address
        victim.close()

        asset_id, content, file_hash, manifest_hash, cert_fp, wm_key = _public_values(out.output)
        mallory = attacker(cfg, tmp_path, registry)
        client = mallory._online()
        client.transact("registerPublisher", cert_fp, wm_key, bytes(3) + bytes(300))  # no proof it can make
        client.transact("anchor", asset_id, content, file_hash, manifest_hash, _pdq(out.output))
        assert mallory.lookup(asset_id) is not None
        stripped = save_pixels(pixels(out.output), tmp_path / "stripped.png")
        for photo in (out.output, stripped):
            report = verify_file(photo, cfg)
            assert report.verdict is Verdict.UNCHECKED and report.exit_code == 3, report.reasons
            assert report.ledger.publisher is None and mallory.account.address in report.ledger.ignored_claims  # type: ignore[union-attr]
            assert any("without proof" in r for r in report.reasons)
        mallory.revoke(asset_id, "hostile")

        drained = CliRunner().invoke(cli, ["anchor", "--pending"], env=_env(cfg), catch_exceptions=False)
        assert drained.exit_code == 0 and "anchored" in drained.output and "rejected" not in drained.output, drained.output
        code, text = _verify_cli(cfg, out.output)
        assert code == 0 and text.startswith("AUTHENTIC"), text
        report = verify_file(out.output, cfg)
        assert report.ledger.publisher == keys.eth_address and not report.ledger.revoked
        code, text = _verify_cli(cfg, stripped)
        assert code == 0 and text.startswith("AUTHENTIC (metadata stripped)"), text
        assert keys.eth_address in text and mallory.account.address not in text.split("because")[0]  # type: ignore[union-attr]

        flagged = audit(cfg, open_ledger(cfg, None, start_devnet=False))
        pubs = {e.publisher: e.flags for e in flagged.entries if e.kind == "publisher"}
        assert set(pubs[mallory.account.address]) == {"shared-key", "unproven-publisher"}  # type: ignore[union-attr]
        assert pubs[keys.eth_address] == ("shared-key",)
        mallory.close()
    finally:
        Devnet(cfg).stop()


def test_copied_registration_proof_and_hostile_revocation(victim: Victim, tmp_path: Path) -> None:
    photo = victim.photos[0].output
    asset_id, content, file_hash, manifest_hash, cert_fp, wm_key = _public_values(photo)
    mallory = attacker(victim.settings, tmp_path, victim.registry, "eve")
    client = mallory._online()
    owner = open_ledger(victim.settings, None, start_devnet=False)
    stolen = owner.publisher(victim.photos[0].ledger.get("publisher") or ensure_keystore(victim.settings).eth_address)
    owner.close()
    assert stolen is not None and stolen.proof
    client.transact("registerPublisher", cert_fp, wm_key, stolen.proof)  # replayed proof: bound to the victim's address
    with pytest.raises(NotFoundError):
        mallory.revoke(asset_id, "hostile")  # the victim's record is out of reach
    client.transact("anchor", asset_id, content, file_hash, manifest_hash, _pdq(photo))
    mallory.revoke(asset_id, "hostile")  # revokes only the attacker's own copy
    code, text = _verify_cli(victim.settings, photo)
    assert code == 0 and text.startswith("AUTHENTIC"), text
    report = verify_file(photo, victim.settings)
    assert report.ledger.publisher == ensure_keystore(victim.settings).eth_address
    assert mallory.account.address in report.ledger.ignored_claims  # type: ignore[union-attr]
    mallory.close()


def test_attacker_with_its_own_valid_keys_cannot_take_the_asset_id(victim: Victim, tmp_path: Path) -> None:
    photo = victim.photos[1].output
    asset_id, content, file_hash, manifest_hash, _, _ = _public_values(photo)
    mallory = attacker(victim.settings, tmp_path, victim.registry, "trudy")
    mallory.register_publisher(mallory.publisher_keys.cert_fingerprint, mallory.publisher_keys.watermark_public_key)  # type: ignore[union-attr]
    assert mallory.claim(mallory.account.address).check.valid  # type: ignore[union-attr]
    mallory._online().transact("anchor", asset_id, content, file_hash, manifest_hash, _pdq(photo))
    mallory.revoke(asset_id, "hostile")
    report = verify_file(photo, victim.settings)
    assert report.verdict is Verdict.AUTHENTIC and report.exit_code == 0, report.reasons
    assert report.ledger.publisher != mallory.account.address  # type: ignore[union-attr]
    mallory.close()


def test_rejected_anchor_is_an_error_with_nonzero_exit(tmp_path: Path) -> None:
    """The same publisher's outbox names an asset id it already anchored with other hashes."""
    cfg = make_settings(tmp_path / "p")
    try:
        [out] = protect_files([write_sample(tmp_path / "photo.png")], cfg, ProtectOptions(adversarial=False))
        assert out.ledger["status"] == "anchored"
        keys = ensure_keystore(cfg)
        ledger = open_ledger(cfg, keys.eth_private_key, start_devnet=False)
        asset = bytes.fromhex(out.asset_id)
        ledger.db.execute("UPDATE assets SET content_hash=? WHERE asset_id=?", (bytes(32), asset))
        ledger.db.execute("UPDATE outbox SET state='pending', tx_hash=NULL, raw_tx=NULL WHERE key=?", (asset,))
        ledger.db.commit()
        ledger.close()
        result = CliRunner().invoke(cli, ["anchor", "--pending"], env=_env(cfg))
        assert result.exit_code != 0 and "rejected" in result.output, result.output
        # The CLI entry point turns this typed error into its one-line message and exit code.
        assert isinstance(result.exception, AssetTakenError) and AssetTakenError.exit_code != 0
    finally:
        Devnet(cfg).stop()


def test_untrusted_publisher_stripped_photo_is_not_authentic(victim: Victim, tmp_path: Path) -> None:
    """Failure 2: a publisher nobody trusts (its own `shield keys init`) on the same chain."""
    other = dataclasses.replace(victim.settings, keys_dir=tmp_path / "o-keys")  # same devnet, own keys
    [out] = protect_files([write_sample(tmp_path / "photo.png")], other, ProtectOptions(adversarial=False))
    assert out.ledger["status"] == "anchored", out.ledger
    victims_anchors = victim.settings.keys_dir / "trust-anchors.pem"
    code, text = _verify_cli(victim.settings, out.output, "--trust", str(victims_anchors))
    assert code == 3 and "untrusted" in text, text
    stripped = save_pixels(pixels(out.output), tmp_path / "stripped.png")
    code, text = _verify_cli(victim.settings, stripped, "--trust", str(victims_anchors))
    assert code == 3 and "not in your trust anchors" in text, text
    report = verify_file(stripped, victim.settings, trust_anchors=victims_anchors.read_bytes())
    assert report.verdict is Verdict.UNCHECKED and report.ledger.publisher_proven and not report.ledger.publisher_trusted
    own = (other.keys_dir / "trust-anchors.pem").read_bytes()
    trusted = verify_file(stripped, victim.settings, trust_anchors=own)
    assert trusted.verdict is Verdict.AUTHENTIC_STRIPPED and trusted.exit_code == 0, trusted.reasons


def test_development_certificate_is_shown(victim: Victim) -> None:
    """Failure 7: default keystores are development keys, and the verifier says so."""
    code, text = _verify_cli(victim.settings, victim.photos[0].output)
    assert code == 0 and "[DEVELOPMENT KEY]" in text and "DEVELOPMENT KEY: the signer's password" in text, text
    report = verify_file(victim.photos[0].output, victim.settings)
    assert report.c2pa.development and report.ledger.publisher_development


def test_audit_of_the_victim_names_only_the_attacks(victim: Victim) -> None:
    ledger = open_ledger(victim.settings, None, start_devnet=False)
    try:
        report = audit(victim.settings, ledger)
    finally:
        ledger.close()
    mine = ensure_keystore(victim.settings).eth_address
    # Attackers in this module anchored copies of the victim's ids and claimed its keys:
    # that is all the victim's entries may be flagged for.
    assert all(set(e.flags) <= {"duplicate", "shared-key"} for e in report.entries if e.publisher == mine)
    assert any(e.kind == "record" and e.publisher == mine for e in report.entries)
