"""`shield protect DIR... -o OUT`: protect a photo library, resumably, on N processes or Ray.

The parent walks the inputs, hands one task per photo to the workers (in-process for one
worker, a spawn process pool for ``workers > 1``, Ray actors for ``ray_address``), and is
the only one that touches the run manifest and the ledger. Per photo:

1. a worker protects it (the same per-photo function as `shield protect`) and writes the
   signed file to ``OUT/.shield-library/staged/<n>/<name>.shield.png``, never to its output;
2. the parent records the photo's anchor request in the run manifest (``staged``);
3. once ``batch_size`` records are staged, the parent commits them to the ledger outbox as
   one Merkle batch (durable before any send), marks them ``enqueued``, moves each staged
   file to its output and marks it ``done``; then it drains the outbox.

A kill -9 at any point therefore leaves every photo either not recorded (its staged file is
discarded and the photo is protected on the rerun; nothing of it reached the ledger or OUT)
or recorded with its final bytes on disk (the rerun completes steps 3 without protecting it
again). No photo gets two outputs or two ledger records.

Ray transfer: ``bytes`` (default) sends each input's bytes to the actor and the signed file
back (any cluster, inputs up to ``MAX_TRANSFER_BYTES``); ``path`` has actors read inputs and
write staged files themselves, so every node must see the same paths (a shared filesystem).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shield.config import Settings
from shield.errors import ConfigError, InputError
from shield.imaging.formats import EXTENSIONS
from shield.pipeline.protect import OUTPUT_FORMATS, OUTPUT_SUFFIX, ProtectOptions, ProtectOutcome

#: outputs of a single-photo or library run (PNG or lossless WebP), never taken as inputs
_OUTPUTS = tuple(f".shield.{fmt}" for fmt in OUTPUT_FORMATS)

__all__ = [
    "LibraryOptions", "LibraryEvent", "LibraryFailure", "LibraryReport", "RayNotInstalledError",
    "find_photos", "protect_library", "RUN_DIR", "MAX_TRANSFER_BYTES",
]  # fmt: skip

log = logging.getLogger(__name__)

#: the run's state inside OUT: manifest database and staged files
RUN_DIR = ".shield-library"
#: Ray bytes transfer puts each file in the object store twice (input and output); larger
#: photos should use the shared-path mode instead of filling the store.
MAX_TRANSFER_BYTES = 64 * 1024 * 1024
TRANSFERS = ("bytes", "path")


class RayNotInstalledError(ConfigError):
    """`--ray` was asked for but Ray is not installed."""

    default_fix = "pip install 'shield[ray]'"


@dataclass(frozen=True)
class LibraryOptions:
    """How a library run is spread and anchored.

    Attributes:
        outdir: output folder; outputs mirror the input folders below it.
        recursive: walk sub-folders of folder inputs.
        workers: processes (or Ray actors) protecting photos, >= 1.
        batch_size: records per Merkle batch on the ledger, >= 1 (1: single records).
        ray_address: None for local processes; ``auto`` starts (or joins) a local Ray
            instance; else a Ray cluster address (``ray://host:10001`` or ``host:6379``).
        ray_transfer: ``bytes`` or ``path`` (see the module docstring).
        ray_gpus: GPUs each Ray actor requests; > 0 also runs it with device ``cuda``.
        threads: torch threads per worker; None: cores // workers (at least 1).
    """

    outdir: Path
    recursive: bool = False
    workers: int = 1
    batch_size: int = 16
    ray_address: str | None = None
    ray_transfer: str = "bytes"
    ray_gpus: float = 0.0
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise InputError("workers must be at least 1")
        if self.batch_size < 1:
            raise InputError("batch_size must be at least 1")
        if self.ray_transfer not in TRANSFERS:
            raise InputError(f"ray_transfer must be one of {', '.join(TRANSFERS)}")
        if self.ray_gpus < 0:
            raise InputError("ray_gpus must not be negative")
        if self.threads is not None and self.threads < 1:
            raise InputError("threads must be at least 1")


@dataclass(frozen=True)
class LibraryFailure:
    input: Path
    reason: str


@dataclass(frozen=True)
class LibraryEvent:
    """Progress of a run: ``start`` (total, already done), then one ``done``/``failed`` per photo."""

    kind: str
    total: int = 0
    already: int = 0
    input: Path | None = None
    reason: str = ""


@dataclass(frozen=True)
class LibraryReport:
    """What a run did. ``protected`` are the photos this run protected; ``skipped`` were done before."""

    total: int
    protected: tuple[ProtectOutcome, ...]
    skipped: int
    failures: tuple[LibraryFailure, ...]
    anchored: int
    queued: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.failures


# ---------------------------------------------------------------------------- walking


def find_photos(inputs: Sequence[Path], outdir: Path, *, recursive: bool = False) -> list[tuple[Path, str]]:
    """(photo, output path relative to ``outdir``) for each image under ``inputs``, sorted.

    Folder inputs give their images (by extension; hidden files, ``*.shield.png`` / ``*.shield.webp`` outputs and
    ``outdir`` itself are left out), mirrored below ``outdir``; file inputs go to its top.

    Raises:
        InputError: an input does not exist.
    """
    out_real = outdir.resolve()
    found: list[tuple[Path, str]] = []
    for root in inputs:
        if root.is_file():
            found.append((root, _output_name(root.name)))
        elif root.is_dir():
            for path in _walk(root, recursive, out_real):
                found.append((path, str(path.parent.relative_to(root) / _output_name(path.name))))
        else:
            raise InputError(f"{root}: no such file or folder")
    return found


def _walk(root: Path, recursive: bool, skip: Path) -> Iterator[Path]:
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if recursive and entry.resolve() != skip:
                yield from _walk(entry, recursive, skip)
        elif entry.suffix.lower() in EXTENSIONS and not entry.name.lower().endswith(_OUTPUTS):
            yield entry


def _output_name(name: str) -> str:
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem}{OUTPUT_SUFFIX}"


# ---------------------------------------------------------------------------- run manifest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS photos (
    output TEXT PRIMARY KEY,      -- path relative to OUT
    input TEXT NOT NULL,
    state TEXT NOT NULL,          -- staged | enqueued | done
    asset_id BLOB NOT NULL, content_hash BLOB NOT NULL, file_hash BLOB NOT NULL, manifest_hash BLOB NOT NULL,
    staged TEXT NOT NULL,         -- path relative to OUT of the staged file
    outcome TEXT NOT NULL,        -- the ProtectOutcome as JSON, for the report
    updated TEXT NOT NULL,
    pdq BLOB, pdq_quality INTEGER -- perceptual fingerprint for the local index, when computed
);
"""


@dataclass(frozen=True)
class _Row:
    output: str
    input: str
    state: str
    request: Any  # shield.ledger.AnchorRequest
    staged: str
    fingerprint: tuple[bytes, int] | None = None  # PDQ value and quality


class _Manifest:
    """The run manifest: sqlite in OUT (atomic commits, synchronous=FULL, so kill -9 safe)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(_SCHEMA)

    def rows(self) -> dict[str, _Row]:
        from shield.ledger import AnchorRequest

        cur = self.conn.execute(
            "SELECT output, input, state, asset_id, content_hash, file_hash, manifest_hash, staged, pdq, pdq_quality "
            "FROM photos")
        return {r[0]: _Row(r[0], r[1], r[2], AnchorRequest(r[3], r[4], r[5], r[6], r[8]), r[7],
                           None if r[8] is None else (r[8], r[9])) for r in cur}

    def stage(self, output: str, src: Path, request: Any, staged: str, outcome: ProtectOutcome,
              fingerprint: tuple[bytes, int] | None) -> None:
        from shield.commands._common import to_jsonable

        pdq, quality = fingerprint if fingerprint is not None else (None, None)
        self.conn.execute(
            "INSERT OR REPLACE INTO photos VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (output, str(src), "staged", *request.fields, staged, json.dumps(to_jsonable(outcome)), _now(), pdq, quality))

    def mark(self, outputs: Iterable[str], state: str) -> None:
        for out in outputs:  # one autocommit per row: the recovery tolerates any prefix
            self.conn.execute("UPDATE photos SET state=?, updated=? WHERE output=?", (state, _now(), out))

    def forget(self, output: str) -> None:
        self.conn.execute("DELETE FROM photos WHERE output=?", (output,))

    def outcome(self, output: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT outcome FROM photos WHERE output=?", (output,)).fetchone()
        value: dict[str, Any] = json.loads(row[0])
        return value

    def close(self) -> None:
        self.conn.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _sha256(path: Path) -> bytes:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


def _verifies(path: Path, request: Any) -> bool:
    """The file is exactly the one whose hashes went to the ledger."""
    return path.is_file() and _sha256(path) == request.file_hash


# ---------------------------------------------------------------------------- the worker side


@dataclass(frozen=True)
class _Task:
    src: Path
    staged: Path
    data: bytes | None = None  # Ray bytes transfer: the input file


@dataclass(frozen=True)
class _Result:
    src: Path
    staged: Path
    request: Any = None
    outcome: ProtectOutcome | None = None
    data: bytes | None = None  # Ray bytes transfer: the signed file
    error: str = ""
    fingerprint: tuple[bytes, int] | None = None  # PDQ value and quality of the final pixels


class PhotoWorker:
    """Protects one photo at a time; holds the keystore and the networks for its whole life.

    One per process (local pool) or per Ray actor. ``target`` is the parent's ledger target
    (chain id, registry, publisher), so that the watermark and manifest name the same chain.
    """

    def __init__(self, settings: Settings, options: ProtectOptions, target: dict[str, Any], threads: int) -> None:
        import torch

        from shield.provenance import ensure_keystore

        torch.set_num_threads(max(1, threads))
        self.settings, self.options, self.target = settings, options, target
        self.keys = ensure_keystore(settings)
        if options.adversarial:
            _load_models_once()

    def protect(self, task: _Task) -> _Result:
        """Protect ``task.src``; every failure is returned as the result's ``error``, never raised."""
        try:
            if task.data is None:
                return self._protect(task.src, task.staged, task)
            with tempfile.TemporaryDirectory(prefix="shield-photo-") as tmp:
                src = Path(tmp) / "in" / task.src.name
                src.parent.mkdir()
                src.write_bytes(task.data)
                out = Path(tmp) / "out" / task.staged.name
                out.parent.mkdir()
                done = self._protect(src, out, task)
                return replace(done, data=out.read_bytes(), outcome=_repath(done.outcome, task))
        except Exception as exc:  # noqa: BLE001 -- one bad photo never stops the run; the parent reports it
            if not _is_shield_error(exc):
                log.exception("unexpected failure on %s", task.src)
            if task.data is None:
                shutil.rmtree(task.staged.parent, ignore_errors=True)
            return _Result(task.src, task.staged, error=f"{type(exc).__name__}: {exc}")

    def _protect(self, src: Path, out: Path, task: _Task) -> _Result:
        from shield.pipeline.protect import _protect_one  # see the module note on the pipeline API

        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)  # a staged leftover of a killed run was never recorded
        prepared = _protect_one(src, out, self.settings, self.options, self.keys, self.target, None, _random)
        fp = getattr(prepared, "fingerprint", None)
        fingerprint = None if fp is None else (bytes(fp.value), int(fp.quality))
        return _Result(task.src, task.staged, prepared.request, prepared.outcome, fingerprint=fingerprint)


