"""Verdict logic and rendering for `shield verify`.

The verdict is a pure function of the evidence gathered by the pipeline (C2PA reading,
watermark check, ledger lookup), so it can be tested without files, keys or a chain.
Exit codes follow the verdict table of README.md ("Verdicts"): 0 authentic,
1 modified/re-encoded/re-encoded-match/invalid, 2 no provenance, 3 could not check.

So is what the user can do about a check that could not run (:func:`next_steps`: start
the devnet, point at the photo's chain and registry, pass the publisher's trust anchors),
built from the values the photo and the ledger named.

Identifiers in the report: asset ids, batch roots and certificate fingerprints are lower-
case hex without ``0x``, in the text and the JSON alike; Ethereum addresses, transaction
hashes and the registry address keep the ``0x`` form Ethereum tools print.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "Verdict",
    "LedgerProblem",
    "C2paEvidence",
    "ImageEvidence",
    "WatermarkEvidence",
    "LedgerEvidence",
    "RegionBox",
    "SoftBindingEvidence",
    "VerifyReport",
    "decide",
    "next_steps",
    "render_text",
]


class Verdict(str, enum.Enum):
    AUTHENTIC = "authentic"
    AUTHENTIC_STRIPPED = "authentic-stripped"
    MODIFIED = "modified"
    REENCODED = "re-encoded"
    REENCODED_MATCH = "re-encoded-match"
    INVALID = "invalid"
    NO_PROVENANCE = "no-provenance"
    UNCHECKED = "unchecked"

    @property
    def exit_code(self) -> int:
        return {
            Verdict.AUTHENTIC: 0,
            Verdict.AUTHENTIC_STRIPPED: 0,
            Verdict.MODIFIED: 1,
            Verdict.REENCODED: 1,
            Verdict.REENCODED_MATCH: 1,
            Verdict.INVALID: 1,
            Verdict.NO_PROVENANCE: 2,
            Verdict.UNCHECKED: 3,
        }[self]


class LedgerProblem(str, enum.Enum):
    """Why the ledger gave no record (``LedgerEvidence.problem``, machine-readable)."""

    OFFLINE = "offline"  # --offline
    NO_ASSET_ID = "no-asset-id"  # nothing in the photo names a record
    NO_KEY_FINGERPRINT = "no-key-fingerprint"  # no watermark key to find the publisher by
    NODE_UNREACHABLE = "node-unreachable"  # the Ethereum node does not answer
    CHAIN_ID_MISMATCH = "chain-id-mismatch"  # the node serves another chain than configured
    NO_REGISTRY = "no-registry"  # no registry address is configured for the chain
    REGISTRY_NOT_ON_CHAIN = "registry-not-on-chain"  # the address holds no (or other) registry code
    LEDGER_ERROR = "ledger-error"  # any other refusal of the node
    NO_RECORD = "no-record"  # reachable, but no proven publisher has a record
    TOO_MANY_CLAIMS = "too-many-claims"  # more claimants of the key than are read


@dataclass(frozen=True)
class RegionBox:
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class C2paCode:
    code: str
    severity: str
    explanation: str


@dataclass(frozen=True)
class C2paEvidence:
    """What the C2PA reader found. state: trusted | valid | invalid | absent.

    ``development``: the signing certificate says it is a development key (its password
    is stored next to it, so anyone with the folder can sign as this publisher).
    ``ledger_chain_id`` / ``ledger_registry`` / ``ledger_publisher``: where the signed
    manifest says the photo is anchored (None without a manifest that says so).
    ``asset_id``: the asset id shield's assertion in the manifest names (hex, no ``0x``),
    read whether or not the manifest validates; None without one.
    """

    state: str
    codes: tuple[C2paCode, ...] = ()
    signer: str | None = None
    signer_fingerprint: str | None = None
    signed_at: str | None = None
    data_hash_ok: bool = True
    development: bool = False
    ledger_chain_id: int | None = None
    ledger_registry: str | None = None
    ledger_publisher: str | None = None
    asset_id: str | None = None

    @property
    def bytes_changed(self) -> bool:
        """The publisher's signature over the manifest holds, but the image bytes differ
        from the signed ones (the data hash is the only check that failed): the picture
        was re-encoded or edited after signing, or the manifest was copied onto another.
        """
        failures = {c.code for c in self.codes if c.severity == "failure"} - {_UNTRUSTED}
        signed = any(c.code == _SIGNATURE_VALID and c.severity == "info" for c in self.codes)
        return self.state == "invalid" and signed and failures == {_DATA_HASH_MISMATCH}


#: C2PA status codes (C2PA 2.x "Validation") that ``C2paEvidence.bytes_changed`` reads.
_SIGNATURE_VALID = "claimSignature.validated"
_DATA_HASH_MISMATCH = "assertion.dataHash.mismatch"
_UNTRUSTED = "signingCredential.untrusted"


@dataclass(frozen=True)
class ImageEvidence:
    """The file itself: path, size, format, decoding notes, and what besides the first
    frame's pixel values changes what a viewer shows (shield.imaging.rendering)."""

    path: str
    width: int
    height: int
    format: str
    conversions: tuple[str, ...] = ()
    frames: int = 1
    rendering_metadata: tuple[str, ...] = ()


