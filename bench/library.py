"""Library-run throughput: 1, 2 and 4 local worker processes and a local Ray instance.

Each configuration runs in its own Python process (so that peak memory and torch state do
not leak between them) over the same photos, into a fresh output folder, on one warm devnet
and keystore. Per configuration it records the wall time of ``protect_library`` (walk,
protection, C2PA, Merkle batch anchoring included), throughput, the CPU seconds of the whole
process tree (the run's parent and its workers; anvil left out) over wall x cores, the peak
resident memory (VmHWM) of the parent and of each worker process, and the time to the
first finished photo (pool start and model loading). ``--no-adversarial`` runs of the 2-worker
local and Ray configurations measure the per-photo overhead of Ray against local processes on
the part of the pipeline that is not the attack.

    python bench/library.py --limit 8 --strength fast   # writes bench/results/library.json + .png

Ray is started by the child itself (``ray.init(num_cpus=cores)``), timed apart from the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ("local-1", "local-1x1", "local-2", "local-4", "ray-2")


def _proc_tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        kids = [p for p, pp in parents.items() if pp in frontier]
        tree += kids
        frontier = kids
    return tree


def _sample(pid: int) -> tuple[str, float, int] | None:
    """(command line, CPU seconds, peak RSS bytes) of one process, None when gone."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM")), 0)
    return cmd, cpu, hwm


