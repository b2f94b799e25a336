"""Benchmark: the robust soft-binding mark, the PDQ fingerprint and invisible-watermark.

Usage (from the repository root):

    nice -n 10 .venv/bin/python bench/softbinding.py --data ../shared/data \
        --json bench/results/softbinding.json --plot bench/results/softbinding.png

One run, the same photos and the same attacks for the three routes from a stripped copy
back to its record:
- ``shield.sstile`` (``shield.softbinding``, public default key), embedded first and then
  covered by the fragile watermark (``shield.watermark``), as protect does;
- PDQ (``shield.fingerprint``) of that protected photo, looked up among all protected
  photos by Hamming distance (``MATCH_THRESHOLD``);
- invisible-watermark 0.2 ``dwtDct`` carrying the same 128-bit asset id (no error
  correction of its own: "exact" means all 128 bits right).
Attacks on every photo of ``photos/``: none, JPEG q 95..30 (Pillow, 4:2:0), resize 0.5x..2x
(bicubic), crops of 10% of each side (centred, and from the top-left corner), and two
social-network chains (resize 0.5x / to 1080 px, then JPEG 75; a fresh encode carries no
metadata). A route recovers a copy when it yields the right asset id (for PDQ: the nearest
recorded photo within the threshold is the right one).

False matches: frames of every clip in ``videos/`` (read with ``av``), the ``nonfaces/``
images and the unmarked originals of the photos are queried against the same records,
plus one protected frame per clip, so the other frames of that clip are near-duplicates
that were never protected. Also: PSNR, and embed / read time at 12 MP (a photo upscaled to
4000x3000), median of --runs.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # a shared machine: one core for this run

import argparse
import hashlib
import io
import json
import logging
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from shield import fingerprint, softbinding, watermark

log = logging.getLogger("bench.softbinding")

Attack = Callable[[np.ndarray], np.ndarray]
JPEG_QUALITIES = (95, 90, 75, 60, 50, 40, 30)
SCALES = (0.5, 0.75, 1.5, 2.0)
THRESHOLDS = tuple(range(0, 97, 2))
SIZE_BUCKETS = ((0, 600), (600, 1000), (1000, 100_000))  # shorter side, px


def _jpeg(rgb: np.ndarray, quality: int, subsampling: int = 2) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def _resize(rgb: np.ndarray, factor: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))


def _crop(rgb: np.ndarray, keep: float, centred: bool) -> np.ndarray:
    h, w = rgb.shape[:2]
    nh, nw = round(h * keep), round(w * keep)
    y0, x0 = ((h - nh) // 2, (w - nw) // 2) if centred else (h - nh, w - nw)
    return np.ascontiguousarray(rgb[y0 : y0 + nh, x0 : x0 + nw])


def _to_1080(rgb: np.ndarray) -> np.ndarray:
    long_side = max(rgb.shape[:2])
    return _resize(rgb, 1080 / long_side) if long_side > 1080 else rgb


def attacks() -> dict[str, Attack]:
    out: dict[str, Attack] = {"none": lambda a: a}
    for q in JPEG_QUALITIES:
        out[f"jpeg{q}"] = lambda a, q=q: _jpeg(a, q)  # type: ignore[misc]
    for s in SCALES:
        out[f"scale{s}"] = lambda a, s=s: _resize(a, s)  # type: ignore[misc]
    # Pillow's JPEG default is 4:2:0 chroma subsampling, like the platforms; dwtDct hides
    # its bits in the chroma, so 4:4:4 is shown once too, for fairness.
    out["jpeg75_444"] = lambda a: _jpeg(a, 75, subsampling=0)
    out["crop10_centre"] = lambda a: _crop(a, 0.9, True)
    out["crop10_corner"] = lambda a: _crop(a, 0.9, False)
    out["social_0.5_jpeg75"] = lambda a: _jpeg(_resize(a, 0.5), 75)
    out["social_1080_jpeg75"] = lambda a: _jpeg(_to_1080(a), 75)
    return out


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _asset_id(name: str) -> bytes:
    return hashlib.sha256(b"bench.softbinding:" + name.encode()).digest()[:16]


class _InvisibleWatermark:
    """invisible-watermark's dwtDct with a 128-bit payload (BGR arrays, as it expects)."""

    def __init__(self) -> None:
        from imwatermark import WatermarkDecoder, WatermarkEncoder

        self._enc, self._dec = WatermarkEncoder, WatermarkDecoder("bytes", 128)

    def embed(self, rgb: np.ndarray, payload: bytes) -> np.ndarray:
        enc = self._enc()
        enc.set_watermark("bytes", payload)
        return np.ascontiguousarray(enc.encode(np.ascontiguousarray(rgb[..., ::-1]), "dwtDct")[..., ::-1])

    def read(self, rgb: np.ndarray) -> bytes:
        """The 16 bytes read; all zero where the library refuses (under 256x256 pixels)."""
        if rgb.shape[0] * rgb.shape[1] < 256 * 256:
            return bytes(16)
        return bytes(self._dec.decode(np.ascontiguousarray(rgb[..., ::-1]), "dwtDct"))


