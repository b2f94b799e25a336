"""Ledger benchmark: gas per image (single records, anchorMany, Merkle batches of
1/10/100/1000, each photo with its PDQ fingerprint), anchoring latency on the embedded
anvil, `shield audit` time over 10,000 records, and the light reader (standard-library
JSON-RPC) over the same chain: opening it, one lookup, and find_by_fingerprint over every
record. Writes JSON (and a gas plot) under bench/results/.

    .venv/bin/python bench/ledger.py --json bench/results/ledger.json --plot bench/results/ledger_gas.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from shield.config import load_settings
from shield.ledger import AnchorRequest, Devnet, audit, open_ledger, open_reader
from shield.provenance import certs

KEY = (0xBE7C4).to_bytes(32, "big")
REPO = Path(__file__).resolve().parents[1]


#: Gas of the registry before the PDQ went on chain (bench/results/ledger.json of
#: 2026-12-03T08:40, same machine and anvil): kept for the before/after comparison.
BEFORE_PDQ = {"single_mean": 50890, "anchor_many_per_image_at_100": 27784, "batch_total_at_100": 48820,
              "batch_per_image_at_100": 488.2}


def _req(rng: random.Random) -> AnchorRequest:
    return AnchorRequest(rng.randbytes(16), rng.randbytes(32), rng.randbytes(32), rng.randbytes(32), rng.randbytes(32))


class _Keys:
    """Publisher keys for the proof of registration, without a keystore."""

    def __init__(self) -> None:
        now = datetime.now(UTC)
        root = certs.make_root_ca("bench", now)
        leaf = certs.issue_signing_cert(root, "bench", now)
        self.c2pa_cert_chain_pem = certs.cert_pem(leaf.cert)
        self.c2pa_private_key_pem = leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption())
        self.cert_fingerprint = certs.fingerprint(leaf.cert)
        self.c2pa_sign = None
        self.watermark_key = ed25519.Ed25519PrivateKey.generate()
        self.watermark_public_key = self.watermark_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                                                 serialization.PublicFormat.Raw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gas(ledger, tx: str) -> int:
    return int(ledger.client.w3.eth.get_transaction_receipt(tx)["gasUsed"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--audit-records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    home = Path(tempfile.mkdtemp(prefix="shield-bench-ledger-"))
    env = {"SHIELD_HOME": str(home), "SHIELD_KEYS_DIR": str(home / "keys"),
           "SHIELD_NODE_BIN": str(REPO / "node_modules" / ".bin"), "SHIELD_ANVIL_PORT": str(_free_port())}
    settings = load_settings(env=env, cwd=home)
    result: dict[str, object] = {
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "node": "anvil 1.7.1 (embedded devnet, automine)",
    }
    try:
        keys = _Keys()
        ledger = open_ledger(settings, KEY, publisher_keys=keys)
        assert ledger.unavailable is None, ledger.unavailable
        client = ledger.client
        assert client is not None
        register_tx = ledger.register_publisher(keys.cert_fingerprint, keys.watermark_public_key)
        register_gas = _gas(ledger, register_tx)  # type: ignore[arg-type]
        proof_bytes = len(ledger.claim(client.sender).info.proof)  # type: ignore[union-attr]
        first = ledger.anchor(_req(rng))
        first_gas = _gas(ledger, first.tx_hash)  # type: ignore[arg-type]
        singles, latencies = [], []
        for _ in range(args.latency_runs):
            t0 = time.perf_counter()
            out = ledger.anchor(_req(rng))
            latencies.append(time.perf_counter() - t0)
            singles.append(_gas(ledger, out.tx_hash))  # type: ignore[arg-type]
        many: dict[str, float] = {}
        for n in (10, 100):
            reqs = [_req(rng) for _ in range(n)]
            receipt = client.transact("anchorMany", *[list(col) for col in zip(*(r.chain_fields for r in reqs), strict=True)])
            many[str(n)] = receipt["gasUsed"] / n
        batches: dict[str, dict[str, float]] = {}
        for n in (1, 10, 100, 1000):
            ledger.enqueue_batch([_req(rng) for _ in range(n)])
            t0 = time.perf_counter()
            outs = ledger.drain()
            dt = time.perf_counter() - t0
            gas = _gas(ledger, outs[0].tx_hash)  # type: ignore[arg-type]
            batches[str(n)] = {"gas_total": gas, "gas_per_image": gas / n, "drain_s": dt}
        result["gas"] = {
            "register_publisher_with_proof": register_gas,
            "publisher_proof_bytes": proof_bytes,
            "single_first_anchor": first_gas,
            "single_mean": statistics.mean(singles),
            "single_max": max(singles),
            "anchor_many_per_image": many,
            "batch": batches,
            "targets": {"single_max": 70_000, "batch_per_image_at_100_plus": 2_500},
            "before_pdq": BEFORE_PDQ,
        }
        latencies.sort()
        result["latency_s"] = {
            "runs": len(latencies),
            "median": statistics.median(latencies),
            "p95": latencies[int(0.95 * (len(latencies) - 1))],
            "max": latencies[-1],
            "what": "Ledger.anchor(): sqlite outbox commit + estimate + sign + send + receipt (1 confirmation)",
        }
        # audit over N records: fill with anchorMany (chunks of 200), then time a full audit.
        have = len(singles) + 1 + sum(int(k) for k in many)
        todo = max(0, args.audit_records - have)
        t0 = time.perf_counter()
        while todo:
            chunk = [_req(rng) for _ in range(min(200, todo))]
            client.transact("anchorMany", *[list(col) for col in zip(*(r.chain_fields for r in chunk), strict=True)])
            todo -= len(chunk)
        fill_s = time.perf_counter() - t0
        timings = []
        for _ in range(3):
            t0 = time.perf_counter()
            report = audit(settings, ledger)
            timings.append(time.perf_counter() - t0)
        records = sum(1 for e in report.entries if e.kind == "record")
        result["audit"] = {"records": records, "entries": len(report.entries), "runs_s": timings,
                           "median_s": statistics.median(timings), "fill_s": fill_s,
                           "flags": report.counts}
        result["light_reader"] = _light_reader(settings, ledger, rng)
        ledger.close()
    finally:
        Devnet(settings).stop()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if args.plot:
        _plot(result, args.plot)


def _light_reader(settings: Any, ledger: Any, rng: random.Random) -> dict[str, Any]:
    """The read path of `shield verify` over the same chain: open, one lookup, and a
    fingerprint search over every record's event (the chain now holds ~10^4 records)."""
    req = _req(rng)
    ledger.anchor(req)
    t0 = time.perf_counter()
    reader = open_reader(settings)
    open_s = time.perf_counter() - t0
    assert reader.online, reader.unavailable
    t0 = time.perf_counter()
    record = reader.lookup(req.asset_id, publisher=ledger.account.address)
    lookup_s = time.perf_counter() - t0
    assert record is not None and record.pdq == req.pdq
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        hits = reader.find_by_fingerprint(req.pdq)  # type: ignore[arg-type]
        runs.append(time.perf_counter() - t0)
    assert hits and hits[0].record.asset_id == req.asset_id
    reader.close()
    return {"open_s": open_s, "lookup_s": lookup_s, "find_by_fingerprint_s": runs,
            "find_by_fingerprint_median_s": statistics.median(runs),
            "what": "open_reader (chain id, deployment, code check) + lookup of one single record + "
                    "find_by_fingerprint over every Anchored/BatchAnchored event, urllib JSON-RPC"}


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gas = result["gas"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sizes = [int(k) for k in gas["batch"]]
    ax.plot(sizes, [gas["batch"][str(n)]["gas_per_image"] for n in sizes], "o-", label="Merkle batch (one root)")
    many = gas["anchor_many_per_image"]
    ax.plot([int(k) for k in many], list(many.values()), "s-", label="anchorMany (one record per image)")
    ax.axhline(gas["single_mean"], color="C2", label=f"single record ({gas['single_mean']:.0f})")
    ax.axhline(70_000, color="C2", ls=":", label="target: single <= 70k")
    ax.axhline(2_500, color="C3", ls=":", label="target: batch <= 2,500 / image")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("images per transaction")
    ax.set_ylabel("gas per image")
    ax.set_title("ShieldRegistry gas per image, PDQ on chain (anvil)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
