"""`shield protect`: the full protection chain for one or many photos.

Order (DESIGN.md): perturbation first, then the robust soft-binding mark (the asset id,
readable after re-encoding: shield.softbinding), then the fragile watermark (nothing
touches pixels after it), then the PDQ fingerprint of the final pixels, then C2PA signing
(hashes the file), then the ledger anchor (records the final hashes; the fingerprint goes
into the local index next to it). The anchor request is written to the durable outbox before the photo is
written, so a crash at any point leaves either nothing or a queued anchor.

Progress: each stage of each photo (:class:`Stage`) is reported to an optional callback as
typed :class:`StageEvent` values (started, advanced by attack steps, finished with its
duration), and every outcome carries its per-stage times (:class:`StageTiming`).

Output: lossless PNG (default) or lossless WebP (``ProtectOptions.output_format``); a lossy
format would destroy the fragile watermark, so none is offered.
"""

from __future__ import annotations


import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from shield.config import Settings
from shield.errors import InputError, LedgerError, OutputError

__all__ = [
    "ProtectOptions", "ProtectOutcome", "protect_files", "output_path_for", "Stage", "StageState", "StageEvent",
    "StageTiming", "StageCallback", "OUTPUT_FORMATS",
]  # fmt: skip

log = logging.getLogger(__name__)

OUTPUT_SUFFIX = ".shield.png"
#: Output formats, both lossless (the fragile watermark does not survive lossy coding).
OUTPUT_FORMATS = ("png", "webp")
_MIME = {"png": "image/png", "webp": "image/webp"}


class Stage(str, Enum):
    """The stages of protecting one photo, in the order they run."""

    SETUP = "setup"  # keystore and ledger connection, once for the run
    LOAD = "load"
    FACES = "faces"  # HOG detection, then the CNN's confirmation of each face
    MODELS = "models"  # loading the threat models the attack runs against
    ATTACK = "attack"
    SELF_CHECK = "self-check"
    ROBUST_MARK = "robust mark"
    WATERMARK = "fragile watermark"
    FINGERPRINT = "fingerprint"
    ENCODE = "encode"
    SIGN = "sign"  # C2PA manifest
    WRITE = "write"
    ANCHOR = "anchor"  # ledger, once for all photos of the run


class StageState(str, Enum):
    STARTED = "started"
    ADVANCED = "advanced"  # the attack only: ``done`` of ``total`` units
    FINISHED = "finished"


@dataclass(frozen=True)
class StageEvent:
    """One step of progress.

    Attributes:
        photo: the input photo; None for the setup and the ledger anchor, which cover the whole run.
        stage: which stage.
        state: started, advanced (attack steps) or finished.
        done: units done so far (``ADVANCED``): attack steps, or faces with an attack that
            reports per face.
        total: units in all (``STARTED`` and ``ADVANCED`` of the attack; else 0).
        seconds: wall time of the stage (``FINISHED``).
        detail: what the stage did (``FINISHED``), e.g. ``40 steps, 1 face``.
    """

    photo: Path | None
    stage: Stage
    state: StageState
    done: int = 0
    total: int = 0
    seconds: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class StageTiming:
    """Wall time of one stage of one photo, in seconds, and what it did."""

    stage: Stage
    seconds: float
    detail: str = ""


StageCallback = Callable[[StageEvent], None]
_T = TypeVar("_T")


@dataclass(frozen=True)
class ProtectOptions:
    """Choices of one `shield protect` run.

    Attributes:
        outdir: where outputs go (default: beside each input).
        strength: adversarial preset, fast | balanced | max.
        whole_frame: protect the whole image when no face is found (else NoFaceError).
        adversarial: False skips the perturbation (watermark, C2PA and ledger only).
        batch: anchor all photos of this run as one Merkle root.
        ingredient: embed the original as a C2PA ingredient.
        overwrite: replace an existing output file (never an input).
        seed: seeds the perturbation's random start, for reproducible runs.
        output_format: ``png`` or ``webp`` (lossless WebP, 22-35% smaller on the shared photos).
    """

    outdir: Path | None = None
    strength: str = "balanced"
    whole_frame: bool = False
    adversarial: bool = True
    batch: bool = False
    ingredient: bool = False
    overwrite: bool = False
    seed: int | None = None
    output_format: str = "png"

    def __post_init__(self) -> None:
        if self.output_format not in OUTPUT_FORMATS:
            raise InputError(f"output format {self.output_format!r} is not one of {', '.join(OUTPUT_FORMATS)}",
                             fix="use png or webp: both are lossless, which the fragile watermark needs")