def _bit_accuracy(a: bytes, b: bytes) -> float:
    x = np.unpackbits(np.frombuffer(a, np.uint8)) == np.unpackbits(np.frombuffer(b, np.uint8))
    return float(x.mean())


def _video_frames(videos: Path, per_clip: int) -> list[tuple[str, int, np.ndarray]]:
    """(clip, frame number, RGB) for ``per_clip`` frames spread evenly over each clip
    (only the chosen frames are kept in memory)."""
    import av

    out: list[tuple[str, int, np.ndarray]] = []
    for clip in sorted(videos.glob("*.mp4")):
        with av.open(str(clip)) as container:
            total = container.streams.video[0].frames
        with av.open(str(clip)) as container:
            if total <= 0:  # no count in the header: count by decoding
                total = sum(1 for _ in container.decode(video=0))
        wanted = set(np.linspace(0, total - 1, per_clip).round().astype(int).tolist())
        with av.open(str(clip)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    out.append((clip.stem, i, frame.to_ndarray(format="rgb24")))
        log.info("frames: %s (%d of %d)", clip.stem, len(wanted), total)
    return out


def _protect(rgb: np.ndarray, asset_id: bytes, key: Ed25519PrivateKey) -> np.ndarray:
    """The pixel stages protect runs after the perturbation: robust mark, then fragile mark."""
    robust = softbinding.embed(rgb, asset_id, softbinding.DEFAULT_KEY)
    return watermark.embed(robust, watermark.Payload(1, asset_id), key)


def recovery(photos: list[Path], key: Ed25519PrivateKey) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
    iw = _InvisibleWatermark()
    records: list[tuple[str, bytes, np.ndarray, np.ndarray, int]] = []
    index = fingerprint.MemoryIndex()
    per_photo: list[dict[str, Any]] = []
    for path in photos:
        rgb = _load(path)
        aid = _asset_id(path.name)
        robust = softbinding.embed(rgb, aid, softbinding.DEFAULT_KEY)
        ours = watermark.embed(robust, watermark.Payload(1, aid), key)
        theirs = iw.embed(rgb, aid)
        index.add(aid, fingerprint.compute(ours))
        records.append((path.name, aid, ours, theirs, min(rgb.shape[:2])))
        per_photo.append(
            {
                "photo": path.name,
                "width": rgb.shape[1],
                "height": rgb.shape[0],
                "psnr_mark": _psnr(rgb, robust),
                "psnr_mark_and_fragile": _psnr(rgb, ours),
                "psnr_dwtdct": _psnr(rgb, theirs),
                "attacks": {},
            }
        )
    pdq_genuine: dict[str, list[int]] = {}
    for (name, aid, ours, theirs, _), row in zip(records, per_photo, strict=True):
        for att_name, attack in attacks().items():
            copy_ours, copy_theirs = attack(ours), attack(theirs)
            t = time.perf_counter()
            ex = softbinding.extract(copy_ours, softbinding.DEFAULT_KEY)
            t_read = time.perf_counter() - t
            fp = fingerprint.compute(copy_ours)
            d_own = int(index.distances(fp)[[i for i, r in enumerate(records) if r[1] == aid][0]])
            matches = index.lookup(fp)
            got = iw.read(copy_theirs)
            row["attacks"][att_name] = {
                "mark": bool(ex.found and ex.asset_id == aid),
                "mark_wrong_id": bool(ex.found and ex.asset_id != aid),
                "mark_sync_z": round(ex.sync_z, 2),
                "mark_read_s": round(t_read, 3),
                "pdq": bool(matches and matches[0].asset_id == aid),
                "pdq_distance": d_own,
                "pdq_reliable": fp.reliable,
                "dwtdct": got == aid,
                "dwtdct_bit_accuracy": _bit_accuracy(got, aid),
            }
            pdq_genuine.setdefault(att_name, []).append(d_own)
        log.info(
            "%s: mark %d/%d, pdq %d/%d, dwtDct %d/%d",
            name,
            sum(a["mark"] for a in row["attacks"].values()),
            len(row["attacks"]),
            sum(a["pdq"] for a in row["attacks"].values()),
            len(row["attacks"]),
            sum(a["dwtdct"] for a in row["attacks"].values()),
            len(row["attacks"]),
        )
    summary: dict[str, Any] = {}
    for att_name in attacks():
        cells = [r["attacks"][att_name] for r in per_photo]
        entry: dict[str, Any] = {
            "mark": float(np.mean([c["mark"] for c in cells])),
            "mark_wrong_id": int(sum(c["mark_wrong_id"] for c in cells)),
            "pdq": float(np.mean([c["pdq"] for c in cells])),
            "dwtdct": float(np.mean([c["dwtdct"] for c in cells])),
            "dwtdct_bit_accuracy": float(np.mean([c["dwtdct_bit_accuracy"] for c in cells])),
            "mark_read_s_median": float(np.median([c["mark_read_s"] for c in cells])),
            "pdq_distance_median": float(np.median([c["pdq_distance"] for c in cells])),
            "mark_by_shorter_side": {},
        }
        for lo, hi in SIZE_BUCKETS:
            sel = [c["mark"] for c, r in zip(cells, records, strict=True) if lo <= r[4] < hi]
            entry["mark_by_shorter_side"][f"{lo}-{hi}px"] = {"n": len(sel), "rate": float(np.mean(sel)) if sel else None}
        summary[att_name] = entry
    return summary, per_photo, (index, pdq_genuine, records)


def false_matches(
    data: Path, per_clip: int, index: fingerprint.MemoryIndex, records: list[Any], key: Ed25519PrivateKey
) -> dict[str, Any]:
    """Query never-marked images against the records: mark false positives, dwtDct
    false reads, and PDQ distances to the nearest *unrelated* record; for frames of a
    clip whose first sampled frame was protected, also the distance to that frame."""
    iw = _InvisibleWatermark()
    frames = _video_frames(data / "videos", per_clip)
    anchors: dict[str, int] = {}
    anchor_row: dict[str, int] = {}
    for clip, n, rgb in frames:
        if clip not in anchors:
            anchors[clip] = n
            aid = _asset_id(f"{clip}#{n}")
            anchor_row[clip] = len(index)
            index.add(aid, fingerprint.compute(_protect(rgb, aid, key)))
    ids = [r[1] for r in records] + [_asset_id(f"{c}#{n}") for c, n in anchors.items()]
    queries: list[tuple[str, str, str | None, int, np.ndarray]] = []
    for clip, n, rgb in frames:
        if anchors[clip] != n:
            queries.append(("video_frame", f"{clip}#{n}", clip, n - anchors[clip], rgb))
    for p in sorted((data / "nonfaces").iterdir()):
        if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}:
            queries.append(("nonface", p.name, None, 0, _load(p)))
    photo_rows = {r[0]: i for i, r in enumerate(records)}
    for name, *_ in records:
        queries.append(("unmarked_original", name, name, 0, _load(data / "photos" / name)))
    rows: list[dict[str, Any]] = []
    for kind, name, own, gap, rgb in queries:
        ex = softbinding.extract(rgb, softbinding.DEFAULT_KEY)
        got = iw.read(rgb)
        d = index.distances(fingerprint.compute(rgb))
        own_row = anchor_row.get(own or "") if kind == "video_frame" else photo_rows.get(own or "")
        others = np.delete(d, own_row) if own_row is not None else d
        rows.append(
            {
                "kind": kind,
                "name": name,
                "frame_gap": gap,
                "mark_found": bool(ex.found),
                "mark_sync_z": round(ex.sync_z, 2),
                "dwtdct_exact": got in ids,
                "dwtdct_best_bit_accuracy": max(_bit_accuracy(got, i) for i in ids),
                "pdq_nearest_unrelated": int(others.min()),
                "pdq_own": int(d[own_row]) if own_row is not None else None,
            }
        )
    log.info("false-match queries: %d", len(rows))
    unrelated = np.array([r["pdq_nearest_unrelated"] for r in rows])
    out: dict[str, Any] = {
        "queries": len(rows),
        "records": len(index),
        "mark_found": int(sum(r["mark_found"] for r in rows)),
        "mark_sync_z_max": float(max(r["mark_sync_z"] for r in rows)),
        "dwtdct_exact": int(sum(r["dwtdct_exact"] for r in rows)),
        "dwtdct_best_bit_accuracy_max": float(max(r["dwtdct_best_bit_accuracy"] for r in rows)),
        "pdq_unrelated_nearest_min": int(unrelated.min()),
        "pdq_unrelated_quantiles": {q: float(np.quantile(unrelated, q / 100)) for q in (0.1, 1, 5, 50)},
        "pdq_unrelated_match_rate_by_threshold": {t: float(np.mean(unrelated <= t)) for t in THRESHOLDS},
        "by_kind": {},
    }
    for kind in ("video_frame", "nonface", "unmarked_original"):
        sel = [r for r in rows if r["kind"] == kind]
        own_d = np.array([r["pdq_own"] for r in sel if r["pdq_own"] is not None], dtype=np.int64)
        out["by_kind"][kind] = {
            "n": len(sel),
            "mark_found": int(sum(r["mark_found"] for r in sel)),
            "dwtdct_exact": int(sum(r["dwtdct_exact"] for r in sel)),
            "pdq_unrelated_nearest_min": int(min(r["pdq_nearest_unrelated"] for r in sel)) if sel else None,
            # the never-protected frames of a protected clip / the unprotected originals,
            # against their protected sibling: what PDQ calls "the same picture"
            "pdq_own_match_rate_at_threshold": float(np.mean(own_d <= fingerprint.MATCH_THRESHOLD)) if len(own_d) else None,
            "pdq_own_quantiles": {q: float(np.quantile(own_d, q / 100)) for q in (5, 50, 95)} if len(own_d) else None,
        }
    out["rows"] = rows
    return out


