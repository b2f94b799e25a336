"""`shield verify`: gather the evidence, then let shield.report decide.

Evidence order: the C2PA manifest (if any) names the asset id and the publisher's
watermark key; without it, the keyless watermark payload names the asset id and the
fingerprint of the watermark key. Either way the registry lists the addresses that
registered a watermark key with that fingerprint; only those whose publisher proof
holds (they hold the watermark and C2PA private keys, shield.ledger.proof) are
considered, so an address that copied someone's public keys is never the publisher.
That publisher's own record then says whether these exact pixels, file and manifest were
anchored, when, and whether it was revoked. With the manifest stripped, trust comes from
the publisher's registered certificate checked against the verifier's trust anchors,
the same decision the manifest path takes from the C2PA signature.

A copy with neither manifest nor fragile watermark (re-posted: metadata stripped and
re-encoded or resized), or one that kept the manifest but whose bytes changed after
signing (the signature holds, the data hash does not: a platform that keeps C2PA
metadata but recompresses), takes the soft-binding route (issue 19): the robust mark
(shield.softbinding) names an asset id, else the copy's PDQ fingerprint is looked up in
the local index, else on the ledger (every record carries its PDQ value, covered by its
on-chain commitment); the named asset's recorded fingerprint (local index, else the
record's on chain) must lie within MATCH_THRESHOLD bits of the copy's (the mark's key is
public, so a copied mark alone proves nothing); then its record is looked up under every
publisher that anchored it and proves its keys. The best possible verdict is
``re-encoded-match``, the same from any home given the publisher's trust anchors; with
the manifest kept, ``re-encoded`` when the route leads to the asset the manifest names
and its publisher is the manifest's signer (shield.report.decide), else the manifest's
own failure stands.

The ledger is read through the light read-only client (shield.ledger.open_reader): no
web3 import, never a devnet started. A check that cannot run is reported with what to do
(shield.report.next_steps).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from shield.config import Settings
from shield.errors import ImageError, LedgerError
from shield.report import (
    C2paCode,
    Verdict,
    C2paEvidence,
    ImageEvidence,
    LedgerEvidence,
    RegionBox,
    SoftBindingEvidence,
    VerifyReport,
    WatermarkEvidence,
    LedgerProblem,
    decide,
    next_steps,
    summary_for,
)
from shield.watermark import PayloadReading, WatermarkReport

if TYPE_CHECKING:
    from shield.ledger import LedgerRecord, MerkleProof, PublisherClaim, RegistryReads as Ledger

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


@dataclass(frozen=True)
class _LedgerFinding:
    """What the ledger step hands on: the evidence and the proven publisher's key."""

    evidence: LedgerEvidence
    watermark_key: bytes | None = None