def _random(n: int) -> bytes:
    return os.urandom(n)


def _repath(outcome: ProtectOutcome | None, task: _Task) -> ProtectOutcome | None:
    return None if outcome is None else replace(outcome, input=task.src, output=task.staged)


def _is_shield_error(exc: BaseException) -> bool:
    from shield.errors import ShieldError

    return isinstance(exc, ShieldError)


def _load_models_once() -> None:
    """Memoise the network loading of this process, so each photo reuses the loaded networks.

    ``protect_pixels`` loads its preset's ensemble per call; a worker lives for many photos.
    The networks are frozen and in eval mode, so sharing them between photos is safe.
    """
    from functools import lru_cache

    import shield.adversarial.protect as adv

    if getattr(adv.load_ensemble, "_shield_library_cached", False):
        return
    original = adv.load_ensemble

    @lru_cache(maxsize=8)
    def cached(items: tuple[tuple[str, float], ...], device: str) -> Any:
        return original(dict(items), device)

    def load(weights: Any, device: Any = "cpu") -> Any:
        pairs = tuple(sorted((weights.items() if isinstance(weights, dict) else weights)))
        return cached(pairs, str(device))

    load._shield_library_cached = True  # type: ignore[attr-defined]
    adv.load_ensemble = load


_WORKER: PhotoWorker | None = None


