"""The light reader (standard-library JSON-RPC, no web3) against a real anvil: it reads
what the full ledger reads, and fails fast and typed when the node is not there."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shield.config import Settings, load_settings
from shield.ledger import AnchorRequest, Devnet, Ledger, open_ledger, open_reader
from shield.ledger.errors import ChainIdMismatchError, ChainUnavailableError, DeploymentMissingError
from tests.ledger.conftest import make_keys

REPO = Path(__file__).resolve().parents[2]
KEY = (0xFEED).to_bytes(32, "big")

pytestmark = [pytest.mark.chain, pytest.mark.skipif(not os.access(REPO / "node_modules/.bin/anvil", os.X_OK),
                                                     reason="needs node_modules/.bin/anvil (run npm ci)")]


def _settings(home: Path, port: int) -> Settings:
    env = {"SHIELD_HOME": str(home), "SHIELD_KEYS_DIR": str(home / "keys"),
           "SHIELD_NODE_BIN": str(REPO / "node_modules" / ".bin"), "SHIELD_ANVIL_PORT": str(port)}
    return load_settings(env=env, cwd=home)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _req(seed: int, pdq: bool = True) -> AnchorRequest:
    return AnchorRequest(os.urandom(16), os.urandom(32), os.urandom(32), os.urandom(32),
                         seed.to_bytes(32, "big") if pdq else None)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Ledger, dict[str, AnchorRequest]]]:
    cfg = _settings(tmp_path_factory.mktemp("reader") / "home", _port())
    keys = make_keys("reader test")
    ledger = open_ledger(cfg, KEY, publisher_keys=keys)
    try:
        assert ledger.online, ledger.unavailable
        ledger.register_publisher(keys.cert_fingerprint, keys.watermark_public_key)
        reqs = {"single": _req(1 << 200), "revoked": _req(2 << 200), "bare": _req(3, pdq=False)}
        for r in reqs.values():
            ledger.anchor(r)
        ledger.revoke(reqs["revoked"].asset_id, "wrong photo")
        members = [_req((10 + i) << 200) for i in range(3)]
        ledger.enqueue_batch(members)
        ledger.drain()
        reqs.update({f"member{i}": m for i, m in enumerate(members)})
        yield cfg, ledger, reqs
    finally:
        ledger.close()
        Devnet(cfg).stop()


def test_reader_reads_what_the_ledger_reads(chain: tuple[Settings, Ledger, dict[str, AnchorRequest]]) -> None:
    cfg, ledger, reqs = chain
    reader = open_reader(cfg)
    try:
        assert reader.online and reader.chain_id == ledger.chain_id and reader.registry_address == ledger.registry_address
        me = ledger.account.address  # type: ignore[union-attr]
        for name, req in reqs.items():
            full, light = ledger.lookup(req.asset_id, publisher=me), reader.lookup(req.asset_id, publisher=me)
            assert light == full, name  # the same home: our own batch proofs come from the read-only index
            assert light is not None and reader.check(light, req, reader.proof_for(req.asset_id))
        assert reader.lookup(reqs["revoked"].asset_id, publisher=me).revocation_reason == "wrong photo"  # type: ignore[union-attr]
        fp = ledger.claim(me).info.watermark_key  # type: ignore[union-attr]
        from shield.ledger.proof import watermark_fingerprint

        claims, truncated = reader.claims(watermark_fingerprint(fp))
        assert not truncated and [(c.info, c.check.valid) for c in claims] == [
            (c.info, c.check.valid) for c in ledger.claims(watermark_fingerprint(fp))[0]]
        assert reader.publishers_of(reqs["member1"].asset_id) == ledger.publishers_of(reqs["member1"].asset_id) == [me]
        pdq = reqs["member2"].pdq
        assert pdq is not None
        assert reader.find_by_fingerprint(pdq) == ledger.find_by_fingerprint(pdq)
        assert reader.find_by_fingerprint(pdq, max_distance=0)[0].record.asset_id == reqs["member2"].asset_id
    finally:
        reader.close()


def test_reader_from_another_home_finds_by_fingerprint(chain: tuple[Settings, Ledger, dict[str, AnchorRequest]],
                                                       tmp_path: Path) -> None:
    cfg, ledger, reqs = chain
    other = dataclasses.replace(cfg, home=tmp_path / "elsewhere").with_chain(registry=ledger.registry_address)
    # Its own (stopped) devnet has the same port: the node there is not its chain, not asked.
    stopped = open_reader(other)
    assert isinstance(stopped.unavailable, ChainUnavailableError) and "is not running" in str(stopped.unavailable)
    stopped.close()
    # Elsewhere a verifier names the publisher's node.
    reader = open_reader(other.with_chain(rpc_url=Devnet(cfg).url, chain_id=31337))
    try:
        assert reader.online and reader.index is None
        # No record of the deployment in this home: the registry says where its history starts.
        assert reader.deployment_block == ledger.deployment_block > 0
        single = reqs["single"]
        assert single.pdq is not None
        [hit] = reader.find_by_fingerprint(single.pdq, max_distance=0)
        assert hit.record.asset_id == single.asset_id and reader.check(hit.record, single)
        member = reader.lookup(reqs["member0"].asset_id, publisher=ledger.account.address)  # type: ignore[union-attr]
        assert member is not None and member.pdq == reqs["member0"].pdq and member.commitment == b""
    finally:
        reader.close()


def test_reader_offline_is_typed_and_fast(tmp_path: Path) -> None:
    cfg = _settings(tmp_path / "home", _port())  # nothing listens there, no devnet is started
    t0 = time.perf_counter()
    reader = open_reader(cfg)
    assert time.perf_counter() - t0 < 1.0
    assert not reader.online and isinstance(reader.unavailable, ChainUnavailableError)
    assert "shield chain up" in reader.unavailable.fix
    with pytest.raises(ChainUnavailableError):
        reader.find_by_fingerprint(bytes(32))
    assert not Devnet(cfg).status().running
    reader.close()


def test_reader_refuses_a_wrong_chain_or_registry(chain: tuple[Settings, Ledger, dict[str, AnchorRequest]]) -> None:
    cfg, ledger, _ = chain
    wrong_id = open_reader(cfg.with_chain(chain_id=(ledger.chain_id or 0) + 1))
    assert isinstance(wrong_id.unavailable, ChainIdMismatchError)
    not_a_registry = open_reader(cfg.with_chain(registry=ledger.account.address))  # type: ignore[union-attr]
    assert isinstance(not_a_registry.unavailable, DeploymentMissingError)


def test_reader_imports_no_web3() -> None:
    code = ("import sys; from shield.ledger import open_reader; from shield.ledger.reader import LedgerReader; "
            "import shield.ledger.rpc; "
            "print(sorted(m for m in ('web3', 'eth_account', 'eth_abi', 'eth_utils') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