def explain_near(result: dict[str, Any], data: Path, limit: int) -> list[dict[str, Any]]:
    """For the false-match queries within ``limit`` bits of an unrelated record: which
    record it was (recomputed: the records are protected again with the same ids and key,
    the query frames decoded again). Tells a real false match from the same picture
    stored twice in the data set (a portrait that is also a clip's frame)."""
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"bench.softbinding").digest())
    names: list[str] = []
    index = fingerprint.MemoryIndex()
    for photo in sorted((data / "photos").glob("*.jpg"))[: result["photos"]]:
        aid = _asset_id(photo.name)
        index.add(aid, fingerprint.compute(_protect(_load(photo), aid, key)))
        names.append(photo.name)
    rows = [r for r in result["false_matches"]["rows"] if r["pdq_nearest_unrelated"] <= limit]
    wanted: dict[str, set[int]] = {}
    for r in rows:
        if r["kind"] == "video_frame":
            clip, n = r["name"].split("#")
            wanted.setdefault(clip, set()).add(int(n))
    import av

    pictures: dict[str, np.ndarray] = {}
    for clip in sorted((data / "videos").glob("*.mp4")):
        need = wanted.get(clip.stem, set()) | {0}  # the protected anchor is frame 0
        with av.open(str(clip)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in need:
                    pictures[f"{clip.stem}#{i}"] = frame.to_ndarray(format="rgb24")
                if i >= max(need):
                    break
        aid = _asset_id(f"{clip.stem}#0")
        index.add(aid, fingerprint.compute(_protect(pictures[f"{clip.stem}#0"], aid, key)))
        names.append(f"{clip.stem}#0")
    out = []
    for r in rows:
        rgb = pictures[r["name"]] if r["kind"] == "video_frame" else _load(data / "photos" / r["name"])
        d = index.distances(fingerprint.compute(rgb))
        own = r["name"].split("#")[0] + "#0" if r["kind"] == "video_frame" else r["name"]
        d[[i for i, n in enumerate(names) if n == own]] = 10_000
        i = int(np.argmin(d))
        out.append({"query": r["name"], "nearest_record": names[i], "distance": int(d[i])})
        log.info("%s -> %s at %d", r["name"], names[i], int(d[i]))
    return out


def timing(photo: Path, runs: int) -> dict[str, Any]:
    rgb = np.asarray(Image.fromarray(_load(photo)).resize((4000, 3000), Image.Resampling.BICUBIC))
    aid = _asset_id("12mp")
    iw = _InvisibleWatermark()

    def med(fn: Callable[[], Any]) -> tuple[float, Any]:
        times, out = [], None
        for _ in range(runs):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times), out

    t_embed, ours = med(lambda: softbinding.embed(rgb, aid, softbinding.DEFAULT_KEY))
    t_read, ex = med(lambda: softbinding.extract(ours, softbinding.DEFAULT_KEY))
    t_iw, theirs = med(lambda: iw.embed(rgb, aid))
    t_iw_read, got = med(lambda: iw.read(theirs))
    t_pdq, _ = med(lambda: fingerprint.compute(ours))
    return {
        "size": "4000x3000",
        "source": photo.name,
        "runs": runs,
        "mark_embed_s": t_embed,
        "mark_read_s": t_read,
        "mark_read_ok": bool(ex.found and ex.asset_id == aid),
        "mark_psnr": _psnr(rgb, ours),
        "dwtdct_embed_s": t_iw,
        "dwtdct_read_s": t_iw_read,
        "dwtdct_read_ok": got == aid,
        "dwtdct_psnr": _psnr(rgb, theirs),
        "pdq_s": t_pdq,
        "anchor_dwtdct_embed_s": 2.55,
        "anchor_dwtdct_psnr": 41.1,
    }