def verify_file(
    path: Path,
    settings: Settings,
    *,
    trust_anchors: bytes | None = None,
    use_ledger: bool = True,
    tamper_map: Path | None = None,
    proof_path: Path | None = None,
    ledger: Ledger | None = None,
) -> VerifyReport:
    """Check one photo and return the full report (never raises for a bad photo's content).

    Args:
        trust_anchors: PEM of the CAs to trust; None uses the local keystore's anchors
            when there are any (never "trust everything").
        use_ledger: False skips the ledger lookup (reported as skipped).
        tamper_map: write a PNG showing changed blocks here.
        proof_path: Merkle proof sidecar; default ``<photo>.proof.json`` when present.
        ledger: an open (read-only) ledger to look records up in, kept open for the
            caller (batch verification, fuzzing); None opens the configured one.

    Raises:
        ImageError: the file cannot be read as an image at all.
    """
    from shield import imaging
    from shield.imaging.rendering import rendering_metadata

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror}", fix="check the path") from exc
    if size > MAX_FILE_BYTES:
        raise ImageError(f"{path}: {size} bytes exceeds the {MAX_FILE_BYTES} byte limit for verification")
    data = path.read_bytes()
    img = imaging.load_image_bytes(data, name=str(path), max_pixels=settings.max_pixels)
    anchors = trust_anchors if trust_anchors is not None else _local_anchors(settings)
    rendering = rendering_metadata(data, img.format)
    image_ev = ImageEvidence(str(path), img.width, img.height, img.format, tuple(img.conversions),
                             max(img.frames, rendering.frames), rendering.items)

    manifest = _read_c2pa(data, img.format, anchors)
    payload = _read_payload(img.rgb, img.format)
    if payload.payload is None and (manifest.evidence.state == "absent" or manifest.evidence.bytes_changed):
        return _verify_soft(img.rgb, data, settings, image_ev, manifest.evidence, use_ledger, anchors, ledger)
    asset_id = manifest.asset_id or (payload.payload.asset_id if payload.payload is not None else None)
    if proof_path is None:
        from shield.ledger import sidecar_path

        default = sidecar_path(path)
        proof_path = default if default.is_file() else None

    finding = _ledger_evidence(settings, asset_id, use_ledger, img.rgb, data, manifest, payload, proof_path, anchors,
                               ledger)
    key = manifest.watermark_key or finding.watermark_key
    key_source = "manifest" if manifest.watermark_key else ("ledger publisher registry" if finding.watermark_key else None)
    wm_ev, wm_report = _watermark_evidence(img.rgb, key, key_source, payload, asset_id)
    if tamper_map is not None and wm_report is not None:
        from shield import watermark

        imaging.save_image_atomic(imaging.encode_png(watermark.render_tamper_map(img.rgb, wm_report)), tamper_map, inputs=[path], overwrite=True)

    verdict, reasons, skipped = decide(manifest.evidence, wm_ev, finding.evidence, image_ev)
    return VerifyReport(
        verdict=verdict,
        asset_id=asset_id.hex() if asset_id else None,
        summary=summary_for(verdict),
        c2pa=manifest.evidence,
        watermark=wm_ev,
        ledger=finding.evidence,
        reasons=reasons,
        skipped=skipped,
        image=image_ev,
        next_steps=next_steps(verdict, manifest.evidence, finding.evidence),
    )


def _local_anchors(settings: Settings) -> bytes | None:
    from shield.provenance import local_trust_anchors

    return local_trust_anchors(settings)


def _read_c2pa(data: bytes, fmt: str, anchors: bytes | None) -> _Manifest:
    from shield.provenance import read_manifest
    from shield.provenance.certs import is_development_name

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
        development=is_development_name(signer),
        asset_id=rep.shield.asset_id.hex() if rep.shield else None,
    )
    shield_assertion = rep.shield
    asset_id = shield_assertion.asset_id if shield_assertion else None
    wm_key = shield_assertion.watermark_public_key if shield_assertion else None
    # A key from an invalid manifest is not evidence of anything.
    if rep.state == "invalid":
        wm_key = None
    elif shield_assertion is not None:  # where to look the record up, for next_steps
        target = shield_assertion.ledger
        ev = dataclasses.replace(ev, ledger_chain_id=target.chain_id, ledger_registry=target.registry,
                                 ledger_publisher=target.publisher)
    return _Manifest(ev, asset_id, wm_key, rep.manifest_hash)


def _read_payload(rgb: np.ndarray, fmt: str) -> PayloadReading:
    """The keyless payload of the fragile watermark; none is looked for in a JPEG.

    The watermark lives in the pixels' least significant bits, which JPEG's lossy
    coding never keeps, so a JPEG reads as "no payload" without the search for a
    cropped grid (about 0.4 s at 1 MP). Skipping it can only weaken a verdict: the
    copy then takes the soft-binding route, whose best verdict is re-encoded-match.
    """
    if fmt == "JPEG":
        return PayloadReading(None, 0, 0, 0, 0, 0, None, None, "a JPEG carries no fragile watermark (lossy coding)")
    from shield import watermark

    return watermark.read_payload(rgb)