class _Sampler(threading.Thread):
    """Polls the process tree of this process: last CPU time and peak RSS per pid."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: dict[int, tuple[str, float, int]] = {}
        self.base: dict[int, float] = {}
        self.stop = threading.Event()

    def snapshot(self) -> dict[int, tuple[str, float, int]]:
        out = {}
        for pid in _proc_tree(os.getpid()):
            s = _sample(pid)
            if s is not None and "anvil" not in s[0]:
                out[pid] = s
        return out

    def begin(self) -> None:
        self.base = {pid: cpu for pid, (_, cpu, _) in self.snapshot().items()}
        self.start()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            self.seen.update(self.snapshot())

    def end(self) -> dict[str, Any]:
        self.stop.set()
        self.join()
        self.seen.update(self.snapshot())
        cpu = sum(c - self.base.get(pid, 0.0) for pid, (_, c, _) in self.seen.items())
        me = os.getpid()
        workers = [(cmd, hwm) for pid, (cmd, _, hwm) in self.seen.items()
                   if pid != me and "resource_tracker" not in cmd and ("multiprocessing" in cmd or "PhotoWorker" in cmd)]
        return {"cpu_seconds": cpu, "parent_peak_rss_mb": self.seen[me][2] / 2**20,
                "worker_peak_rss_mb": sorted(h / 2**20 for _, h in workers)}


def run_one(config: str, photos: Path, out: Path, strength: str, adversarial: bool) -> dict[str, Any]:
    """One configuration in this process; returns its measurements."""
    import torch

    from shield.config import load_settings
    from shield.pipeline import ProtectOptions
    from shield.pipeline.library import LibraryOptions, protect_library

    torch.set_num_threads(1)  # the parent's own threads; workers set theirs (cores // workers)
    mode, spec = config.split("-")
    n, _, threads = spec.partition("x")  # local-1x1: one worker with one torch thread
    cores = os.cpu_count() or 1
    ray_seconds = 0.0
    if mode == "ray":
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, logging_level=30)
        ray_seconds = time.perf_counter() - t0
    settings = load_settings()
    options = ProtectOptions(strength=strength, whole_frame=True, adversarial=adversarial, seed=0)
    lib = LibraryOptions(out, workers=int(n), batch_size=8, ray_address="auto" if mode == "ray" else None,
                         threads=int(threads) if threads else None)
    done_at: list[float] = []
    sampler = _Sampler()
    sampler.begin()
    t0 = time.perf_counter()
    report = protect_library([photos], settings, options, lib,
                             progress=lambda e: done_at.append(time.perf_counter() - t0) if e.kind == "done" else None)
    wall = time.perf_counter() - t0
    usage = sampler.end()
    import resource

    usage["children_max_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # waited workers
    count = len(report.protected)
    return {
        "config": config, "workers": int(n), "strength": strength if adversarial else "none", "photos": count,
        "failures": [f.reason for f in report.failures], "wall_seconds": wall, "photos_per_minute": 60 * count / wall,
        "seconds_per_photo": wall / max(1, count), "first_photo_seconds": done_at[0] if done_at else None,
        "cpu_utilisation": usage["cpu_seconds"] / (wall * cores), "cores": cores, "ray_start_seconds": ray_seconds,
        "anchored": report.anchored, "queued": report.queued, "notes": list(report.notes), **usage,
    }  # fmt: skip


def _child(config: str, photos: Path, root: Path, strength: str, adversarial: bool, env: dict[str, str]) -> dict[str, Any]:
    out = root / f"out-{config}-{strength if adversarial else 'none'}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--one", config, "--photos", str(photos), "--outdir", str(out), "--strength", strength]
    cmd += [] if adversarial else ["--no-adversarial"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{config} failed:\n{done.stderr[-3000:]}")
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(row), flush=True)
    return row


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fast = [r for r in rows if r["strength"] != "none"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    names = [r["config"] for r in fast]
    axes[0].bar(names, [r["photos_per_minute"] for r in fast], color="tab:blue")
    axes[0].set_title(f"throughput ({fast[0]['strength']} preset)")
    axes[0].set_ylabel("photos / minute")
    axes[1].bar(names, [100 * r["cpu_utilisation"] for r in fast], color="tab:orange")
    axes[1].set_title(f"CPU utilisation ({fast[0]['cores']} cores)")
    axes[1].set_ylabel("% of wall x cores")
    peaks = [max(r["worker_peak_rss_mb"] or [r.get("children_max_rss_mb") or r["parent_peak_rss_mb"]])
             if r["workers"] > 1 or r["config"].startswith("ray") else r["parent_peak_rss_mb"] for r in fast]
    axes[2].bar(names, peaks, color="tab:green")
    axes[2].set_title("peak memory per worker")
    axes[2].set_ylabel("MiB (VmHWM)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=None, help="photo folder (default: <data_dir>/photos)")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--strength", default="fast")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--json", type=Path, default=REPO / "bench/results/library.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--outdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-adversarial", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.photos, args.outdir, args.strength, not args.no_adversarial)))
        return 0
    from shield.config import load_settings

    data_dir = load_settings().data_dir
    folder = args.photos or (data_dir / "photos" if data_dir else None)
    if folder is None:
        parser.error("no --photos and no shared data folder (SHIELD_DATA_DIR)")
    with tempfile.TemporaryDirectory(prefix="shield-library-bench-") as tmp:
        root = Path(tmp)
        photos = root / "photos"
        photos.mkdir()
        for p in sorted(q for q in folder.iterdir() if q.suffix.lower() in {".jpg", ".jpeg", ".png"})[: args.limit]:
            shutil.copy(p, photos / p.name)
        env = {**os.environ, "SHIELD_HOME": str(root / "home"), "SHIELD_KEYS_DIR": str(root / "keys"),
               "SHIELD_NODE_BIN": str(REPO / "node_modules/.bin"), "SHIELD_ANVIL_PORT": "18871"}  # fmt: skip
        rows = []
        try:
            for config in args.configs.split(","):
                rows.append(_child(config, photos, root, args.strength, True, env))
            for config in ("local-2", "ray-2"):
                rows.append(_child(config, photos, root, args.strength, False, env))
        finally:
            subprocess.run([sys.executable, "-m", "shield.cli", "chain", "down"], env=env, capture_output=True, check=False)
    by = {(r["config"], r["strength"]): r for r in rows}
    summary: dict[str, Any] = {}
    one = by.get(("local-1x1", args.strength)) or by.get(("local-1", args.strength))
    two = by.get(("local-2", args.strength))
    if one and two:
        summary["speedup_2_vs_1"] = two["photos_per_minute"] / one["photos_per_minute"]
    lr, rr = by.get(("local-2", "none")), by.get(("ray-2", "none"))
    if lr and rr:
        summary["ray_overhead_seconds_per_photo_no_adversarial"] = rr["seconds_per_photo"] - lr["seconds_per_photo"]
    lf, rf = by.get(("local-2", args.strength)), by.get(("ray-2", args.strength))
    if lf and rf:
        summary["ray_overhead_seconds_per_photo"] = rf["seconds_per_photo"] - lf["seconds_per_photo"]
    doc = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "photos_folder": str(folder),
           "rows": rows, "summary": summary}  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1))
    _plot(rows, args.json.with_suffix(".png"))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