@dataclass(frozen=True)
class StageOutcome:
    """One attacked network's break test on one protected face (the self-check)."""

    model: str
    role: str
    broken: bool | None
    measure: float
    threshold: float
    what: str


@dataclass(frozen=True)
class FaceOutcome:
    """One protected face: where, at what quality, and which stages broke."""

    box: tuple[float, float, float, float]
    psnr: float
    seconds: float
    stages: tuple[StageOutcome, ...]

    @property
    def broken(self) -> list[str]:
        return [s.model for s in self.stages if s.broken]


@dataclass(frozen=True)
class ProtectOutcome:
    """What happened to one photo."""

    input: Path
    output: Path
    asset_id: str
    width: int
    height: int
    conversions: tuple[str, ...]
    psnr: float | None
    ssim: float | None
    faces: int
    threat_models: dict[str, Any]
    face_stages: tuple[FaceOutcome, ...]
    watermark: dict[str, Any]
    manifest: dict[str, Any]
    ledger: dict[str, Any]
    notes: tuple[str, ...] = field(default_factory=tuple)
    soft_binding: dict[str, Any] = field(default_factory=dict)
    whole_frame: bool = False
    rejected_faces: int = 0
    timings: tuple[StageTiming, ...] = ()

    @property
    def protected_what(self) -> str:
        """What the perturbation covers, in words: ``1 face``, ``whole frame (no face found)``."""
        if self.whole_frame:
            return "whole frame (no face found)"
        return f"{self.faces} face{'s' if self.faces != 1 else ''}"


def output_path_for(src: Path, outdir: Path | None, output_format: str = "png") -> Path:
    """``<outdir or src's folder>/<stem>.shield.<png|webp>``."""
    stem = src.name.rsplit(".", 1)[0] if "." in src.name else src.name
    suffix = OUTPUT_SUFFIX if output_format == "png" else f".shield.{output_format}"
    return (outdir if outdir is not None else src.parent) / f"{stem}{suffix}"


