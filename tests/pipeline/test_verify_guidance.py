"""When a check cannot run, `shield verify` says what happened and exactly what to do (issue 19):
the devnet is down, the verifier's home knows no registry for the photo's chain, or the
publisher is not in the verifier's trust anchors. Real protect, real devnet, real c2pa.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from shield.cli import cli
from shield.config import Settings
from shield.ledger import Devnet
from shield.pipeline import verify_file
from shield.provenance import export_trust
from shield.report import LedgerProblem, Verdict
from tests.pipeline.conftest import HAS_ANVIL, free_port, published_batch

pytestmark = pytest.mark.skipif(not HAS_ANVIL, reason="needs node_modules/.bin/anvil (run `npm ci` or `make setup`)")


def _env(cfg: Settings, **extra: str) -> dict[str, str]:
    env = {"SHIELD_HOME": str(cfg.home), "SHIELD_KEYS_DIR": str(cfg.keys_dir), "SHIELD_NODE_BIN": str(cfg.node_bin),
           "SHIELD_ANVIL_PORT": str(cfg.chain.anvil_port)}
    return env | extra


def _elsewhere(published: Any, root: Path) -> Settings:
    """A verifier's own home and keystore (nothing of the publisher's), same devnet port."""
    return dataclasses.replace(published.settings, home=root / "verifier-home", keys_dir=root / "verifier-keys")


def test_devnet_down_says_shield_chain_up(published: Any, tmp_path: Path) -> None:
    """The publisher's own home with its devnet stopped (a copy of the home, no node on its port)."""
    home = tmp_path / "home"
    (home / "chain").mkdir(parents=True)
    shutil.copy(published.settings.home / "chain" / "deployment.json", home / "chain" / "deployment.json")
    cfg = dataclasses.replace(published.settings, home=home).with_chain(anvil_port=free_port())

    result = CliRunner().invoke(cli, ["verify", str(published.outcome.output)], env=_env(cfg))

    assert result.exit_code == 3, result.output
    lines = result.output.splitlines()
    assert any(x.startswith("  ledger     not checked: ") for x in lines), result.output
    assert [x for x in lines if x.startswith("  to do")] == [
        "  to do      start the local devnet with `shield chain up`, then verify again"
        " (a remote node: set SHIELD_RPC_URL, or rpc_url in [chain] of shield.toml)"], result.output
    doc = json.loads(CliRunner().invoke(cli, ["verify", "--json", str(published.outcome.output)], env=_env(cfg)).output)
    assert doc["ledger"]["problem"] == LedgerProblem.NODE_UNREACHABLE.value == "node-unreachable"
    assert "shield chain up" in doc["ledger"]["fix"] and doc["next_steps"]
    assert Devnet(cfg).pid() is None, "verify must not start the devnet"


def test_another_home_is_told_the_photos_chain_and_registry(published: Any, tmp_path: Path) -> None:
    node = Devnet(published.settings).url
    cfg = _elsewhere(published, tmp_path).with_chain(rpc_url=node, chain_id=31337)
    registry = str(published.outcome.ledger["contract"])

    report = verify_file(published.outcome.output, cfg)

    assert report.verdict is Verdict.UNCHECKED and report.ledger.problem is LedgerProblem.NO_REGISTRY
    [step] = [s for s in report.next_steps if "SHIELD_REGISTRY" in s]
    assert f"SHIELD_CHAIN_ID=31337 SHIELD_REGISTRY={registry}" in step, step
    assert "anchored on chain 31337" in step


def test_another_publisher_is_told_which_trust_anchors_to_pass(published: Any, tmp_path: Path) -> None:
    node = Devnet(published.settings).url
    cfg = _elsewhere(published, tmp_path).with_chain(rpc_url=node, chain_id=31337,
                                                     registry=str(published.outcome.ledger["contract"]))
    report = verify_file(published.outcome.output, cfg)

    assert report.verdict is Verdict.UNCHECKED and report.c2pa.state == "valid", report.reasons
    assert report.ledger.found
    [step] = report.next_steps
    assert step.startswith(f"pass --trust FILE.pem holding the trust anchors of {report.c2pa.signer} "
                           f"(certificate SHA-256 {report.c2pa.signer_fingerprint})"), step

    anchors = export_trust(published.settings.keys_dir, tmp_path / "publisher.pem")
    trusted = verify_file(published.outcome.output, cfg, trust_anchors=anchors.read_bytes())
    assert trusted.verdict is Verdict.AUTHENTIC and trusted.next_steps == (), trusted.reasons


def test_stripped_copy_elsewhere_names_the_record_to_trust(published: Any, tmp_path: Path) -> None:
    from PIL import Image

    stripped = tmp_path / "stripped.png"
    Image.open(published.outcome.output).convert("RGB").save(stripped)
    node = Devnet(published.settings).url
    cfg = _elsewhere(published, tmp_path).with_chain(rpc_url=node, chain_id=31337,
                                                     registry=str(published.outcome.ledger["contract"]))

    report = verify_file(stripped, cfg)

    assert report.verdict is Verdict.UNCHECKED and report.ledger.publisher_trusted is False, report.reasons
    [step] = report.next_steps
    assert f"publisher {report.ledger.publisher}, tx {published.outcome.ledger['tx']}" in step, step
    assert report.ledger.file_match is False and report.ledger.manifest_match is False
    assert report.ledger.pixels_match is True


def test_batch_member_without_its_sidecar_is_asked_for_the_proof(tmp_path: Path) -> None:
    """Elsewhere, without the .proof.json, the record is found through the batch's event;
    its hashes are unknown (not different) until the proof is passed."""
    with published_batch(tmp_path) as (cfg, out):
        photo = tmp_path / "received.png"
        photo.write_bytes(out.output.read_bytes())  # the sidecar stays behind
        verifier = dataclasses.replace(cfg, home=tmp_path / "v-home", keys_dir=tmp_path / "v-keys").with_chain(
            rpc_url=Devnet(cfg).url, chain_id=31337, registry=str(out.ledger["contract"]))
        anchors = export_trust(cfg.keys_dir, tmp_path / "pub.pem").read_bytes()

        report = verify_file(photo, verifier, trust_anchors=anchors)

        assert report.verdict is Verdict.AUTHENTIC and report.ledger.found and report.ledger.batch_root
        assert report.ledger.hashes_match is None and report.skipped, report.reasons
        [step] = report.next_steps
        assert step.startswith("pass --proof PHOTO.proof.json")
        proven = verify_file(photo, verifier, trust_anchors=anchors, proof_path=Path(str(out.ledger["proof"])))
        assert proven.verdict is Verdict.AUTHENTIC and proven.ledger.hashes_match is True and not proven.skipped
        assert proven.next_steps == ()