@dataclass(frozen=True)
class WatermarkEvidence:
    """Fragile watermark result. status: intact | tampered | re-encoded | cropped | absent | wrong-key | unchecked."""

    present: bool
    status: str
    intact_fraction: float = 0.0
    tampered_regions: tuple[RegionBox, ...] = ()
    crop_offset: tuple[int, int] | None = None
    key_source: str | None = None
    explanation: str = ""


@dataclass(frozen=True)
class LedgerEvidence:
    """Ledger lookup. reachable False means the check was skipped.

    Hash comparisons, each None only when it could not be made: ``pixels_match`` /
    ``file_match`` / ``manifest_match`` each hash on its own, from the record's commitment
    (a commitment that matches proves every hash it covers) or, when it does not, from the
    hashes of the anchoring event or Merkle proof (themselves checked against it);
    ``hashes_match`` every hash this copy can still carry: all three with a manifest, the
    pixel hash alone when the metadata was stripped (file and manifest then differ: False).
    None for a re-encoded copy, which cannot carry any of them.

    ``problem`` says in one word why there is no record (:class:`LedgerProblem`), and
    ``fix`` what to do about it; ``explanation`` is the detail.

    Publisher: ``publisher_proven`` the registration proof holds (the publisher holds the
    watermark and C2PA keys it claims); ``publisher_trusted`` its certificate chains to
    the verifier's trust anchors; ``publisher_signer`` the certificate's subject name;
    ``publisher_development`` it is a development certificate. ``ignored_claims`` lists
    addresses that claim the watermark key without a proof that holds.
    """

    reachable: bool
    found: bool = False
    chain_id: int | None = None
    contract: str | None = None
    tx: str | None = None
    block: int | None = None
    timestamp: datetime | None = None
    publisher: str | None = None
    hashes_match: bool | None = None
    pixels_match: bool | None = None
    file_match: bool | None = None
    manifest_match: bool | None = None
    revoked: bool = False
    revocation_reason: str | None = None
    publisher_consistent: bool | None = None
    batch_root: str | None = None
    explanation: str = ""
    publisher_proven: bool | None = None
    publisher_trusted: bool | None = None
    publisher_signer: str | None = None
    publisher_development: bool = False
    ignored_claims: tuple[str, ...] = ()
    problem: LedgerProblem | None = None
    fix: str = ""


@dataclass(frozen=True)
class SoftBindingEvidence:
    """The route from a copy without manifest or fragile watermark back to a record.

    Attributes:
        found: a route named an asset id (the robust mark was read, or the copy's PDQ
            fingerprint is within the threshold of a recorded one).
        asset_id: that asset id, hex (no ``0x``), or None.
        method: ``shield.sstile.v1`` (the robust mark) or ``pdq`` (fingerprint lookup).
        distance: Hamming distance, 0..256 bits, between the copy's PDQ fingerprint and
            the one recorded for the asset; None when no recorded fingerprint was found.
        threshold: the largest distance accepted as the same picture (MATCH_THRESHOLD).
        explanation: why nothing was found, or where the recorded fingerprint came from.
    """

    found: bool = False
    asset_id: str | None = None
    method: str | None = None
    distance: int | None = None
    threshold: int = 31
    explanation: str = ""

    @property
    def matched(self) -> bool | None:
        """The copy looks like the recorded photo; None when it could not be compared."""
        return None if self.distance is None else self.distance <= self.threshold


@dataclass(frozen=True)
class VerifyReport:
    """Verdict, evidence and ``next_steps``: what the user can do to complete the checks
    that could not run (exact flags and settings, with the values found; see next_steps)."""

    verdict: Verdict
    asset_id: str | None
    summary: str
    c2pa: C2paEvidence
    watermark: WatermarkEvidence
    ledger: LedgerEvidence
    reasons: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    image: ImageEvidence | None = None
    soft_binding: SoftBindingEvidence = field(default_factory=SoftBindingEvidence)
    next_steps: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code


