"""`shield protect`: the full protection chain for one or many photos.

Order (DESIGN.md): perturbation first, then the robust soft-binding mark (the asset id,
readable after re-encoding: shield.softbinding), then the fragile watermark (nothing
touches pixels after it), then the PDQ fingerprint of the final pixels, then C2PA signing
(hashes the file), then the ledger anchor (records the final hashes; the fingerprint goes
into the local index next to it). The anchor request is written to the durable outbox before the photo is
written, so a crash at any point leaves either nothing or a queued anchor.
"""

from __future__ import annotations


import hashlib
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shield.config import Settings
from shield.errors import InputError, LedgerError, OutputError

__all__ = ["ProtectOptions", "ProtectOutcome", "protect_files", "output_path_for"]

log = logging.getLogger(__name__)

OUTPUT_SUFFIX = ".shield.png"


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
    """

    outdir: Path | None = None
    strength: str = "balanced"
    whole_frame: bool = False
    adversarial: bool = True
    batch: bool = False
    ingredient: bool = False
    overwrite: bool = False
    seed: int | None = None


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


def output_path_for(src: Path, outdir: Path | None) -> Path:
    stem = src.name.rsplit(".", 1)[0] if "." in src.name else src.name
    return (outdir if outdir is not None else src.parent) / f"{stem}{OUTPUT_SUFFIX}"


ProgressFactory = Callable[[str, int], Callable[[int], None]]


def protect_files(
    inputs: Sequence[Path],
    settings: Settings,
    options: ProtectOptions,
    *,
    progress: ProgressFactory | None = None,
    rng: Callable[[int], bytes] = secrets.token_bytes,
) -> list[ProtectOutcome]:
    """Protect each input and write ``<name>.shield.png``.

    Raises:
        InputError: no inputs, or two inputs would write the same output.
        ImageError, KeystoreError, ProvenanceError, WatermarkError, NoFaceError,
        OutputError: per the failing stage. Ledger trouble never raises: the anchor
        is queued and the outcome says so.
    """
    from shield.provenance import ensure_keystore

    if not inputs:
        raise InputError("no input photos given")
    outputs = [output_path_for(p, options.outdir) for p in inputs]
    if len({o.resolve() for o in outputs}) != len(outputs):
        raise InputError("two inputs would write the same output file", fix="give inputs distinct names or use separate -o folders")
    for src, out in zip(inputs, outputs):
        if out.exists() and not options.overwrite:
            raise OutputError(f"{out} already exists", fix="remove it, choose another -o folder, or pass --overwrite")
        if out.resolve() == src.resolve():
            raise OutputError(f"refusing to write over the input {src}")
    if options.outdir is not None:
        options.outdir.mkdir(parents=True, exist_ok=True)

    keys = ensure_keystore(settings)
    ledger, ledger_note = _open_ledger(settings, keys)
    target = _ledger_target(settings, ledger, keys)

    prepared = [
        _protect_one(src, out, settings, options, keys, target, progress, rng) for src, out in zip(inputs, outputs)
    ]
    return _anchor_all(prepared, ledger, ledger_note, options, target)


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
    progress: ProgressFactory | None,
    rng: Callable[[int], bytes],
) -> _Prepared:
    from shield import imaging, watermark
    from shield.ledger import AnchorRequest
    from shield.provenance import ManifestSpec, sign_image

    img = imaging.load_image(src, max_pixels=settings.max_pixels)
    notes = list(img.conversions)
    rgb = img.rgb
    psnr = ssim = None
    threat: dict[str, Any] = {}
    face_stages: tuple[FaceOutcome, ...] = ()
    protection_record: dict[str, Any] = {"applied": False}
    faces = 0
    hint = None
    if options.adversarial:
        from shield.adversarial.protect import protect_pixels

        face_progress = (lambda n: progress(f"protecting {src.name}", n)) if progress else None
        result = protect_pixels(
            rgb, strength=options.strength, whole_frame=options.whole_frame, seed=options.seed, progress=face_progress,
            device=settings.device,
        )  # fmt: skip
        rgb, hint = result.rgb, result.delta
        psnr, ssim = result.psnr, result.ssim
        faces = len(result.faces)
        protection_record = result.manifest_record()
        threat = dict(protection_record["self_check"])
        face_stages = tuple(
            FaceOutcome(
                face.box, face.psnr, face.seconds,
                tuple(StageOutcome(name, result.self_check[name].role, v.broken, v.measure, v.threshold, v.what) for name, v in face.stages.items()),
            )
            for face in result.faces
        )  # fmt: skip
    else:
        notes.append("adversarial perturbation skipped (--no-adversarial)")

    asset_id = rng(16)
    robust, soft_record = _soft_bind(rgb, asset_id, notes)
    registry = bytes.fromhex(target["registry"][2:]) if target.get("registry") else bytes(20)
    payload = watermark.Payload(version=1, asset_id=asset_id, chain_id=int(target.get("chain_id") or 0), registry=registry)
    marked = watermark.embed(robust, payload, keys.watermark_key, hint=hint)
    fingerprint = _fingerprint(marked, notes)
    if fingerprint is not None:
        soft_record["fingerprint"] = {"method": "pdq", "quality": fingerprint.quality}
    png = imaging.encode_png(marked)
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
    )
    signed = sign_image(png, spec, keys)
    request = AnchorRequest(
        asset_id=asset_id,
        content_hash=imaging.pixel_hash(marked),
        file_hash=hashlib.sha256(signed.data).digest(),
        manifest_hash=signed.manifest_hash,
        pdq=fingerprint.value if fingerprint is not None else None,
    )
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
    )
    # The photo is written last: its bytes are final and their hashes are in `request`.
    imaging.save_image_atomic(signed.data, out, inputs=[src], overwrite=options.overwrite)
    return _Prepared(outcome, request, fingerprint)


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
    from dataclasses import replace

    results: list[ProtectOutcome] = []
    requests = [p.request for p in prepared]
    for p in prepared:
        if p.fingerprint is not None:
            ledger.record_fingerprint(p.request.asset_id, p.fingerprint.value, p.fingerprint.quality)
    if options.batch and len(requests) > 1:
        ledger.enqueue_batch(requests)
    else:
        for req in requests:
            ledger.enqueue(req)
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