def _watermark_evidence(rgb: np.ndarray, key: bytes | None, key_source: str | None, payload: PayloadReading,
                        asset_id: bytes | None) -> tuple[WatermarkEvidence, WatermarkReport | None]:
    from shield import watermark

    if key is None:
        present = payload.payload is not None
        why = "no manifest and no proven ledger publisher name the watermark key"
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
    payload: PayloadReading,
    proof_path: Path | None,
    anchors: bytes | None,
    given: Ledger | None,
) -> _LedgerFinding:
    if not use_ledger:
        return _LedgerFinding(_OFFLINE)
    if asset_id is None:
        return _LedgerFinding(_NO_ASSET_ID)
    from shield import imaging
    from shield.ledger import AnchorRequest, read_proof_sidecar, watermark_fingerprint

    fp = watermark_fingerprint(manifest.watermark_key) if manifest.watermark_key else payload.key_fingerprint
    if fp is None:
        return _LedgerFinding(LedgerEvidence(reachable=False, problem=LedgerProblem.NO_KEY_FINGERPRINT,
                                             explanation="no watermark key fingerprint to find the publisher by"))
    ledger: Ledger | None = None
    try:
        with _opened(settings, given) as ledger:
            merkle = read_proof_sidecar(proof_path) if proof_path is not None else None
            claims, truncated = ledger.claims(fp)
            claims = [c for c in claims if manifest.watermark_key is None or c.info.watermark_key == manifest.watermark_key]
            found, ignored = _records(ledger, asset_id, claims, merkle)
    except LedgerError as exc:
        return _LedgerFinding(_ledger_failure(exc, settings, ledger))
    if not found:
        if truncated:
            return _LedgerFinding(LedgerEvidence(
                reachable=False, chain_id=ledger.chain_id, contract=ledger.registry_address, ignored_claims=ignored,
                problem=LedgerProblem.TOO_MANY_CLAIMS,
                explanation=f"more than {len(claims)} addresses claim this watermark key; not all were read"))
        return _LedgerFinding(_no_record(ledger, ignored))
    claim, record, proof = found[0]
    # The manifest's signer is compared with the publisher's certificate here, before the
    # batch-member return below: a batch member verified without its Merkle proof must not
    # skip that comparison.
    ev = _record_evidence(ledger, claim, record, anchors, ignored, manifest.evidence.signer_fingerprint)
    if record.batch_root is not None and (proof is None or proof.root != record.batch_root):
        # A batch member found without its Merkle proof: its hashes are not known here.
        return _LedgerFinding(ev, claim.info.watermark_key)
    request = AnchorRequest(
        asset_id=asset_id,
        content_hash=imaging.pixel_hash(rgb),
        file_hash=hashlib.sha256(data).digest(),
        manifest_hash=manifest.manifest_hash or bytes(32),
        # The commitment covers the PDQ value too: the same pixels give the same value,
        # needed only when the node returned no anchoring event to read it from.
        pdq=_pdq(rgb) if record.batch_root is None and record.content_hash is None else None,
    )
    # A commitment (or Merkle leaf) that matches proves each hash it covers; otherwise
    # each hash is compared with the anchoring event's or the proof's, themselves checked
    # against the commitment by the ledger (None when the node returned none).
    all_match = ledger.check(record, request, proof)

    def same(known: bytes | None, actual: bytes) -> bool | None:
        return True if all_match else (None if known is None else known == actual)

    pixels = same(record.content_hash, request.content_hash)
    has_manifest = manifest.evidence.state != "absent"
    ev = dataclasses.replace(
        ev,
        # Stripped: the file and manifest hashes cannot match; the pixel hash is the match.
        hashes_match=all_match if has_manifest else pixels,
        pixels_match=pixels,
        file_match=same(record.file_hash, request.file_hash),
        manifest_match=same(record.manifest_hash, request.manifest_hash),
    )
    return _LedgerFinding(ev, claim.info.watermark_key)