def decide(c2pa: C2paEvidence, wm: WatermarkEvidence, ledger: LedgerEvidence,
           image: ImageEvidence | None = None,
           soft: SoftBindingEvidence | None = None) -> tuple[Verdict, tuple[str, ...], tuple[str, ...]]:
    """Combine the checks into one verdict, with reasons and skipped checks.

    Precedence, strongest evidence first: local edits found by the watermark; then
    whole-image re-encoding; then content a viewer shows that the watermark does not
    bind (extra frames, colour metadata); then a broken manifest or hash mismatch; then
    a publisher that cannot prove its keys or is not trusted; then missing evidence;
    only when every available check passes is the photo authentic.

    With a manifest and a found record, the manifest's signer must have been compared with
    the record's publisher and found the same (``ledger.publisher_consistent is True``)
    for ``authentic`` or ``re-encoded``: False is ``invalid``; None (the signer's
    certificate could not be recovered from the file, e.g. a JPEG or TIFF) is ``unchecked``,
    or ``invalid`` for a kept manifest whose bytes changed.

    Without manifest and fragile watermark, the soft binding (``soft``: robust mark or
    fingerprint, see :func:`_decide_soft`) can at best give ``re-encoded-match``. With a
    kept manifest whose bytes changed and no fragile watermark, it can give ``re-encoded``
    (:func:`_decide_kept_manifest`); where it cannot, the manifest's failure decides.
    """
    reasons: list[str] = []
    skipped: list[str] = []
    has_manifest = c2pa.state != "absent"
    if not has_manifest and not wm.present:
        return _decide_soft(soft or SoftBindingEvidence(), ledger, image)
    kept = _decide_kept_manifest(c2pa, wm, ledger, image, soft)
    if kept is not None and kept[0] is Verdict.REENCODED:
        return kept

    if wm.status == "tampered":
        n = len(wm.tampered_regions)
        reasons.append(f"watermark: {n} region{'s' if n != 1 else ''} changed since publication ({wm.intact_fraction:.1%} of blocks intact)")
        return Verdict.MODIFIED, tuple(reasons), ()
    if wm.status == "cropped":
        reasons.append("watermark: the image was cropped" + (f" (offset {wm.crop_offset[0]},{wm.crop_offset[1]})" if wm.crop_offset else ""))
        return Verdict.MODIFIED, tuple(reasons), ()
    if wm.status == "re-encoded":
        reasons.append("watermark: re-encoded, fragile watermark destroyed (the whole image was re-compressed or resized)")
        return Verdict.REENCODED, tuple(reasons), ()
    if wm.status == "wrong-key":
        reasons.append("watermark: blocks do not verify under the publisher's key named by the manifest/ledger")
        return Verdict.INVALID, tuple(reasons), ()
    rendering = _rendering_reasons(image)
    if rendering:
        return Verdict.MODIFIED, tuple(rendering), ()

    if has_manifest and c2pa.state == "invalid":
        # The SDK reports one failure per check (two data hashes fail alike): one line each.
        failures = dict.fromkeys(c.explanation for c in c2pa.codes if c.severity == "failure") or {
            "manifest failed validation": None}
        reasons.extend(f"C2PA: {f}" for f in failures)
        if kept is not None:  # why the soft binding does not make it a re-encoded copy
            reasons.extend(kept[1])
        return Verdict.INVALID, tuple(reasons), ()
    if ledger.reachable and ledger.found:
        mismatch = _ledger_mismatch(ledger, has_manifest)
        if mismatch is not None:
            return mismatch[0], (mismatch[1],), ()
        if has_manifest and ledger.publisher_consistent is not True:
            # Fail closed: a manifest is only the publisher's when its signer's certificate was
            # compared with the record's publisher's and found the same. Another certificate the
            # reader trusts could have signed it (a forgery re-signed over the published pixels).
            reasons.append(_SIGNER_NOT_COMPARED)
            skipped.append("signer vs publisher (the certificate that signed the manifest could not be read from"
                           + (f" this {image.format} file" if image is not None and image.format else " this file")
                           + ", so it was not compared with the record's publisher's)")

    if wm.status == "absent" and has_manifest:
        reasons.append("watermark: absent although the manifest declares one")
        return Verdict.MODIFIED, tuple(reasons), ()
    if wm.status == "unchecked":
        skipped.append("watermark (no publisher key available: " + (wm.explanation or "unknown") + ")")
    if has_manifest and c2pa.state == "valid":
        reasons.append(f"C2PA: valid signature by {c2pa.signer or 'an unknown signer'}, whose certificate is not in your trust anchors")
        return Verdict.UNCHECKED, tuple(reasons), tuple(skipped + ["signer trust (pass --trust with the publisher's trust anchors)"])
    if not ledger.reachable:
        skipped.append("ledger (" + (ledger.explanation or "unreachable") + ")")
    elif not ledger.found:
        reasons.append("ledger: no record for this asset id by a publisher that proves the watermark key"
                       " (anchor may still be queued)")
        reasons.extend(f"ledger: ignored {a}, which claims the watermark key without proof" for a in ledger.ignored_claims[:3])
        skipped.append("ledger (" + (ledger.explanation or "no record found") + ")")
    if not has_manifest and ledger.reachable and ledger.found and not ledger.publisher_trusted:
        reasons.append(f"publisher: {ledger.publisher_signer or 'the registered certificate'} is not in your trust anchors"
                       " (metadata stripped: trust comes from the publisher's registered certificate)")
        skipped.append("publisher trust (pass --trust with the publisher's trust anchors)")
    if skipped:
        return Verdict.UNCHECKED, tuple(reasons), tuple(skipped)

    dev = " (DEVELOPMENT KEY: anyone with the publisher's key folder can sign as it)"
    if has_manifest:
        reasons.append(f"C2PA: signed by {c2pa.signer}, trusted" + (dev if c2pa.development else ""))
        reasons.append("watermark: every block intact")
        if ledger.hashes_match is None:  # a batch member found without its Merkle proof
            reasons.append("ledger: record found in a batch; without the batch's Merkle proof its hashes were not compared")
            return Verdict.AUTHENTIC, tuple(reasons), ("ledger hashes (no Merkle proof of the batch: pass --proof)",)
        reasons.append("ledger: record found, pixels, file and manifest hashes match")
        return Verdict.AUTHENTIC, tuple(reasons), ()
    reasons.append("C2PA: manifest stripped (metadata removed)")
    reasons.append(f"publisher: {ledger.publisher_signer}, proves its watermark key, certificate trusted"
                   + (dev if ledger.publisher_development else ""))
    reasons.append("watermark: every block intact under the publisher's registered key")
    if ledger.pixels_match:
        reasons.append("ledger: record found, pixel hash matches")
        return Verdict.AUTHENTIC_STRIPPED, tuple(reasons), ()
    reasons.append("ledger: record found, but the node returned no anchoring event to compare the pixel hash with")
    return Verdict.AUTHENTIC_STRIPPED, tuple(reasons), ("ledger pixel hash (anchoring event unavailable)",)