def _init_process(settings: Settings, options: ProtectOptions, target: dict[str, Any], threads: int) -> None:
    global _WORKER
    _WORKER = PhotoWorker(settings, options, target, threads)


def _run_in_process(task: _Task) -> _Result:
    assert _WORKER is not None, "the pool initializer did not run"
    return _WORKER.protect(task)


# ---------------------------------------------------------------------------- the parent side

Progress = Callable[[LibraryEvent], None]


def protect_library(
    inputs: Sequence[Path],
    settings: Settings,
    protect_options: ProtectOptions,
    options: LibraryOptions,
    *,
    progress: Progress | None = None,
) -> LibraryReport:
    """Protect every photo under ``inputs`` into ``options.outdir``; rerunnable after any crash.

    ``protect_options`` are the per-photo choices of `shield protect` (strength, ...);
    ``outdir`` and ``batch`` there are replaced by the library's (mirrored outputs, Merkle
    batches of ``options.batch_size``). ``overwrite`` re-protects photos whose output is
    missing, changed or not from this run (each then gets a new ledger record).

    Raises:
        InputError: an input is missing, or no photo was found.
        RayNotInstalledError: ``ray_address`` is set and Ray is not installed.
        KeystoreError, LedgerError: the keystore or the ledger could not be opened.
        Per-photo failures never raise: they are in the report's ``failures``.
    """
    from shield.pipeline.protect import _ledger_target, _open_ledger
    from shield.provenance import ensure_keystore

    outdir = options.outdir.resolve()
    photos = find_photos(inputs, outdir, recursive=options.recursive)
    if not photos:
        raise InputError("no photos found in the inputs", fix="pass image files or folders holding them (--recursive for sub-folders)")
    if options.ray_address is not None:
        _import_ray()
    outdir.mkdir(parents=True, exist_ok=True)
    per_photo = replace(protect_options, outdir=None, batch=False, overwrite=False)
    keys = ensure_keystore(settings)  # before the workers start, so that they never race to create it
    ledger, ledger_note = _open_ledger(settings, keys)
    manifest = _Manifest(outdir / RUN_DIR / "run.sqlite")
    try:
        commit = _Committer(manifest, ledger, outdir, options.batch_size)
        failures = commit.recover()
        recovered = {row.output for row in commit.finished}
        tasks, skipped, planned_failures = _plan(photos, manifest.rows(), outdir, protect_options.overwrite, recovered)
        failures += planned_failures
        _clear_orphans(outdir, manifest.rows())
        if progress:
            progress(LibraryEvent("start", total=len(photos), already=skipped))
            for f in failures:
                progress(LibraryEvent("failed", input=f.input, reason=f.reason))
        target = _ledger_target(settings, ledger, keys)
        rel_of = {task.staged: rel for rel, task in tasks}
        for result in _execute([t for _, t in tasks], settings, per_photo, target, options):
            if result.error or result.outcome is None:
                failures.append(LibraryFailure(result.src, result.error or "no result"))
                if progress:
                    progress(LibraryEvent("failed", input=result.src, reason=failures[-1].reason))
                continue
            commit.add(rel_of[result.staged], result)
            if progress:
                progress(LibraryEvent("done", input=result.src))
        commit.flush()
        notes = (f"ledger offline: {ledger_note}; run `shield anchor --pending` later",) if ledger_note else ()
        return commit.report(len(photos), skipped, failures, notes)
    finally:
        manifest.close()
        ledger.close()