def _pdq(rgb: np.ndarray) -> bytes | None:
    from shield import fingerprint

    try:
        return fingerprint.compute(rgb).value
    except fingerprint.FingerprintInputError:
        return None


#: The ledger evidence of a lookup that was not made.
_OFFLINE = LedgerEvidence(reachable=False, problem=LedgerProblem.OFFLINE, explanation="skipped by --offline")
_NO_ASSET_ID = LedgerEvidence(reachable=False, problem=LedgerProblem.NO_ASSET_ID, explanation="no asset id to look up")


@contextmanager
def _opened(settings: Settings, given: Ledger | None) -> Iterator[Ledger]:
    """``given``, else the configured chain's light read-only client (closed on exit; no
    web3 import); never starts the devnet: verifying must not change the machine."""
    if given is not None:
        yield given
        return
    from shield.ledger import open_reader

    ledger = open_reader(settings)
    try:
        yield ledger
    finally:
        ledger.close()


def _records(ledger: Ledger, asset_id: bytes, claims: list[PublisherClaim], proof: MerkleProof | None
             ) -> tuple[list[tuple[PublisherClaim, LedgerRecord, MerkleProof | None]], tuple[str, ...]]:
    """The records of ``asset_id`` under each claimant whose proof holds, a revoked one
    first (a publisher holding its key under two addresses: a revoked record anywhere
    wins), and the addresses ignored because their proof does not hold."""
    ignored = tuple(c.info.address for c in claims if not c.check.valid)
    proof = proof or ledger.proof_for(asset_id)
    found = [(c, r, proof) for c in claims if c.check.valid
             if (r := ledger.lookup(asset_id, proof, publisher=c.info.address)) is not None]
    return sorted(found, key=lambda f: not f[1].revoked), ignored


def _record_evidence(ledger: Ledger, claim: PublisherClaim, record: LedgerRecord, anchors: bytes | None,
                     ignored: tuple[str, ...], signer: str | None = None) -> LedgerEvidence:
    """A found record and its publisher, as evidence: the one place both routes build it
    (hash comparisons are the manifest route's to add). ``signer``: the certificate
    fingerprint (hex) of a manifest the copy carries, compared with the publisher's (the
    only place the two are compared; None or empty: no signer to compare)."""
    from shield.ledger.proof import chains_to
    from shield.provenance.certs import is_development_name

    cert = claim.check.certificate
    return LedgerEvidence(
        reachable=True,
        found=True,
        chain_id=ledger.chain_id,
        contract=ledger.registry_address,
        tx=record.tx_hash,
        block=record.block,
        timestamp=record.timestamp,
        publisher=record.publisher,
        revoked=record.revoked,
        revocation_reason=record.revocation_reason,
        batch_root=record.batch_root.hex() if record.batch_root else None,
        publisher_proven=True,
        publisher_trusted=cert is not None and chains_to(cert, anchors),
        publisher_signer=claim.check.subject,
        publisher_development=is_development_name(claim.check.subject),
        ignored_claims=ignored,
        publisher_consistent=None if not signer else claim.info.cert_fingerprint.hex() == signer,
    )


def _no_record(ledger: Ledger, ignored: tuple[str, ...]) -> LedgerEvidence:
    where = f"chain {ledger.chain_id}, registry {ledger.registry_address}"
    return LedgerEvidence(reachable=True, chain_id=ledger.chain_id, contract=ledger.registry_address,
                          ignored_claims=ignored, problem=LedgerProblem.NO_RECORD, explanation=f"no record on {where}")