def _decide_soft(soft: SoftBindingEvidence, ledger: LedgerEvidence,
                 image: ImageEvidence | None = None) -> tuple[Verdict, tuple[str, ...], tuple[str, ...]]:
    """Verdict for a copy with neither manifest nor fragile watermark (issue 19).

    The robust mark's key is public, so a read asset id is only a pointer: the copy must
    also look like the recorded photo (PDQ distance within the threshold) and the record
    must exist under a publisher that proves its keys, with the same trust decision as a
    stripped photo (the publisher's registered certificate against the trust anchors).
    Never authentic: a re-encoded copy's exact integrity cannot be certified. The visual
    match is measured on the stored pixels, so metadata that changes what a viewer shows
    (``image.rendering_metadata``; the pipeline leaves out ICC profiles that render as
    sRGB) makes a matching copy ``modified``.
    """
    if not soft.found or soft.asset_id is None:
        why = "no C2PA manifest and no shield watermark found"
        return Verdict.NO_PROVENANCE, (why + (f"; soft binding: {soft.explanation}" if soft.explanation else ""),), ()
    via = "the robust soft-binding mark" if soft.method != "pdq" else "the perceptual fingerprint"
    named = f"soft binding: {via} names asset {soft.asset_id}"
    if soft.matched is False:
        return Verdict.NO_PROVENANCE, (
            f"{named}, but this picture does not look like the recorded one (PDQ distance {soft.distance} > "
            f"{soft.threshold} bits): the mark was copied onto another picture, or the picture was changed",), ()
    if not ledger.reachable:
        return Verdict.UNCHECKED, (named,), ("ledger (" + (ledger.explanation or "unreachable") + ")",)
    if not ledger.found:
        return Verdict.NO_PROVENANCE, (f"{named}, but no publisher that proves its keys has a record of it"
                                       + (f" ({ledger.explanation})" if ledger.explanation else ""),), ()
    if ledger.revoked:
        return Verdict.INVALID, ("ledger: the publisher revoked this record" + (
            f" ({ledger.revocation_reason})" if ledger.revocation_reason else ""),), ()
    if ledger.publisher_proven is not True:
        return Verdict.INVALID, ("ledger: the record's publisher cannot prove it holds its keys",), ()
    if soft.matched is None:
        return Verdict.UNCHECKED, (named + "; the record is on the ledger",), (
            "visual match (" + (soft.explanation or "no recorded fingerprint of this asset is available") + ")",)
    if not ledger.publisher_trusted:
        return Verdict.UNCHECKED, (
            named,
            f"publisher: {ledger.publisher_signer or 'the registered certificate'} is not in your trust anchors"
            " (without a valid manifest, trust comes from the publisher's registered certificate)"), (
            "publisher trust (pass --trust with the publisher's trust anchors)",)
    rendering = _rendering_reasons(image)
    if rendering:
        return Verdict.MODIFIED, (*rendering, named + f" (PDQ distance {soft.distance} of the stored pixels), "
                                  "but a viewer does not show those pixels as published"), ()
    dev = " (DEVELOPMENT KEY: anyone with the publisher's key folder can sign as it)" if ledger.publisher_development else ""
    return Verdict.REENCODED_MATCH, (
        named + f"; PDQ distance {soft.distance} of 256 bits (same picture up to {soft.threshold})",
        f"publisher: {ledger.publisher_signer}, proves its keys, certificate trusted" + dev,
    ), ()