def _plan(photos: list[tuple[Path, str]], rows: dict[str, _Row], outdir: Path, overwrite: bool,
          recovered: set[str]) -> tuple[list[tuple[str, _Task]], int, list[LibraryFailure]]:
    """What to protect; ``recovered`` photos were finished from a killed run's records just now."""
    tasks: list[tuple[str, _Task]] = []
    failures: list[LibraryFailure] = []
    skipped = 0
    seen: set[str] = set()
    for src, rel in photos:
        final = outdir / rel
        row = rows.get(rel)
        if rel in seen:
            failures.append(LibraryFailure(src, f"another input also writes {rel}; rename one of them"))
            continue
        seen.add(rel)
        if row is not None and row.state == "done":
            if _verifies(final, row.request):
                skipped += rel not in recovered
                continue
            if not overwrite:
                failures.append(LibraryFailure(src, f"{final} is missing or changed since this run protected it "
                                                    f"(asset {row.request.asset_id.hex()}); pass --overwrite to protect it again"))
                continue
        elif final.exists() and not overwrite:
            failures.append(LibraryFailure(src, f"{final} exists and was not written by this run; remove it or pass --overwrite"))
            continue
        staged = outdir / RUN_DIR / "staged" / hashlib.sha256(rel.encode()).hexdigest()[:16] / final.name
        tasks.append((rel, _Task(src.resolve(), staged)))
    return tasks, skipped, failures


