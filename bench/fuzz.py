"""Fuzz bench of the readers and of `shield verify` (issue 18): >= 10,000 mutated real
protected files, each verified against a real anvil devnet with a per-input time limit.

Counts per outcome: ``typed`` (a report, or a ShieldError with its one-line message),
``crash`` (any other exception: a traceback), ``hang`` (over the time limit; the worker
is killed and restarted), ``false_authentic`` (an "authentic" verdict for a file whose
decoded pixels differ from the published ones, or that carries extra frames or
rendering metadata). Writes JSON with the counts, per-mutator counts and the first few
crashers (as hex) under bench/results/.

    .venv/bin/python bench/fuzz.py --cases 10000 --json bench/results/fuzz.json
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import platform
import random
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
#: Seconds one input may take (load + manifest + watermark + ledger lookup) before it
#: counts as a hang; a clean verify of the 192 x 192 photo takes ~0.1-0.5 s.
TIME_LIMIT_S = 20.0
#: Seconds a (re)started worker may take to import shield and connect to the chain.
STARTUP_S = 300.0
#: Insertable chunks: colour, animation, EXIF, text, a second manifest, an unknown critical one.
_CHUNKS = [b"gAMA", b"iCCP", b"cHRM", b"sRGB", b"acTL", b"fcTL", b"fdAT", b"eXIf", b"tEXt", b"caBX", b"tRNS", b"zzZz"]


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos + 8 <= len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    return out


def _png(parts: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d)) for t, d in parts)
    return b"\x89PNG\r\n\x1a\n" + body


def _flip(data: bytes, rng: random.Random, n: int) -> bytes:
    buf = bytearray(data)
    for _ in range(n):
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)


def mutate(name: str, original: bytes, rng: random.Random) -> bytes:
    """One mutation of a PNG (``name`` picks the mutator; see MUTATORS)."""
    parts = _chunks(original)
    if name == "bitflip":
        return _flip(original, rng, rng.randint(1, 16))
    if name in ("cabx", "idat", "ihdr"):
        tag = {"cabx": b"caBX", "idat": b"IDAT", "ihdr": b"IHDR"}[name]
        idx = [i for i, c in enumerate(parts) if c[0] == tag]
        i = rng.choice(idx)
        parts[i] = (tag, _flip(parts[i][1], rng, rng.randint(1, 8)))
        return _png(parts)  # CRC fixed: the chunk's own parser sees the damage
    if name == "cabx_bytes":
        i = next(n for n, c in enumerate(parts) if c[0] == b"caBX")
        body = bytearray(parts[i][1])
        at = rng.randrange(len(body))
        body[at:at + rng.randint(1, 16)] = rng.randbytes(rng.randint(0, 16))
        parts[i] = (b"caBX", bytes(body))
        return _png(parts)
    if name == "drop":
        del parts[rng.randrange(len(parts))]
        return _png(parts)
    if name == "duplicate":
        i = rng.randrange(len(parts))
        parts.insert(rng.randrange(len(parts) + 1), parts[i])
        return _png(parts)
    if name == "insert":
        parts.insert(rng.randint(1, len(parts)), (rng.choice(_CHUNKS), rng.randbytes(rng.randint(0, 80))))
        return _png(parts)
    if name == "swap":
        i, j = rng.randrange(len(parts)), rng.randrange(len(parts))
        parts[i], parts[j] = parts[j], parts[i]
        return _png(parts)
    if name == "truncate":
        return original[:rng.randrange(len(original))]
    if name == "splice":
        at = rng.randrange(len(original))
        return original[:at] + rng.randbytes(rng.randint(1, 64)) + original[at + rng.randint(0, 64):]
    if name == "pixels":  # stored pixels changed and re-encoded cleanly, manifest kept or not
        rgb = np.asarray(Image.open(io.BytesIO(original)).convert("RGB")).copy()
        y, x = rng.randrange(rgb.shape[0]), rng.randrange(rgb.shape[1])
        rgb[y, x, rng.randrange(3)] ^= 1 << rng.randrange(8)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        new = _chunks(buf.getvalue())
        if rng.random() < 0.5:
            new.insert(1, next(c for c in parts if c[0] == b"caBX"))
        return _png(new)
    raise ValueError(name)


MUTATORS = ("bitflip", "cabx", "cabx_bytes", "idat", "ihdr", "drop", "duplicate", "insert", "swap", "truncate",
            "splice", "pixels")


def _worker(conn: Connection, home: str, env: dict[str, str], original_png: str) -> None:
    """Verify each file the parent sends; answer (outcome, detail)."""
    os.environ.update(env)
    import torch

    torch.set_num_threads(1)
    from shield.config import load_settings
    from shield.errors import ShieldError
    from shield.imaging import load_image_bytes
    from shield.imaging.rendering import rendering_metadata
    from shield.ledger import open_ledger
    from shield.pipeline import verify_file
    from shield.report import Verdict

    settings = load_settings(env=env, cwd=Path(home))
    ledger = open_ledger(settings, None, start_devnet=False)
    published = load_image_bytes(Path(original_png).read_bytes(), name="o.png", max_pixels=settings.max_pixels).rgb
    path = Path(home) / f"case-{os.getpid()}.png"
    conn.send(("ready", ""))
    while True:
        data = conn.recv_bytes()
        if not data:
            return
        path.write_bytes(data)
        try:
            report = verify_file(path, settings, ledger=ledger)
        except ShieldError as exc:
            conn.send(("typed", type(exc).__name__))
            continue
        except Exception:  # noqa: BLE001 - this is what the bench counts
            conn.send(("crash", traceback.format_exc(limit=6)))
            continue
        if report.verdict in (Verdict.AUTHENTIC, Verdict.AUTHENTIC_STRIPPED):
            img = load_image_bytes(data, name="c.png", max_pixels=settings.max_pixels)
            fmt = img.format
            same = img.rgb.shape == published.shape and bool(np.array_equal(img.rgb, published))
            if not same or img.frames > 1 or rendering_metadata(data, fmt).changes_rendering:
                conn.send(("false_authentic", report.verdict.value))
                continue
        conn.send(("typed", report.verdict.value))


class _Pool:
    """One worker process; killed and restarted when an input exceeds the time limit."""

    def __init__(self, home: str, env: dict[str, str], original: str) -> None:
        self.args = (home, env, original)
        self._start()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, *self.args), daemon=True)
        self.proc.start()
        # Imports and the ledger connection are not the input's time.
        if not self.conn.poll(STARTUP_S) or self.conn.recv() != ("ready", ""):
            raise SystemExit("the fuzz worker did not start")

    def run(self, data: bytes, limit: float) -> tuple[str, str]:
        self.conn.send_bytes(data)
        if self.conn.poll(limit):
            try:
                out: tuple[str, str] = self.conn.recv()
                return out
            except EOFError:
                pass
        else:
            self.proc.kill()
            self.proc.join()
            self._start()
            return "hang", f"over {limit:.0f} s"
        self.proc.join()
        code = self.proc.exitcode
        self._start()
        return "crash", f"worker died (exit {code})"

    def close(self) -> None:
        self.conn.send_bytes(b"")
        self.proc.join(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _publish(root: Path, env: dict[str, str]) -> Path:
    """A small photo (astronaut crop) protected without perturbation and anchored."""
    from skimage import data

    from shield.config import load_settings
    from shield.pipeline import ProtectOptions, protect_files

    settings = load_settings(env=env, cwd=root)
    src = root / "face.png"
    Image.fromarray(data.astronaut()[40:232, 150:342]).save(src)
    [out] = protect_files([src], settings, ProtectOptions(outdir=root / "out", adversarial=False))
    if out.ledger.get("status") != "anchored":
        raise SystemExit(f"the photo was not anchored: {out.ledger}")
    return out.output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT_S)
    parser.add_argument("--workers", type=int, default=1, help="verifying processes (each with its own time limit)")
    args = parser.parse_args()
    from shield.config import load_settings
    from shield.ledger import Devnet

    root = Path(tempfile.mkdtemp(prefix="shield-bench-fuzz-"))
    env = {"SHIELD_HOME": str(root / "home"), "SHIELD_KEYS_DIR": str(root / "keys"),
           "SHIELD_NODE_BIN": str(REPO / "node_modules" / ".bin"), "SHIELD_ANVIL_PORT": str(_free_port())}
    settings = load_settings(env=env, cwd=root)
    counts: Counter[str] = Counter()
    by_mutator: dict[str, Counter[str]] = {m: Counter() for m in MUTATORS}
    verdicts: Counter[str] = Counter()
    examples: list[dict[str, str]] = []
    t0 = time.perf_counter()
    try:
        photo = _publish(root, env)
        original = photo.read_bytes()
        pools = [_Pool(str(root), env, str(photo)) for _ in range(max(1, args.workers))]
        base = pools[0].run(original, args.time_limit)
        if base != ("typed", "authentic"):
            raise SystemExit(f"the unmutated photo does not verify authentic: {base}")
        lock = threading.Lock()
        todo = iter(range(args.cases))

        def case(i: int) -> tuple[str, bytes]:
            name = MUTATORS[i % len(MUTATORS)]
            return name, mutate(name, original, random.Random(args.seed * 1_000_003 + i))

        def drive(pool: _Pool) -> list[tuple[int, str, bytes, str, str]]:
            done: list[tuple[int, str, bytes, str, str]] = []
            while True:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return done
                name, data = case(i)
                outcome, detail = pool.run(data, args.time_limit)
                done.append((i, name, data if outcome != "typed" else b"", outcome, detail))
                if (i + 1) % 500 == 0:
                    print(f"case {i + 1}/{args.cases} {time.perf_counter() - t0:.0f}s", flush=True)

        with ThreadPoolExecutor(len(pools)) as ex:
            results = sorted((r for rs in ex.map(drive, pools) for r in rs), key=lambda r: r[0])
        for _, name, data, outcome, detail in results:
            counts[outcome] += 1
            by_mutator[name][outcome] += 1
            if outcome == "typed":
                verdicts[detail] += 1
            elif len(examples) < 10:
                examples.append({"outcome": outcome, "mutator": name, "detail": detail[-1500:],
                                 "input_hex": data.hex() if len(data) < 4096 else f"{len(data)} bytes (not kept)"})
        for pool in pools:
            pool.close()
    finally:
        Devnet(settings).stop()
    result: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "input": "192x192 astronaut crop, protected (no perturbation), C2PA-signed, anchored on anvil",
        "time_limit_s": args.time_limit,
        "workers": args.workers,
        "cases": args.cases,
        "counts": {"typed": counts["typed"], "crash": counts["crash"], "hang": counts["hang"],
                   "false_authentic": counts["false_authentic"]},
        "verdicts_and_errors": dict(verdicts.most_common()),
        "by_mutator": {m: dict(c) for m, c in by_mutator.items()},
        "seconds": round(time.perf_counter() - t0, 1),
        "examples": examples,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "examples"}, indent=2))


if __name__ == "__main__":
    main()
