"""`shield verify`: gather the evidence, then let shield.report decide.

Evidence order: the C2PA manifest (if any) names the asset id and the publisher's
watermark key; without it, the keyless watermark payload names the asset id and the
ledger's publisher registry supplies the key. The ledger record then says whether these
exact pixels, file and manifest were anchored, when and by whom.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shield.config import Settings
from shield.errors import ImageError, LedgerError
from shield.report import (
    C2paCode,
    C2paEvidence,
    LedgerEvidence,
    RegionBox,
    VerifyReport,
    WatermarkEvidence,
    decide,
    summary_for,
)

__all__ = ["verify_file", "MAX_FILE_BYTES"]

log = logging.getLogger(__name__)

#: Largest file read for verification: 512 MiB holds a 100 MP 16-bit TIFF; anything
#: larger is refused before reading it into memory.
MAX_FILE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class _Manifest:
    evidence: C2paEvidence
    asset_id: bytes | None
    watermark_key: bytes | None
    manifest_hash: bytes | None


def verify_file(
    path: Path,
    settings: Settings,
    *,
    trust_anchors: bytes | None = None,
    use_ledger: bool = True,
    tamper_map: Path | None = None,
    proof_path: Path | None = None,
) -> VerifyReport:
    """Check one photo and return the full report (never raises for a bad photo's content).

    Args:
        trust_anchors: PEM of the CAs to trust; None uses the local keystore's anchors
            when there are any (never "trust everything").
        use_ledger: False skips the ledger lookup (reported as skipped).
        tamper_map: write a PNG showing changed blocks here.
        proof_path: Merkle proof sidecar; default ``<photo>.proof.json`` when present.

    Raises:
        ImageError: the file cannot be read as an image at all.
    """
    from shield import imaging

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror}", fix="check the path") from exc
    if size > MAX_FILE_BYTES:
        raise ImageError(f"{path}: {size} bytes exceeds the {MAX_FILE_BYTES} byte limit for verification")
    data = path.read_bytes()
    img = imaging.load_image_bytes(data, name=str(path), max_pixels=settings.max_pixels)
    anchors = trust_anchors if trust_anchors is not None else _local_anchors(settings)

    manifest = _read_c2pa(data, img.format, anchors)
    payload = _read_payload(img.rgb)
    asset_id = manifest.asset_id or (payload.asset_id if payload is not None else None)

    ledger_ev, record, publisher_key = _ledger_evidence(settings, asset_id, use_ledger, img.rgb, data, manifest, proof_path)
    key = manifest.watermark_key or publisher_key
    key_source = "manifest" if manifest.watermark_key else ("ledger publisher registry" if publisher_key else None)
    wm_ev, wm_report = _watermark_evidence(img.rgb, key, key_source, payload, asset_id)
    if tamper_map is not None and wm_report is not None:
        from shield import watermark

        imaging.save_image_atomic(imaging.encode_png(watermark.render_tamper_map(img.rgb, wm_report)), tamper_map, inputs=[path], overwrite=True)

    verdict, reasons, skipped = decide(manifest.evidence, wm_ev, ledger_ev)
    return VerifyReport(
        verdict=verdict,
        asset_id=asset_id.hex() if asset_id else None,
        summary=summary_for(verdict),
        c2pa=manifest.evidence,
        watermark=wm_ev,
        ledger=ledger_ev,
        reasons=reasons,
        skipped=skipped,
        image={"path": str(path), "width": img.width, "height": img.height, "format": img.format, "conversions": list(img.conversions)},
    )


def _local_anchors(settings: Settings) -> bytes | None:
    from shield.provenance import local_trust_anchors

    return local_trust_anchors(settings)


def _read_c2pa(data: bytes, fmt: str, anchors: bytes | None) -> _Manifest:
    from shield.provenance import read_manifest

    mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff"}[fmt]
    rep = read_manifest(data, mime, anchors)
    codes = tuple(C2paCode(c.code, c.severity, c.explanation) for c in rep.codes)
    signer = rep.signer.common_name if rep.signer else None
    fingerprint = rep.signer.fingerprint.hex() if rep.signer and rep.signer.fingerprint else None
    signed_at = rep.signer.signing_time if rep.signer else None
    ev = C2paEvidence(
        state=rep.state,
        codes=codes,
        signer=signer,
        signer_fingerprint=fingerprint,
        signed_at=str(signed_at) if signed_at else None,
        data_hash_ok=not any(c.code.startswith("assertion.dataHash") for c in rep.codes if c.severity == "failure"),
    )
    shield_assertion = rep.shield
    asset_id = shield_assertion.asset_id if shield_assertion else None
    wm_key = shield_assertion.watermark_public_key if shield_assertion else None
    # A key from an invalid manifest is not evidence of anything.
    if rep.state == "invalid":
        wm_key = None
    return _Manifest(ev, asset_id, wm_key, rep.manifest_hash)


def _read_payload(rgb: np.ndarray) -> Any:
    from shield import watermark

    reading = watermark.read_payload(rgb)
    return reading.payload


def _watermark_evidence(rgb: np.ndarray, key: bytes | None, key_source: str | None, payload: Any, asset_id: bytes | None) -> tuple[WatermarkEvidence, Any]:
    from shield import watermark

    if key is None:
        present = payload is not None
        why = "no manifest and no ledger record name the publisher's watermark key"
        return WatermarkEvidence(present=present, status="unchecked" if present else "absent", explanation=why), None
    rep = watermark.verify(rgb, key, asset_id=asset_id)
    status = str(rep.status.value)
    regions = tuple(RegionBox(r.x, r.y, r.width, r.height) for r in rep.tampered_regions)
    ev = WatermarkEvidence(
        present=rep.present,
        status=status,
        intact_fraction=float(rep.intact_fraction),
        tampered_regions=regions,
        crop_offset=rep.crop_offset,
        key_source=key_source,
        explanation=rep.explanation,
    )
    return ev, rep


def _ledger_evidence(
    settings: Settings,
    asset_id: bytes | None,
    use_ledger: bool,
    rgb: np.ndarray,
    data: bytes,
    manifest: _Manifest,
    proof_path: Path | None,
) -> tuple[LedgerEvidence, Any, bytes | None]:
    if not use_ledger:
        return LedgerEvidence(reachable=False, explanation="skipped by --offline"), None, None
    if asset_id is None:
        return LedgerEvidence(reachable=False, explanation="no asset id to look up"), None, None
    from shield import imaging
    from shield.ledger import AnchorRequest, open_ledger, read_proof_sidecar

    try:
        ledger = open_ledger(settings, None, start_devnet=False)
        record = ledger.lookup(asset_id)
    except LedgerError as exc:
        return LedgerEvidence(reachable=False, explanation=str(exc)), None, None
    base = LedgerEvidence(reachable=True, chain_id=ledger.chain_id, contract=ledger.registry_address)
    if record is None:
        return base, None, None
    request = AnchorRequest(
        asset_id=asset_id,
        content_hash=imaging.pixel_hash(rgb),
        file_hash=hashlib.sha256(data).digest(),
        manifest_hash=manifest.manifest_hash or bytes(32),
    )
    proof = None
    if record.batch_root is not None:
        proof = read_proof_sidecar(proof_path) if proof_path is not None else ledger.proof_for(asset_id)
    all_match = ledger.check(record, request, proof)
    pixels = None if record.content_hash is None else record.content_hash == request.content_hash
    publisher = ledger.publisher(record.publisher)
    consistent = None
    if publisher is not None and manifest.evidence.signer_fingerprint:
        consistent = publisher.cert_fingerprint.hex() == manifest.evidence.signer_fingerprint and (
            manifest.watermark_key is None or publisher.watermark_key == manifest.watermark_key
        )
    ev = LedgerEvidence(
        reachable=True,
        found=True,
        chain_id=ledger.chain_id,
        contract=ledger.registry_address,
        tx=record.tx_hash,
        block=record.block,
        timestamp=record.timestamp,
        publisher=record.publisher,
        hashes_match=all_match if manifest.evidence.state != "absent" else pixels,
        pixels_match=all_match if manifest.evidence.state != "absent" else pixels,
        revoked=record.revoked,
        revocation_reason=record.revocation_reason,
        publisher_consistent=consistent,
        batch_root=record.batch_root.hex() if record.batch_root else None,
    )
    return ev, record, publisher.watermark_key if publisher is not None else None