def _clear_orphans(outdir: Path, rows: dict[str, _Row]) -> None:
    """Staged files no manifest row names: a killed run never recorded them, nothing of them is anchored."""
    staged_root = outdir / RUN_DIR / "staged"
    keep = {(outdir / r.staged).parent for r in rows.values() if r.state != "done"}
    if staged_root.is_dir():
        for folder in staged_root.iterdir():
            if folder not in keep:
                shutil.rmtree(folder, ignore_errors=True)


class _Committer:
    """Records results, anchors them as Merkle batches through the outbox, moves files into place."""

    def __init__(self, manifest: _Manifest, ledger: Any, outdir: Path, batch_size: int) -> None:
        self.manifest, self.ledger, self.outdir, self.batch_size = manifest, ledger, outdir, batch_size
        self.pending: list[_Row] = []
        self.finished: list[_Row] = []
        self.outcomes: dict[bytes, Any] = {}

    def add(self, rel: str, result: _Result) -> None:
        from shield.imaging import atomic_write_bytes

        if result.data is not None:
            result.staged.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(result.data, result.staged, overwrite=True)
        staged = str(result.staged.relative_to(self.outdir))
        assert result.outcome is not None
        outcome = replace(result.outcome, input=result.src, output=self.outdir / rel)
        self.manifest.stage(rel, result.src, result.request, staged, outcome, result.fingerprint)
        self.pending.append(_Row(rel, str(result.src), "staged", result.request, staged, result.fingerprint))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def recover(self) -> list[LibraryFailure]:
        """Finish what a killed run recorded; forget what it staged without recording."""
        failures: list[LibraryFailure] = []
        for row in self.manifest.rows().values():
            staged, final = self.outdir / row.staged, self.outdir / row.output
            if row.state == "staged" and _verifies(staged, row.request):
                self.pending.append(row)
            elif row.state == "staged":
                self.manifest.forget(row.output)  # never enqueued: the photo is simply protected again
            elif row.state == "enqueued" and not (_verifies(staged, row.request) or _verifies(final, row.request)):
                failures.append(LibraryFailure(Path(row.input), f"its staged file {staged} was lost after anchoring "
                                                                f"(asset {row.request.asset_id.hex()})"))
            elif row.state == "enqueued":
                self._move(row)
        if self.pending:
            self.flush()
        elif self.finished:
            self._drain()
        return failures

    def flush(self) -> None:
        if not self.pending:
            return
        rows, self.pending = self.pending, []
        fresh = [r.request for r in rows if self.ledger.index.get(r.request.asset_id) is None]
        for r in rows:  # as protect_files does: the fingerprint joins the local index before the anchor
            if r.fingerprint is not None and r.request in fresh:
                self.ledger.record_fingerprint(r.request.asset_id, *r.fingerprint)
        names = [Path(r.output).name for r in rows if r.request in fresh]  # the index names each file (audit)
        if len(fresh) > 1:
            self.ledger.enqueue_batch(fresh, file_names=names)
        elif fresh:
            self.ledger.enqueue(fresh[0], file_name=names[0])
        self.manifest.mark([r.output for r in rows], "enqueued")
        for row in rows:
            self._move(row)
        self._drain()

    def _drain(self) -> None:
        for o in self.ledger.drain():
            self.outcomes[o.asset_id] = o

    def _move(self, row: _Row) -> None:
        staged, final = self.outdir / row.staged, self.outdir / row.output
        if _verifies(staged, row.request):
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, final)
            _fsync_dir(final.parent)
            shutil.rmtree(staged.parent, ignore_errors=True)
        self.manifest.mark([row.output], "done")
        self.finished.append(row)

    def report(self, total: int, skipped: int, failures: list[LibraryFailure], notes: tuple[str, ...]) -> LibraryReport:
        from shield.ledger import sidecar_path, write_proof_sidecar

        done: list[ProtectOutcome] = []
        anchored = queued = 0
        for row in self.finished:
            o = self.outcomes.get(row.request.asset_id)
            status = str(getattr(o.status, "value", o.status)) if o is not None else "queued"
            entry: dict[str, Any] = {"status": status}
            if o is not None:
                entry.update(chain_id=o.chain_id, contract=o.contract, tx=o.tx_hash, block=o.block, message=o.message)
                proof = self.ledger.proof_for(row.request.asset_id) if o.batch_root and status == "anchored" else None
                if proof is not None:
                    write_proof_sidecar(sidecar_path(self.outdir / row.output), proof)
                    entry["proof"] = str(sidecar_path(self.outdir / row.output))
            anchored += status == "anchored"
            queued += status != "anchored"
            done.append(_outcome_from_json(self.manifest.outcome(row.output), entry))
        return LibraryReport(total, tuple(done), skipped, tuple(failures), anchored, queued, notes)