def _decide_kept_manifest(c2pa: C2paEvidence, wm: WatermarkEvidence, ledger: LedgerEvidence,
                          image: ImageEvidence | None, soft: SoftBindingEvidence | None
                          ) -> tuple[Verdict, tuple[str, ...], tuple[str, ...]] | None:
    """A re-encoded copy that kept its manifest: ``re-encoded``, or why not; None when the
    soft binding does not apply (no soft evidence, a fragile watermark to decide, or a
    manifest that failed otherwise than by its data hash).

    The manifest's signature holds but the bytes changed, and the fragile watermark is
    gone. The soft binding (:func:`_decide_soft`, the same checks and trust decision as
    ``re-encoded-match``) must lead to the very asset the manifest names, and the record's
    publisher must be registered with the certificate that signed the manifest: then the
    manifest is the publisher's and the whole picture was re-compressed or resized after
    signing. Never authentic. Any other outcome is returned as INVALID with the reason, for
    the caller to add to the manifest's own failure.
    """
    if soft is None or wm.present or wm.status != "absent" or not c2pa.bytes_changed:
        return None
    if not soft.found:
        return Verdict.INVALID, ("soft binding: no robust mark or fingerprint leads to a published photo"
                                 + (f" ({soft.explanation})" if soft.explanation else ""),), ()
    verdict, reasons, skipped = _decide_soft(soft, ledger, image)
    if verdict is not Verdict.REENCODED_MATCH:
        return Verdict.INVALID, (*reasons, *(f"soft binding: not checked: {s}" for s in skipped)), ()
    if soft.asset_id != c2pa.asset_id:
        return Verdict.INVALID, (f"soft binding: this copy leads to asset {soft.asset_id}, not to the asset "
                                 f"{c2pa.asset_id or '(none)'} the manifest names: the manifest was copied onto "
                                 "another picture",), ()
    if ledger.publisher_consistent is None:
        return Verdict.INVALID, (_SIGNER_NOT_COMPARED,), ()
    if ledger.publisher_consistent is not True:
        return Verdict.INVALID, ("ledger: the record's publisher is not registered with the certificate that signed"
                                 " the manifest",), ()
    signer = c2pa.signer or "an unknown signer"
    return Verdict.REENCODED, (
        reencoded_sentence(soft, ledger),
        *reasons,
        f"C2PA: the signature by {signer} holds, but the image bytes differ from the signed ones"
        " (re-compressed or resized after signing)",
    ), ()


#: Why a manifest whose signer was not compared with the record's publisher is not the publisher's.
_SIGNER_NOT_COMPARED = ("ledger: the manifest's signer could not be compared with the record's publisher (its"
                        " certificate could not be recovered from this file), so the manifest is not known to be"
                        " the publisher's")


#: Problems another chain or registry setting can solve.
_SETTING_PROBLEMS = frozenset({LedgerProblem.NO_REGISTRY, LedgerProblem.REGISTRY_NOT_ON_CHAIN,
                               LedgerProblem.CHAIN_ID_MISMATCH, LedgerProblem.NO_RECORD})
