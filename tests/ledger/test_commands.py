"""`shield chain`, `shield anchor`, `shield audit` end to end on a real anvil."""

from __future__ import annotations

import json
import os

from pathlib import Path

import pytest
from click.testing import CliRunner

from shield.cli import cli
from shield.config import Settings
from shield.ledger import AnchorRequest, ChainUnavailableError, Devnet, open_ledger

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.chain, pytest.mark.skipif(not os.access(REPO / "node_modules/.bin/anvil", os.X_OK),
                                                     reason="needs node_modules/.bin/anvil (run npm ci)")]


def test_chain_anchor_audit_cli(settings: Settings, free_port: int) -> None:
    env = {"SHIELD_HOME": str(settings.home), "SHIELD_KEYS_DIR": str(settings.keys_dir),
           "SHIELD_NODE_BIN": str(settings.node_bin), "SHIELD_ANVIL_PORT": str(free_port)}
    runner = CliRunner()
    cfg = settings.with_chain(anvil_port=free_port)
    try:
        up = runner.invoke(cli, ["chain", "up", "--json"], env=env, catch_exceptions=False)
        assert up.exit_code == 0, up.output
        registry = json.loads(up.output)["registry"]
        assert json.loads(up.output)["home"] == str(settings.home)
        reg = runner.invoke(cli, ["anchor", "--register-publisher", "--json"], env=env, catch_exceptions=False)
        assert reg.exit_code == 0 and json.loads(reg.output)["register_tx"], reg.output
        from shield.provenance.keystore import ensure_keystore

        keys = ensure_keystore(cfg)
        ledger = open_ledger(cfg, keys.eth_private_key, start_devnet=False)
        req = AnchorRequest(os.urandom(16), os.urandom(32), os.urandom(32), os.urandom(32))
        ledger.enqueue(req)
        ledger.close()
        drained = runner.invoke(cli, ["anchor", "--pending", "--json"], env=env, catch_exceptions=False)
        assert [o["status"] for o in json.loads(drained.output)["outcomes"]] == ["anchored"]
        out = runner.invoke(cli, ["audit", "--json"], env=env, catch_exceptions=False)
        report = json.loads(out.output)
        assert report["contract"] == registry
        [entry] = [e for e in report["entries"] if e["kind"] == "record"]
        assert entry["asset_id"] == req.asset_id.hex() and entry["flags"] == []
        [pub] = [e for e in report["entries"] if e["kind"] == "publisher"]
        assert pub["publisher"] == keys.eth_address and pub["flags"] == []
        none = runner.invoke(cli, ["audit", "--json", "--publisher", "0x" + "11" * 20], env=env, catch_exceptions=False)
        assert json.loads(none.output)["entries"] == []
        later = runner.invoke(cli, ["audit", "--json", "--since", "2999-01-01T00:00:00"], env=env, catch_exceptions=False)
        assert json.loads(later.output)["entries"] == []
        text = runner.invoke(cli, ["audit"], env=env, catch_exceptions=False).output.splitlines()
        assert text[0] == f"home: {settings.home} (from SHIELD_HOME)"
        assert text[-1] == "1 publisher, 1 record; none flagged"
        status = runner.invoke(cli, ["chain", "status", "--json"], env=env, catch_exceptions=False)
        assert json.loads(status.output)["devnet"]["running"] is True
        down = runner.invoke(cli, ["chain", "down"], env=env, catch_exceptions=False)
        assert "stopped" in down.output
        # A read does not start the devnet the user stopped: it says so and how to start it.
        with pytest.raises(ChainUnavailableError, match="is not running .* does not start it") as stopped:
            runner.invoke(cli, ["audit"], env=env, catch_exceptions=False)
        assert "shield chain up" in stopped.value.fix
        assert Devnet(cfg).pid() is None
    finally:
        Devnet(cfg).stop()