def plot(result: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["recovery"]
    routes = (("mark", "shield.sstile (ours)"), ("pdq", "PDQ lookup"), ("dwtdct", "invisible-watermark dwtDct"))
    styles = {"mark": "o-", "pdq": "s--", "dwtdct": "^:"}
    fig, ax = plt.subplots(1, 4, figsize=(20, 4.6))
    for key, label in routes:
        ax[0].plot(JPEG_QUALITIES, [s[f"jpeg{q}"][key] for q in JPEG_QUALITIES], styles[key], label=label)
        ax[1].plot(SCALES, [s[f"scale{x}"][key] for x in SCALES], styles[key], label=label)
    ax[0].set(xlabel="JPEG quality", ylabel="recovered (share of photos)", title="re-encoding", ylim=(-0.03, 1.03))
    ax[0].invert_xaxis()
    ax[1].set(xlabel="resize factor", title="resizing", ylim=(-0.03, 1.03), xscale="log")
    names = ["none", "crop10_centre", "crop10_corner", "social_0.5_jpeg75", "social_1080_jpeg75"]
    x = np.arange(len(names))
    for i, (key, label) in enumerate(routes):
        ax[2].bar(x + (i - 1) * 0.27, [s[n][key] for n in names], 0.27, label=label)
    ax[2].set_xticks(x, ["none", "crop 10%\ncentre", "crop 10%\ncorner", "0.5x then\nJPEG 75", "1080 px then\nJPEG 75"])
    ax[2].set(title="crops and social chains", ylim=(0, 1.05))
    ax[0].legend(loc="lower left", fontsize=8)
    genuine = [d for att, ds in result["pdq_genuine_distances"].items() if att != "none" for d in ds]
    bins = np.arange(0, 200, 4)
    ax[3].hist(genuine, bins, alpha=0.6, label="protected copies, attacked", density=True)
    nd = [r["pdq_nearest_unrelated"] for r in result["false_matches"]["rows"]]
    ax[3].hist(nd, bins, alpha=0.6, label="never-protected images, nearest unrelated record", density=True)
    near = [r["pdq_own"] for r in result["false_matches"]["rows"] if r["kind"] == "video_frame"]
    ax[3].hist(near, bins, alpha=0.4, label="other frames of a protected clip", density=True, histtype="step")
    ax[3].axvline(fingerprint.MATCH_THRESHOLD, color="k", ls="--", label=f"threshold {fingerprint.MATCH_THRESHOLD}")
    ax[3].set(xlabel="PDQ Hamming distance to nearest record", title="PDQ: genuine vs unrelated")
    ax[3].legend(fontsize=8)
    n_fp = result["false_matches"]["mark_found"]
    fig.suptitle(
        f"Soft binding over {result['photos']} photos; mark false positives {n_fp} of "
        f"{result['false_matches']['queries']} never-marked images"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=90)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("SHIELD_DATA_DIR", "../shared/data")))
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--limit", type=int, default=0, help="first N photos only (0: all)")
    ap.add_argument("--frames-per-clip", type=int, default=24)
    ap.add_argument("--runs", type=int, default=3, help="timing repetitions at 12 MP")
    ap.add_argument("--replot", action="store_true", help="only redraw --plot from an existing --json")
    ap.add_argument(
        "--explain-near", type=int, default=0, metavar="BITS",
        help="add to an existing --json which records the false-match queries within BITS matched",
    )
    args = ap.parse_args()
    if args.explain_near:
        earlier = json.loads(args.json.read_text())
        earlier["false_matches"]["near_pairs"] = explain_near(earlier, args.data, args.explain_near)
        earlier["false_matches"]["near_pairs_command"] = " ".join([".venv/bin/python", *sys.argv])
        args.json.write_text(json.dumps(earlier, indent=1, default=float))
        return
    if args.replot:
        plot(json.loads(args.json.read_text()), args.plot)
        return
    photos = sorted((args.data / "photos").glob("*.jpg"))
    if args.limit:
        photos = photos[: args.limit]
    if not photos:
        sys.exit(f"no photos under {args.data / 'photos'}")
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"bench.softbinding").digest())
    t0 = time.time()
    summary, per_photo, (index, genuine, records) = recovery(photos, key)
    fm = false_matches(args.data, args.frames_per_clip, index, records, key)
    result: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), {platform.python_version()}",
        "scheme": {"name": softbinding.ALG, "psnr_target": softbinding.DEFAULT_PSNR},
        "fingerprint": {"name": fingerprint.NAME, "threshold": fingerprint.MATCH_THRESHOLD},
        "photos": len(photos),
        "psnr": {
            k: float(np.mean([r[k] for r in per_photo]))
            for k in ("psnr_mark", "psnr_mark_and_fragile", "psnr_dwtdct")
        }
        | {"psnr_mark_min": float(min(r["psnr_mark"] for r in per_photo))},
        "recovery": summary,
        "pdq_genuine_distances": genuine,
        "false_matches": fm,
        "timing_12mp": timing(max(photos, key=lambda p: Image.open(p).size[0] * Image.open(p).size[1]), args.runs),
        "per_photo": per_photo,
        "wall_s": round(time.time() - t0, 1),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1, default=float))
    if args.plot:
        plot(result, args.plot)
    brief = {k: {r: v[r] for r in ("mark", "pdq", "dwtdct")} for k, v in summary.items()}
    log.info("%s", json.dumps({"psnr": result["psnr"], "recovery": brief, "timing": result["timing_12mp"]}, indent=1))
    log.info("false matches: %s", json.dumps({k: v for k, v in fm.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
