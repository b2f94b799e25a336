"""Benchmark: C2PA sign and verify (read + validate) time for 1 MP and 12 MP PNGs.

Usage (from the repository root):

    .venv/bin/python bench/c2pa_sign.py --runs 5 --json bench/results/c2pa_sign.json

The test images are the public-domain astronaut portrait (scikit-image) resized to
1 MP (1155x866) and 12 MP (4000x3000), once as is ("smooth") and once with +-4 levels
of uniform noise ("perturbed", compresses like a protected output), encoded as PNG
once. Signing hashes the whole file, so file size matters more than pixel count. Timings cover only
``sign_image`` (manifest build, hard-binding hash of the whole file, ES256 signature,
post-sign validation by the SDK) and ``read_manifest`` (parse, validate against our
trust anchor, decode). Each figure is the median of ``--runs`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from shield.config import load_settings
from shield.provenance import ManifestSpec, ensure_keystore, open_keystore, read_manifest, sign_image

SIZES = {"1MP": (1155, 866), "12MP": (4000, 3000)}
#: Amplitude (in 8-bit levels) of the uniform noise added to mimic a protected output:
#: the perturbation and watermark fill the low bits, so PNGs compress far less.
PERTURBATION_LEVELS = 4


def bench_png(width: int, height: int, *, perturbed: bool) -> bytes:
    """The astronaut portrait at ``width`` x ``height``, optionally with +-4 levels of noise."""
    from skimage import data

    image = Image.fromarray(np.asarray(data.astronaut())).resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(image, dtype=np.int16)
    if perturbed:
        noise = np.random.default_rng(0).integers(-PERTURBATION_LEVELS, PERTURBATION_LEVELS + 1, pixels.shape)
        pixels = pixels + noise
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def median_time(fn, runs: int) -> tuple[float, list[float]]:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("bench/results/c2pa_sign.json"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env={"SHIELD_HOME": f"{tmp}/home", "SHIELD_KEYS_DIR": f"{tmp}/keys"}, cwd=Path(tmp))
        keys = ensure_keystore(settings, env={})
        unlock, unlock_runs = median_time(lambda: open_keystore(settings, env={}), args.runs)
        spec = ManifestSpec(
            title="bench.shield.png",
            asset_id=os.urandom(16),
            protection={"eps": 0.03, "steps": 40, "models": ["fomm", "simswap"]},
            watermark={"scheme": "shield-fragile-v1", "block_size": 8, "public_key": keys.watermark_public_key.hex()},
            ledger={"chain_id": 31337, "registry": "0x" + "00" * 20, "publisher": keys.eth_address},
        )
        rows = {}
        variants = [(f"{size}-{kind}", wh, kind == "perturbed") for size, wh in SIZES.items() for kind in ("smooth", "perturbed")]
        for name, (w, h), perturbed in variants:
            png = bench_png(w, h, perturbed=perturbed)
            signed = sign_image(png, spec, keys)
            report = read_manifest(signed.data, "image/png", keys.trust_anchors_pem)
            assert report.state == "trusted", report.failures
            sign_s, sign_runs = median_time(lambda: sign_image(png, spec, keys), args.runs)
            verify_s, verify_runs = median_time(
                lambda: read_manifest(signed.data, "image/png", keys.trust_anchors_pem), args.runs
            )
            rows[name] = {
                "width": w, "height": h, "perturbed": perturbed, "png_bytes": len(png), "manifest_bytes": len(signed.manifest_bytes),
                "sign_median_s": round(sign_s, 4), "verify_median_s": round(verify_s, 4),
                "sign_runs_s": [round(t, 4) for t in sign_runs], "verify_runs_s": [round(t, 4) for t in verify_runs],
            }
            print(f"{name:>15}: sign {sign_s * 1000:7.1f} ms   verify {verify_s * 1000:7.1f} ms   "
                  f"({len(png) / 1e6:.1f} MB PNG, {len(signed.manifest_bytes)} B manifest)")
        print(f"keystore unlock: {unlock * 1000:.1f} ms")

    import c2pa

    result = {
        "benchmark": "c2pa_sign",
        "command": "python bench/c2pa_sign.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": args.runs,
        "statistic": "median",
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "c2pa_python": c2pa.__version__,
        "keystore_unlock_median_s": round(unlock, 4),
        "keystore_unlock_runs_s": [round(t, 4) for t in unlock_runs],
        "sizes": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