#: Problems of a chain that does not answer or is set up wrongly.
_BROKEN = frozenset({LedgerProblem.NODE_UNREACHABLE, LedgerProblem.CHAIN_ID_MISMATCH, LedgerProblem.NO_REGISTRY,
                     LedgerProblem.REGISTRY_NOT_ON_CHAIN, LedgerProblem.LEDGER_ERROR})
#: How the chain settings are named (shield.config).
CHAIN_SETTINGS = "SHIELD_RPC_URL, SHIELD_CHAIN_ID, SHIELD_REGISTRY (or rpc_url, chain_id, registry in [chain] of shield.toml)"


def next_steps(verdict: Verdict, c2pa: C2paEvidence, ledger: LedgerEvidence,
               soft: SoftBindingEvidence | None = None) -> tuple[str, ...]:
    """What the user can do so that the checks that could not run do run.

    Each step names the exact flag or setting with the values the photo and the ledger
    gave (chain id, registry, publisher, signer, record), so it can be acted on as is.
    Nothing for a verdict that more evidence cannot change (authentic, modified, invalid,
    a copy that matches nothing).
    """
    copy = soft is not None and soft.found and c2pa.state == "absent"
    if ledger.found and ledger.batch_root and ledger.hashes_match is None and not copy and verdict in (
            Verdict.AUTHENTIC, Verdict.AUTHENTIC_STRIPPED, Verdict.UNCHECKED):
        return (f"pass --proof PHOTO.proof.json, the Merkle proof of batch {ledger.batch_root} that the publisher"
                " hands out with the photo, to compare the hashes",)
    if verdict in (Verdict.AUTHENTIC, Verdict.AUTHENTIC_STRIPPED, Verdict.MODIFIED, Verdict.REENCODED,
                   Verdict.INVALID) or (verdict is Verdict.NO_PROVENANCE and soft is not None and soft.found):
        return ()
    if verdict is Verdict.NO_PROVENANCE:  # nothing found; say so when the ledger could not be searched
        return (ledger.fix,) if ledger.fix and ledger.problem in _BROKEN else ()
    steps: list[str] = []
    problem = ledger.problem if not ledger.found else None
    named = c2pa.ledger_registry is not None or c2pa.ledger_chain_id is not None
    elsewhere = named and (
        (c2pa.ledger_registry or "").lower() != (ledger.contract or "").lower()
        or (c2pa.ledger_chain_id is not None and ledger.chain_id is not None and c2pa.ledger_chain_id != ledger.chain_id))
    settable = problem in _SETTING_PROBLEMS or problem is LedgerProblem.NODE_UNREACHABLE
    if problem is LedgerProblem.OFFLINE:
        steps.append("run again without --offline to look the record up on the ledger")
    elif ledger.fix and problem is not LedgerProblem.NO_RECORD and not (elsewhere and problem in _SETTING_PROBLEMS):
        steps.append(ledger.fix)
    if settable and elsewhere:
        chain = c2pa.ledger_chain_id
        steps.append(
            f"the photo's manifest says it is anchored on chain {chain if chain is not None else '(not named)'}"
            f" in registry {c2pa.ledger_registry or '(not named)'}"
            + (f" by publisher {c2pa.ledger_publisher}" if c2pa.ledger_publisher else "")
            + ": point shield at it with SHIELD_RPC_URL=<URL of a node of chain "
            + f"{chain if chain is not None else 'N'}> SHIELD_CHAIN_ID={chain if chain is not None else 'N'} "
            + f"SHIELD_REGISTRY={c2pa.ledger_registry or '0x...'} (or rpc_url, chain_id, registry in [chain] of shield.toml)")
    elif problem is LedgerProblem.NO_RECORD and not named:
        where = (f"chain {ledger.chain_id}" if ledger.chain_id is not None else "the configured chain") + (
            f", registry {ledger.contract}" if ledger.contract else "")
        steps.append(f"no manifest names the publisher's chain: if it anchors elsewhere than {where}, set {CHAIN_SETTINGS}"
                     " to its chain and registry")
    anchors = "; the publisher writes them with `shield keys export-trust FILE.pem` (check them with the publisher)"
    if c2pa.state == "valid":
        fp = f" (certificate SHA-256 {c2pa.signer_fingerprint})" if c2pa.signer_fingerprint else ""
        steps.append(f"pass --trust FILE.pem holding the trust anchors of {c2pa.signer or 'the signer'}{fp}" + anchors)
    elif ledger.found and ledger.publisher_proven and ledger.publisher_trusted is False:
        record = ", ".join(x for x in (f"chain {ledger.chain_id}" if ledger.chain_id is not None else "",
                                       f"publisher {ledger.publisher}" if ledger.publisher else "",
                                       f"tx {ledger.tx}" if ledger.tx else "") if x)
        steps.append(f"pass --trust FILE.pem holding the trust anchors of {ledger.publisher_signer or 'the publisher'}"
                     + (f" (record: {record})" if record else "") + anchors)
    return tuple(steps)