def _outcome_from_json(doc: dict[str, Any], ledger: dict[str, Any]) -> ProtectOutcome:
    from shield.pipeline.protect import FaceOutcome, StageOutcome

    faces = tuple(
        FaceOutcome(tuple(f["box"]), f["psnr"], f["seconds"], tuple(StageOutcome(**s) for s in f["stages"]))
        for f in doc["face_stages"]
    )
    return ProtectOutcome(
        input=Path(doc["input"]), output=Path(doc["output"]), asset_id=doc["asset_id"], width=doc["width"],
        height=doc["height"], conversions=tuple(doc["conversions"]), psnr=doc["psnr"], ssim=doc["ssim"],
        faces=doc["faces"], threat_models=doc["threat_models"], face_stages=faces, watermark=doc["watermark"],
        manifest=doc["manifest"], ledger=ledger, notes=tuple(doc["notes"]),
    )  # fmt: skip


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- executors


def _execute(tasks: list[_Task], settings: Settings, options: ProtectOptions, target: dict[str, Any],
             lib: LibraryOptions) -> Iterator[_Result]:
    if not tasks:
        return
    if lib.ray_address is not None:
        yield from _execute_ray(tasks, settings, options, target, lib)
        return
    threads = lib.threads or max(1, (os.cpu_count() or 1) // lib.workers)
    if lib.workers == 1:
        worker = PhotoWorker(settings, options, target, threads)
        yield from (worker.protect(t) for t in tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")  # torch and sqlite handles do not survive fork
    with ProcessPoolExecutor(lib.workers, mp_context=ctx, initializer=_init_process,
                             initargs=(settings, options, target, threads)) as pool:
        futures = {pool.submit(_run_in_process, t): t for t in tasks}
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                yield fut.result()
            except BrokenProcessPool as exc:
                yield _Result(task.src, task.staged, error=f"a worker process died: {exc}")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalledError("--ray needs Ray, which is not installed") from exc
    return ray


def _execute_ray(tasks: list[_Task], settings: Settings, options: ProtectOptions, target: dict[str, Any],
                 lib: LibraryOptions) -> Iterator[_Result]:
    """One actor per worker, each holding its networks; tasks fed as actors free up."""
    ray = _import_ray()
    from ray.util import ActorPool

    started = not ray.is_initialized()
    if started:
        # "auto": join the local cluster if one runs, else start one (ray.init's own "auto" only joins)
        ray.init(address=None if lib.ray_address == "auto" else lib.ray_address, include_dashboard=False,
                 logging_level=logging.WARNING)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        threads = lib.threads or max(1, cpus // lib.workers)
        env: dict[str, Any] = {}
        if lib.ray_gpus > 0:
            settings = replace(settings, device="cuda")
            env = {"runtime_env": {"env_vars": {"SHIELD_DEVICE": "cuda"}}}
        actor = ray.remote(PhotoWorker).options(num_cpus=threads, num_gpus=lib.ray_gpus, **env)
        pool = ActorPool([actor.remote(settings, options, target, threads) for _ in range(lib.workers)])
        for task in tasks:
            while not pool.has_free():
                yield pool.get_next_unordered()
            sent = _for_transfer(task, lib.ray_transfer)
            if isinstance(sent, _Result):
                yield sent
                continue
            pool.submit(lambda a, t: a.protect.remote(t), sent)
        while pool.has_next():
            yield pool.get_next_unordered()
    finally:
        if started:
            ray.shutdown()


def _for_transfer(task: _Task, transfer: str) -> _Task | _Result:
    if transfer == "path":
        return task
    size = task.src.stat().st_size
    if size > MAX_TRANSFER_BYTES:
        return _Result(task.src, task.staged, error=f"{size} bytes is over the Ray bytes-transfer limit "
                                                     f"({MAX_TRANSFER_BYTES}); use --ray-transfer path on a shared path")
    return replace(task, data=task.src.read_bytes())