def _ledger_failure(exc: LedgerError, settings: Settings, ledger: Ledger | None) -> LedgerEvidence:
    """Why the ledger could not be read, in one word (``problem``) and what to do (``fix``)."""
    from shield.ledger.errors import ChainIdMismatchError, ChainUnavailableError, DeploymentMissingError

    chain = settings.chain
    chain_id = ledger.chain_id if ledger is not None else chain.chain_id
    registry = ledger.registry_address if ledger is not None else chain.registry
    if registry is None and chain_id is not None:
        from shield.ledger import read_deployment

        try:
            dep = read_deployment(settings, chain_id)
        except LedgerError:
            dep = None
        registry = dep.address if dep is not None else None
    cause = exc.__cause__ if isinstance(exc.__cause__, LedgerError) else exc
    problem, fix = LedgerProblem.LEDGER_ERROR, exc.fix
    if isinstance(exc, ChainUnavailableError) or isinstance(cause, ChainUnavailableError):
        problem = LedgerProblem.NODE_UNREACHABLE
        if chain.embedded:
            fix = ("start the local devnet with `shield chain up`, then verify again (a remote node: set SHIELD_RPC_URL,"
                   " or rpc_url in [chain] of shield.toml)")
        else:
            fix = (f"check that the node at {chain.rpc_url} is up and reachable, and that SHIELD_RPC_URL"
                   " (rpc_url in [chain] of shield.toml) names the right node")
    elif isinstance(exc, ChainIdMismatchError):
        problem = LedgerProblem.CHAIN_ID_MISMATCH
    elif isinstance(exc, DeploymentMissingError):
        problem = LedgerProblem.REGISTRY_NOT_ON_CHAIN
        fix = (f"the registry {registry or ''} on chain {chain_id} is missing or runs another version of the contract:"
               " set SHIELD_REGISTRY (registry in [chain] of shield.toml) to the registry the publisher anchors in,"
               " with a shield version that reads it")
    elif ledger is not None and ledger.registry_address is None:
        problem = LedgerProblem.NO_REGISTRY
        fix = (f"set SHIELD_REGISTRY (registry in [chain] of shield.toml) to the registry address on chain {chain_id}"
               " that the publisher anchors in")
    return LedgerEvidence(reachable=False, chain_id=chain_id, contract=registry, problem=problem, fix=fix,
                          explanation=str(exc))


# --------------------------------------------------------------- soft-binding route


@dataclass(frozen=True)
class _Candidate:
    asset_id: bytes
    method: str
    distance: int | None


def _verify_soft(rgb: np.ndarray, data: bytes, settings: Settings, image_ev: ImageEvidence, c2pa_ev: C2paEvidence,
                 use_ledger: bool, anchors: bytes | None, given: Ledger | None) -> VerifyReport:
    """The report of a copy without fragile watermark, and without manifest or with one
    whose bytes changed after signing (module docstring)."""
    soft, copy_pdq = _soft_binding(rgb, settings)
    signer = c2pa_ev.signer_fingerprint
    finding = _OFFLINE if not use_ledger else _NO_ASSET_ID
    if soft.found and soft.asset_id is not None and soft.matched is not False and use_ledger:
        finding, record = _soft_ledger(settings, bytes.fromhex(soft.asset_id), anchors, given, signer)
        if soft.distance is None and copy_pdq is not None and record is not None:
            soft = _on_chain_distance(soft, copy_pdq, record)
    elif not soft.found and copy_pdq is not None and use_ledger:
        soft, finding = _fingerprint_route(soft, copy_pdq, settings, anchors, given, signer)
    elif not soft.found and copy_pdq is not None:
        soft = dataclasses.replace(soft, explanation=soft.explanation + "; --offline: the ledger was not searched")
    wm_ev = WatermarkEvidence(present=False, status="absent",
                              explanation="no fragile watermark (destroyed by re-encoding, or never embedded)")
    shown = dataclasses.replace(image_ev, rendering_metadata=tuple(
        item for item in image_ev.rendering_metadata if not (item in _ICC_ITEMS and _renders_as_srgb(data, rgb))))
    verdict, reasons, skipped = decide(c2pa_ev, wm_ev, finding, shown, soft)
    return VerifyReport(
        verdict=verdict,
        asset_id=c2pa_ev.asset_id or (soft.asset_id if verdict is not Verdict.NO_PROVENANCE else None),
        summary=summary_for(verdict, soft, finding),
        c2pa=c2pa_ev,
        watermark=wm_ev,
        ledger=finding,
        reasons=reasons,
        skipped=skipped,
        image=image_ev,
        soft_binding=soft,
        next_steps=next_steps(verdict, c2pa_ev, finding, soft),
    )