class _Stages:
    """Times the stages of one photo and reports them to ``callback``."""

    def __init__(self, photo: Path | None, callback: StageCallback | None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.photo, self.callback, self.clock = photo, callback, clock
        self.timings: list[StageTiming] = []
        self.current: Stage | None = None
        self.started = 0.0
        self.done = self.total = 0

    def _emit(self, event: StageEvent) -> None:
        if self.callback is not None:
            self.callback(event)

    def start(self, stage: Stage, total: int = 0) -> None:
        self.current, self.started, self.done, self.total = stage, self.clock(), 0, total
        self._emit(StageEvent(self.photo, stage, StageState.STARTED, total=total))

    def advance(self, n: int) -> None:
        if self.current is None:
            return
        self.done += n
        self._emit(StageEvent(self.photo, self.current, StageState.ADVANCED, done=self.done, total=self.total))

    def finish(self, detail: str = "") -> None:
        if self.current is None:
            return
        seconds = self.clock() - self.started
        self.timings.append(StageTiming(self.current, seconds, detail))
        self._emit(StageEvent(self.photo, self.current, StageState.FINISHED, seconds=seconds, detail=detail))
        self.current = None

    def run(self, stage: Stage, fn: Callable[[], _T], detail: str = "") -> _T:
        """``fn()`` as one whole stage."""
        self.start(stage)
        value = fn()
        self.finish(detail)
        return value


def protect_files(
    inputs: Sequence[Path],
    settings: Settings,
    options: ProtectOptions,
    *,
    progress: StageCallback | None = None,
    rng: Callable[[int], bytes] = secrets.token_bytes,
) -> list[ProtectOutcome]:
    """Protect each input and write ``<name>.shield.png`` (or ``.shield.webp``).

    ``progress`` receives a :class:`StageEvent` when each stage of each photo starts and
    finishes, and after each attack step.

    Raises:
        InputError: no inputs, or two inputs would write the same output.
        ImageError, KeystoreError, ProvenanceError, WatermarkError, NoFaceError,
        OutputError: per the failing stage. Ledger trouble never raises: the anchor
        is queued and the outcome says so.
    """
    from shield.provenance import ensure_keystore

    if not inputs:
        raise InputError("no input photos given")
    outputs = [output_path_for(p, options.outdir, options.output_format) for p in inputs]
    if len({o.resolve() for o in outputs}) != len(outputs):
        raise InputError("two inputs would write the same output file", fix="give inputs distinct names or use separate -o folders")
    for src, out in zip(inputs, outputs):
        if out.exists() and not options.overwrite:
            raise OutputError(f"{out} already exists", fix="remove it, choose another -o folder, or pass --overwrite")
        if out.resolve() == src.resolve():
            raise OutputError(f"refusing to write over the input {src}")
    if options.outdir is not None:
        options.outdir.mkdir(parents=True, exist_ok=True)

    setup = _Stages(None, progress)
    setup.start(Stage.SETUP)
    keys = ensure_keystore(settings)
    ledger, ledger_note = _open_ledger(settings, keys)
    target = _ledger_target(settings, ledger, keys)
    setup.finish("keys, ledger " + ("online" if not ledger_note else "offline: anchors are queued"))

    prepared = [
        _protect_one(src, out, settings, options, keys, target, progress, rng) for src, out in zip(inputs, outputs)
    ]
    anchor = _Stages(None, progress)
    anchor.start(Stage.ANCHOR)
    results = _anchor_all(prepared, ledger, ledger_note, options, target)
    queued = sum(1 for o in results if o.ledger.get("status") == "queued")
    anchor.finish(f"{len(results)} photo{'s' if len(results) != 1 else ''}, {len(results) - queued} sent, {queued} queued")
    return [replace(o, timings=(*setup.timings, *o.timings, *anchor.timings)) for o in results]


@dataclass
class _Prepared:
    outcome: ProtectOutcome
    request: Any
    fingerprint: Any = None


def _open_ledger(settings: Settings, keys: Any) -> tuple[Any, str]:
    from shield.ledger import open_ledger

    ledger = open_ledger(settings, keys.eth_private_key, publisher_keys=keys)
    if not ledger.online:
        ledger.register_publisher_later(keys.cert_fingerprint, keys.watermark_public_key)
        return ledger, str(ledger.unavailable)
    try:
        ledger.register_publisher(keys.cert_fingerprint, keys.watermark_public_key)
    except LedgerError as exc:
        log.warning("publisher registration failed: %s", exc)
    return ledger, ""


def _ledger_target(settings: Settings, ledger: Any, keys: Any) -> dict[str, Any]:
    chain_id, registry = ledger.chain_id, ledger.registry_address
    return {"chain_id": chain_id, "registry": registry, "publisher": keys.eth_address}


def _protect_one(
    src: Path,
    out: Path,
    settings: Settings,
    options: ProtectOptions,
    keys: Any,
    target: dict[str, Any],
    progress: StageCallback | None,
    rng: Callable[[int], bytes],
) -> _Prepared:
    from shield import imaging, watermark
    from shield.ledger import AnchorRequest
    from shield.provenance import ManifestSpec, sign_image

    stages = _Stages(src, progress)
    stages.start(Stage.LOAD)
    img = imaging.load_image(src, max_pixels=settings.max_pixels)
    stages.finish(f"{img.width}x{img.height}")
    notes = list(img.conversions)
    if not img.lossless:
        notes.append("the input is lossy-compressed; the output is stored losslessly, so it is larger than the input")
    rgb = img.rgb
    psnr = ssim = None
    threat: dict[str, Any] = {}
    face_stages: tuple[FaceOutcome, ...] = ()
    protection_record: dict[str, Any] = {"applied": False}
    faces = rejected = 0
    whole = False
    hint = None
    if options.adversarial:
        result, rejected = _perturb(rgb, options, settings, stages)
        rgb, hint = result.rgb, result.delta
        psnr, ssim = result.psnr, result.ssim
        whole = bool(result.params.get("whole_frame"))
        faces = 0 if whole else len(result.faces)
        protection_record = result.manifest_record()
        threat = dict(protection_record["self_check"])
        face_stages = tuple(
            FaceOutcome(
                face.box, face.psnr, face.seconds,
                tuple(StageOutcome(name, result.self_check[name].role, v.broken, v.measure, v.threshold, v.what) for name, v in face.stages.items()),
            )
            for face in result.faces
        )  # fmt: skip
        if rejected:
            notes.append(f"{rejected} face-like region{'s' if rejected != 1 else ''} not confirmed as a human face "
                         "by the second detector, left unprotected")
    else:
        notes.append("adversarial perturbation skipped (--no-adversarial)")

    asset_id = rng(16)
    robust, soft_record = stages.run(Stage.ROBUST_MARK, lambda: _soft_bind(rgb, asset_id, notes))
    registry = bytes.fromhex(target["registry"][2:]) if target.get("registry") else bytes(20)
    payload = watermark.Payload(version=1, asset_id=asset_id, chain_id=int(target.get("chain_id") or 0), registry=registry)
    marked = stages.run(Stage.WATERMARK, lambda: watermark.embed(robust, payload, keys.watermark_key, hint=hint))
    fingerprint = stages.run(Stage.FINGERPRINT, lambda: _fingerprint(marked, notes))
    if fingerprint is not None:
        soft_record["fingerprint"] = {"method": "pdq", "quality": fingerprint.quality}
    stages.start(Stage.ENCODE)
    encoded = imaging.encode_image(marked, options.output_format)
    stages.finish(f"{options.output_format.upper()}, {len(encoded) / 1e6:.2f} MB")
    mime = _MIME[options.output_format]
    spec = ManifestSpec(
        title=out.name,
        asset_id=asset_id,
        input_action="c2pa.opened" if _has_manifest(src) else "c2pa.created",
        protection=protection_record,
        watermark={
            "scheme": watermark.SCHEME,
            "block_size": watermark.BLOCK_SIZE,
            "public_key": keys.watermark_public_key.hex(),
        },
        ledger={k: v for k, v in target.items() if v is not None},
        ingredient_path=src if (options.ingredient or _has_manifest(src)) else None,
        format=mime,
    )
    signed = stages.run(Stage.SIGN, lambda: sign_image(encoded, spec, keys, mime=mime))
    request = AnchorRequest(
        asset_id=asset_id,
        content_hash=imaging.pixel_hash(marked),
        file_hash=hashlib.sha256(signed.data).digest(),
        manifest_hash=signed.manifest_hash,
        pdq=fingerprint.value if fingerprint is not None else None,
    )
    # The photo is written last: its bytes are final and their hashes are in `request`.
    stages.start(Stage.WRITE)
    imaging.save_image_atomic(signed.data, out, inputs=[src], overwrite=options.overwrite)
    stages.finish(f"{len(signed.data) / 1e6:.2f} MB")
    outcome = ProtectOutcome(
        input=src,
        output=out,
        asset_id=asset_id.hex(),
        width=img.width,
        height=img.height,
        conversions=img.conversions,
        psnr=psnr,
        ssim=ssim,
        faces=faces,
        threat_models=threat,
        face_stages=face_stages,
        watermark={"scheme": watermark.SCHEME, "psnr": _psnr(robust, marked)},
        manifest={"state": "signed", "signer": keys.publisher_name, "development_keys": keys.development},
        ledger={},
        notes=tuple(notes),
        soft_binding=soft_record,
        whole_frame=whole,
        rejected_faces=rejected,
        timings=tuple(stages.timings),
    )
    return _Prepared(outcome, request, fingerprint)


def _perturb(rgb: Any, options: ProtectOptions, settings: Settings, stages: _Stages) -> tuple[Any, int]:
    """Faces (HOG, each confirmed by the mmod CNN), then the attack and its self-check.

    Returns the :class:`~shield.adversarial.protect.ProtectionResult` and the number of
    HOG faces the CNN did not confirm (left unprotected).

    Raises:
        NoFaceError: no confirmed face and not ``whole_frame``.
    """
    from shield.adversarial.face_views import locate_faces
    from shield.adversarial.presets import get_preset
    from shield.adversarial.protect import protect_pixels
    from shield.errors import NoFaceError
    from shield.faces import confirm_faces

    stages.start(Stage.FACES)
    found = locate_faces(rgb)
    checks = confirm_faces(rgb, [g.face for g in found])
    kept = [g for g, c in zip(found, checks) if c.confirmed]
    rejected = len(found) - len(kept)
    stages.finish(f"{len(kept)} face{'s' if len(kept) != 1 else ''}" + (f", {rejected} rejected" if rejected else ""))
    if not kept and not options.whole_frame:
        also = f" ({rejected} face-like region{'s' if rejected != 1 else ''} rejected as not human)" if rejected else ""
        raise NoFaceError(f"no human face found in the photo{also}, so there is nothing to protect against face deepfakes")
    steps = get_preset(options.strength).steps
    what = f"{len(kept)} face{'s' if len(kept) != 1 else ''}" if kept else "whole frame (no face found)"
    attack_detail = f"{steps * max(len(kept), 1)} steps, {what}"

    def begin_attack(total: int) -> Callable[[int], None]:
        stages.finish()  # the models are loaded once the attack reports its size
        stages.start(Stage.ATTACK, total=total)

        def advance(n: int) -> None:
            stages.advance(n)
            if stages.current is Stage.ATTACK and stages.done >= total:
                stages.finish(attack_detail)
                stages.start(Stage.SELF_CHECK)

        return advance

    stages.start(Stage.MODELS)
    result = protect_pixels(
        rgb, strength=options.strength, whole_frame=options.whole_frame, seed=options.seed, progress=begin_attack,
        device=settings.device, faces=kept,
    )  # fmt: skip
    if stages.current is Stage.MODELS:  # an attack that reported no progress
        stages.finish()
        stages.start(Stage.ATTACK)
    if stages.current is Stage.ATTACK:
        stages.finish(attack_detail)
        stages.start(Stage.SELF_CHECK)
    stages.finish(f"{len(result.self_check)} networks, 8-bit rounding, PSNR and SSIM")
    return result, rejected


def _soft_bind(rgb: Any, asset_id: bytes, notes: list[str]) -> tuple[Any, dict[str, Any]]:
    """The robust mark carrying ``asset_id`` under the public key (shield.softbinding).

    Returns the marked pixels and what the outcome reports: algorithm, PSNR cost in dB.
    An image too small for the mark (under 64 px) keeps its pixels, with a note.
    """
    from shield import softbinding

    try:
        marked = softbinding.embed(rgb, asset_id, softbinding.DEFAULT_KEY)
    except softbinding.SoftBindingInputError as exc:
        notes.append(f"soft-binding mark skipped: {exc}")
        return rgb, {"alg": softbinding.ALG, "embedded": False}
    return marked, {"alg": softbinding.ALG, "embedded": True, "psnr": _psnr(rgb, marked)}


def _fingerprint(rgb: Any, notes: list[str]) -> Any:
    """PDQ fingerprint of the final pixels (shield.fingerprint), or None with a note."""
    from shield import fingerprint

    try:
        fp = fingerprint.compute(rgb)
    except fingerprint.FingerprintInputError as exc:
        notes.append(f"perceptual fingerprint skipped: {exc}")
        return None
    if not fp.reliable:
        notes.append(f"perceptual fingerprint quality {fp.quality} is below {fingerprint.MIN_QUALITY}: "
                     "a re-encoded copy may not be found by it")
    return fp


def _anchor_all(prepared: list[_Prepared], ledger: Any, ledger_note: str, options: ProtectOptions, target: dict[str, Any]) -> list[ProtectOutcome]:
    results: list[ProtectOutcome] = []
    requests = [p.request for p in prepared]
    for p in prepared:
        if p.fingerprint is not None:
            ledger.record_fingerprint(p.request.asset_id, p.fingerprint.value, p.fingerprint.quality)
    names = [p.outcome.output.name for p in prepared]  # the index names each file (shield audit)
    if options.batch and len(requests) > 1:
        ledger.enqueue_batch(requests, file_names=names)
    else:
        for req, name in zip(requests, names, strict=True):
            ledger.enqueue(req, file_name=name)
    by_id = {o.asset_id: o for o in ledger.drain()}
    for p in prepared:
        o = by_id.get(p.request.asset_id)
        if o is None:
            msg = f"queued: {ledger_note or 'not yet sent'}; run `shield anchor --pending` later"
            results.append(replace(p.outcome, ledger={"status": "queued", "message": msg}))
            continue
        status = str(getattr(o.status, "value", o.status))
        if status == "queued":
            msg = f"{o.message or 'queued'}; run `shield anchor --pending` when the chain is reachable"
            results.append(replace(p.outcome, ledger={"status": "queued", "message": msg}))
            continue
        entry = {
            "status": status,
            "chain_id": o.chain_id,
            "contract": o.contract,
            "tx": o.tx_hash,
            "block": o.block,
            "message": o.message,
        }
        if options.batch and len(requests) > 1:
            entry["proof"] = str(_write_sidecar(ledger, p))
        results.append(replace(p.outcome, ledger=entry))
    return results


def _write_sidecar(ledger: Any, p: _Prepared) -> Path | None:
    from shield.ledger import sidecar_path, write_proof_sidecar

    proof = ledger.proof_for(p.request.asset_id)
    if proof is None:
        return None
    path = sidecar_path(p.outcome.output)
    write_proof_sidecar(path, proof)
    return path


def _has_manifest(path: Path) -> bool:
    from shield.provenance import has_manifest

    return bool(has_manifest(path))


def _psnr(a: Any, b: Any) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))