def visual_match(distance: int) -> str:
    """The visual match S of a PDQ distance, as a percentage of agreeing bits."""
    return f"{100.0 * (1.0 - distance / 256.0):.0f}%"


def reencoded_match_sentence(soft: SoftBindingEvidence, ledger: LedgerEvidence) -> str:
    """"published by P at T (record R); this copy was re-encoded, ...; visual match S"."""
    return (f"{_published_by(soft, ledger)}; this copy was re-encoded, so exact integrity "
            f"cannot be certified; visual match {_match(soft)}")


def reencoded_sentence(soft: SoftBindingEvidence, ledger: LedgerEvidence) -> str:
    """The same for a re-encoded copy that kept the publisher's manifest (``re-encoded``)."""
    return (f"{_published_by(soft, ledger)}; this copy was re-compressed or resized after signing, so exact "
            f"integrity cannot be certified; the manifest is the publisher's; visual match {_match(soft)}")


def _published_by(soft: SoftBindingEvidence, ledger: LedgerEvidence) -> str:
    """"published by P at T (record R)"."""
    who = ledger.publisher_signer or ledger.publisher or "an unknown publisher"
    if ledger.publisher_signer and ledger.publisher:
        who = f"{ledger.publisher_signer} ({ledger.publisher})"
    when = ledger.timestamp.isoformat() if ledger.timestamp else "an unknown time"
    record = f"asset {soft.asset_id}" + (f", tx {ledger.tx}" if ledger.tx else "") + (
        f", chain {ledger.chain_id}" if ledger.chain_id is not None else "")
    return f"published by {who} at {when} (record {record})"


def _match(soft: SoftBindingEvidence) -> str:
    return visual_match(soft.distance) if soft.distance is not None else "unknown"


def _rendering_reasons(image: ImageEvidence | None) -> list[str]:
    if image is None:
        return []
    out = []
    if image.frames > 1:
        out.append(f"file: holds {image.frames} frames or pages; a viewer may show one the watermark does not cover")
    if image.rendering_metadata:
        out.append("file: rendering metadata added after publication, not bound by the watermark: "
                   + ", ".join(image.rendering_metadata[:8]))
    return out


def _ledger_mismatch(ledger: LedgerEvidence, has_manifest: bool) -> tuple[Verdict, str] | None:
    """The verdict a found record forces, if any: revoked, changed, or not the publisher's."""
    if ledger.revoked:
        return Verdict.INVALID, "ledger: the publisher revoked this record" + (
            f" ({ledger.revocation_reason})" if ledger.revocation_reason else "")
    if ledger.publisher_proven is False:
        return Verdict.INVALID, "ledger: the record's publisher cannot prove it holds the watermark key"
    if ledger.pixels_match is False:
        return Verdict.MODIFIED, "ledger: the pixels differ from those anchored"
    if has_manifest:
        if ledger.file_match is False:
            return Verdict.INVALID, "ledger: the file hash differs from the anchored one (same pixels, other bytes)"
        if ledger.manifest_match is False:
            return Verdict.INVALID, "ledger: the manifest hash differs from the anchored one"
        if ledger.hashes_match is False:
            return Verdict.INVALID, "ledger: file or manifest hash differs from the anchored record"
    if ledger.publisher_consistent is False:
        return Verdict.INVALID, "ledger: the record's publisher is not registered with this signer's certificate and watermark key"
    return None


_SUMMARY = {
    Verdict.AUTHENTIC: "AUTHENTIC: intact since publication",
    Verdict.AUTHENTIC_STRIPPED: "AUTHENTIC (metadata stripped): pixels intact since publication",
    Verdict.MODIFIED: "MODIFIED: changed since publication",
    Verdict.REENCODED: "RE-ENCODED: the whole image was re-compressed or resized",
    Verdict.REENCODED_MATCH: "RE-ENCODED COPY OF A PUBLISHED PHOTO: exact integrity cannot be certified",
    Verdict.INVALID: "INVALID: provenance does not check out",
    Verdict.NO_PROVENANCE: "UNKNOWN ORIGIN: no shield provenance found",
    Verdict.UNCHECKED: "NOT FULLY CHECKED: some checks could not run",
}