#: Rendering-metadata items that are ICC profiles (shield.imaging.rendering names).
_ICC_ITEMS = frozenset({"JPEG APP2 ICC_PROFILE", "WebP ICCP", "iCCP"})
#: Largest change, in 8-bit levels, that rendering through a profile may make for the
#: profile to count as sRGB (social networks attach an sRGB profile to re-encoded JPEGs).
_SRGB_TOLERANCE = 2


def _renders_as_srgb(data: bytes, rgb: np.ndarray) -> bool:
    """Whether the file's ICC profile shows ``rgb`` as sRGB would (within the tolerance).

    The soft-binding route measures the visual match on the stored pixels; a profile
    that changes them on screen (swapped primaries, another gamma) must not be ignored.
    """
    import io

    from PIL import Image, ImageCms

    try:
        with Image.open(io.BytesIO(data)) as im:
            profile = im.info.get("icc_profile")
            if not profile:
                return False
            src = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            shown = ImageCms.profileToProfile(Image.fromarray(rgb), src, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (OSError, ValueError, ImageCms.PyCMSError):
        return False  # an unreadable profile is not known to be harmless
    if shown is None:
        return False
    diff = np.abs(np.asarray(shown, dtype=np.int16) - rgb.astype(np.int16))
    return int(diff.max()) <= _SRGB_TOLERANCE


def _soft_binding(rgb: np.ndarray, settings: Settings) -> tuple[SoftBindingEvidence, bytes | None]:
    """Read the robust mark, then fall back to a fingerprint lookup in the local index;
    also the copy's PDQ value (None when the copy is too small for one).

    The first candidate whose recorded fingerprint is within the threshold wins; a mark
    whose asset has a recorded fingerprint far from the copy is reported as not matching
    (a copied mark); one without a recorded fingerprint here is reported with distance
    None (its record's fingerprint on the ledger fills it in: _on_chain_distance).
    """
    from shield import fingerprint, softbinding
    from shield.ledger.index import read_fingerprints

    threshold = fingerprint.MATCH_THRESHOLD
    try:
        copy_fp: fingerprint.Fingerprint | None = fingerprint.compute(rgb)
    except fingerprint.FingerprintInputError:
        copy_fp = None
    copy_pdq = copy_fp.value if copy_fp is not None else None
    recorded = {aid: fingerprint.Fingerprint(pdq, quality) for aid, pdq, quality in
                read_fingerprints(settings.home / "ledger.sqlite")}

    def distance(asset_id: bytes) -> int | None:
        known = recorded.get(asset_id)
        return None if known is None or copy_fp is None else fingerprint.hamming(copy_fp, known)

    candidates: list[_Candidate] = []
    try:
        mark = softbinding.extract(rgb, softbinding.DEFAULT_KEY)
    except softbinding.SoftBindingInputError:
        mark = None
    if mark is not None and mark.found and mark.asset_id is not None:
        candidates.append(_Candidate(mark.asset_id, softbinding.ALG, distance(mark.asset_id)))
    if copy_fp is not None and recorded:
        index = fingerprint.MemoryIndex()
        for aid, fp in recorded.items():
            index.add(aid, fp)
        candidates += [_Candidate(m.asset_id, fingerprint.NAME, m.distance) for m in index.lookup(copy_fp, threshold)]
    if not candidates:
        why = "no robust mark read" + ("" if copy_fp is None else
                                        f", and no fingerprint within {threshold} bits among {len(recorded)} in the local index")
        return SoftBindingEvidence(explanation=why, threshold=threshold), copy_pdq
    best = next((c for c in candidates if c.distance is not None and c.distance <= threshold), candidates[0])
    note = "" if best.distance is not None else (
        "the recorded fingerprint of this asset is not in the local index" if copy_fp is not None
        else "this copy is too small for a fingerprint")
    return SoftBindingEvidence(True, best.asset_id.hex(), best.method, best.distance, threshold, note), copy_pdq


def _on_chain_distance(soft: SoftBindingEvidence, copy_pdq: bytes, record: LedgerRecord) -> SoftBindingEvidence:
    """The visual match against the fingerprint the record carries on the ledger (read
    from its anchoring event and covered by its on-chain commitment)."""
    from shield.fingerprint import hamming

    if record.pdq is None:
        return dataclasses.replace(soft, explanation=(
            "the record carries no fingerprint (anchored without one) and the local index has none"))
    return dataclasses.replace(soft, distance=hamming(copy_pdq, record.pdq),
                               explanation="recorded fingerprint read from the ledger record (covered by its commitment)")


def _soft_ledger(settings: Settings, asset_id: bytes, anchors: bytes | None, given: Ledger | None,
                 signer: str | None) -> tuple[LedgerEvidence, LedgerRecord | None]:
    """The record of ``asset_id`` under a publisher that anchored it and proves its keys."""
    ledger: Ledger | None = None
    try:
        with _opened(settings, given) as ledger:
            claims = [c for c in (ledger.claim(a) for a in ledger.publishers_of(asset_id)) if c is not None]
            found, ignored = _records(ledger, asset_id, claims, None)
    except LedgerError as exc:
        return _ledger_failure(exc, settings, ledger), None
    if not found:
        return _no_record(ledger, ignored), None
    claim, record, _ = found[0]
    return _record_evidence(ledger, claim, record, anchors, ignored, signer), record


def _fingerprint_route(soft: SoftBindingEvidence, copy_pdq: bytes, settings: Settings, anchors: bytes | None,
                       given: Ledger | None, signer: str | None) -> tuple[SoftBindingEvidence, LedgerEvidence]:
    """No mark and nothing near in the local index: search the ledger's records by the
    copy's fingerprint. Only records of publishers that prove their keys count; among
    them a publisher in the trust anchors comes first (anyone can anchor a fingerprint
    near a published photo's under their own address), then the nearest."""
    from shield.ledger.proof import chains_to

    ledger: Ledger | None = None
    try:
        with _opened(settings, given) as ledger:
            hits = ledger.find_by_fingerprint(copy_pdq, soft.threshold)
            ranked, ignored = [], []
            for hit in hits:
                claim = ledger.claim(hit.record.publisher)
                if claim is None or not claim.check.valid:
                    ignored.append(hit.record.publisher)
                    continue
                cert = claim.check.certificate
                trusted = cert is not None and chains_to(cert, anchors)
                ranked.append((not trusted, hit.distance, not hit.record.revoked, hit, claim))
    except LedgerError as exc:
        failure = _ledger_failure(exc, settings, ledger)
        return dataclasses.replace(soft, explanation=f"{soft.explanation}; the ledger could not be searched by "
                                                     f"fingerprint ({failure.explanation})"), failure
    if not ranked:
        where = f"chain {ledger.chain_id}, registry {ledger.registry_address}"
        return (dataclasses.replace(soft, explanation=f"{soft.explanation}, nor among the records on {where}"),
                _no_record(ledger, tuple(dict.fromkeys(ignored))))
    *_, hit, claim = min(ranked, key=lambda r: r[:3])
    found = SoftBindingEvidence(True, hit.record.asset_id.hex(), "pdq", hit.distance, soft.threshold,
                                "found on the ledger by its fingerprint (covered by the record's commitment)")
    return found, _record_evidence(ledger, claim, hit.record, anchors, tuple(dict.fromkeys(ignored)), signer)