def summary_for(verdict: Verdict, soft: SoftBindingEvidence | None = None, ledger: LedgerEvidence | None = None) -> str:
    """The report's first line; for ``re-encoded-match`` with its evidence, the full
    "published by P at T (record R); ... visual match S" sentence."""
    if verdict is Verdict.REENCODED_MATCH and soft is not None and ledger is not None:
        return "RE-ENCODED MATCH: " + reencoded_match_sentence(soft, ledger)
    return _SUMMARY[verdict]


def render_text(report: VerifyReport) -> str:
    """Human-readable report, a few lines."""
    lines = [report.summary]
    if report.asset_id:
        lines.append(f"  asset id   {report.asset_id}")
    c = report.c2pa
    lines.append(f"  C2PA       {c.state}" + (f", signed by {c.signer}" if c.signer else "") + (f" at {c.signed_at}" if c.signed_at else ""))
    if c.development or report.ledger.publisher_development:
        lines.append("             DEVELOPMENT KEY: the signer's password is stored with its keys; not proof of a publisher")
    for code, explanation in dict.fromkeys((x.code, x.explanation) for x in c.codes if x.severity != "info"):
        lines.append(f"             - {code}: {explanation}")
    sb = report.soft_binding
    if sb.found:
        how = {"pdq": "perceptual fingerprint"}.get(sb.method or "", f"robust mark {sb.method}")
        dist = f", PDQ distance {sb.distance}/256 (visual match {visual_match(sb.distance)})" if sb.distance is not None else ""
        lines.append(f"  soft bind  {how} -> asset {sb.asset_id}{dist}")
        if sb.explanation:
            lines.append(f"             {sb.explanation}")
    w = report.watermark
    wm_line = f"  watermark  {w.status}"
    if w.status == "unchecked":
        wm_line += f" (present; {w.explanation})" if w.explanation else " (present)"
    elif w.present:
        wm_line += f", {w.intact_fraction:.1%} of blocks intact"
    lines.append(wm_line)
    for r in w.tampered_regions[:10]:
        lines.append(f"             - changed region x={r.x} y={r.y} {r.width}x{r.height}")
    if len(w.tampered_regions) > 10:
        lines.append(f"             - ... {len(w.tampered_regions) - 10} more regions")
    lg = report.ledger
    if not lg.reachable:
        lines.append(f"  ledger     not checked: {lg.explanation}")
    elif not lg.found:
        lines.append("  ledger     no record")
    else:
        when = lg.timestamp.isoformat() if lg.timestamp else "?"
        lines.append(f"  ledger     chain {lg.chain_id}, block {lg.block}, {when}, publisher {lg.publisher}")
        if lg.publisher_signer:
            proven = {True: "proves its keys", False: "CANNOT PROVE its keys", None: "proof not checked"}[lg.publisher_proven]
            trusted = {True: "trusted", False: "not in your trust anchors", None: "trust not checked"}[lg.publisher_trusted]
            lines.append(f"             publisher certificate {lg.publisher_signer}: {proven}, {trusted}")
        lines.append(f"             {_hashes_line(report)}" + (" (REVOKED)" if lg.revoked else ""))
    for reason in report.reasons:
        lines.append(f"  because    {reason}")
    for skip in report.skipped:
        lines.append(f"  skipped    {skip}")
    for step in report.next_steps:
        lines.append(f"  to do      {step}")
    return "\n".join(lines)


def _hashes_line(report: VerifyReport) -> str:
    """The hash comparison in words, claiming no match that was not checked."""
    lg = report.ledger
    if report.soft_binding.found and not report.watermark.present and report.c2pa.state in ("absent", "invalid"):
        return "hashes not compared (a re-encoded copy cannot have the anchored pixels or bytes)"
    each = {"pixels": lg.pixels_match, "file": lg.file_match, "manifest": lg.manifest_match}
    if lg.hashes_match is None and lg.batch_root:
        return "hashes not compared (no Merkle proof of the batch this record is in)"
    if lg.hashes_match is None:
        return "hashes not compared (the node returned no anchoring event to compare them with)"
    if all(v is True for v in each.values()):
        return "hashes match the record (pixels, file, manifest)"
    if report.c2pa.state == "absent" and lg.pixels_match is True:
        return "pixel hash matches the record; file and manifest differ (metadata stripped)"
    differ = [k for k, v in each.items() if v is False]
    unknown = [k for k, v in each.items() if v is None]
    if lg.hashes_match is False:
        return "hashes DIFFER from the record" + (f" ({', '.join(differ)})" if differ else "")
    return "hashes match the record" + (f" ({', '.join(unknown)} not compared)" if unknown else "")
