"""Read and validate the C2PA manifest of an image, explained for the report.

The state is decided from the SDK's validation results against the trust anchors the
caller passes (C2PA 2.x "Validation": well-formed / valid / trusted): any failure
other than ``signingCredential.untrusted`` makes it ``invalid``; a valid manifest whose
signer chains to the anchors is ``trusted``; otherwise ``valid`` (signer unknown).
shield's own assertion, the soft binding and the signer certificate fingerprint are
decoded into typed results; the manifest hash is SHA-256 of the PNG ``caBX`` payload,
identical to ``SignedAsset.manifest_hash`` at signing time.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from shield.provenance import jumbf
from shield.provenance.errors import ManifestReadError
from shield.provenance.manifest import ASSET_ID_BYTES, SHIELD_ASSERTION_LABEL, SOFT_BINDING_ALG, c2pa_context
from shield.provenance.validation import TRUSTED, UNTRUSTED, Severity, ValidationCode, explain, from_sdk

__all__ = [
    "ManifestState",
    "SignerInfo",
    "LedgerTarget",
    "ShieldAssertion",
    "ManifestReport",
    "read_manifest",
    "has_manifest",
    "ASSET_ID_MISMATCH",
]

ManifestState = Literal["trusted", "valid", "invalid", "absent"]
#: shield's own status code: the soft binding and the shield assertion disagree on the asset id.
ASSET_ID_MISMATCH = "org.shield.assetId.mismatch"


@dataclass(frozen=True)
class SignerInfo:
    """Who signed. ``issuer`` is the issuer's distinguished name (RFC 4514) and
    ``cert_serial`` hex when the leaf certificate could be recovered from the file;
    ``cert_fingerprint`` = SHA-256 of the leaf certificate DER (None when it could not). ``signing_time`` comes from a
    trusted time-stamp only; shield signs offline, so it is usually None (see
    ``ShieldAssertion.signed_at`` for the time the signer claims)."""

    common_name: str | None
    issuer: str | None
    cert_fingerprint: bytes | None
    cert_serial: str | None
    alg: str | None
    signing_time: datetime | None

    @property
    def fingerprint(self) -> bytes | None:
        """Alias of ``cert_fingerprint``."""
        return self.cert_fingerprint


@dataclass(frozen=True)
class LedgerTarget:
    chain_id: int | None
    registry: str | None
    publisher: str | None


@dataclass(frozen=True)
class ShieldAssertion:
    """shield's own assertion, parsed. Unknown fields stay in ``raw``."""

    asset_id: bytes
    watermark_scheme: str | None
    watermark_public_key: bytes | None
    ledger: LedgerTarget
    protection: Mapping[str, Any]
    signed_at: datetime | None
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class ManifestReport:
    """Outcome of reading and validating a file's C2PA manifest.

    ``state``: ``trusted`` (valid, signer chains to the given anchors), ``valid``
    (valid, signer not among the anchors), ``invalid`` (some check failed), ``absent``
    (no manifest). ``codes`` keeps every status the SDK reported, explained.
    """

    state: ManifestState
    codes: tuple[ValidationCode, ...] = ()
    active_label: str | None = None
    title: str | None = None
    claim_generator: str | None = None
    actions: tuple[str, ...] = ()
    ingredients: tuple[str, ...] = ()
    signer: SignerInfo | None = None
    shield: ShieldAssertion | None = None
    soft_binding_asset_id: bytes | None = None
    manifest_hash: bytes | None = None

    @property
    def failures(self) -> tuple[ValidationCode, ...]:
        return tuple(c for c in self.codes if c.severity == "failure")

    def has_code(self, code: str) -> bool:
        return any(c.code == code for c in self.codes)


def read_manifest(data: bytes, mime: str, trust_anchors_pem: bytes | None) -> ManifestReport:
    """Read and validate the C2PA manifest embedded in ``data``.

    Args:
        data: the encoded file.
        mime: its MIME type (the SDK double-checks against the bytes).
        trust_anchors_pem: root certificates the reader trusts; None trusts nobody,
            so a good signature yields ``valid`` with ``signingCredential.untrusted``.

    Raises:
        ManifestReadError: the bytes are not a format the SDK can read at all.
    """
    import c2pa

    store = jumbf.manifest_store(bytes(data), mime)
    manifest_hash = hashlib.sha256(store).digest() if store is not None else None
    try:
        with c2pa_context(trust_anchors_pem) as ctx:
            reader = c2pa.Reader.try_create(mime, io.BytesIO(bytes(data)), None, ctx)
            if reader is None:
                return ManifestReport(state="absent")
            with reader:
                sdk_state = reader.get_validation_state()
                results = reader.get_validation_results() or {}
                active = reader.get_active_manifest() or {}
    except c2pa.C2paError as exc:
        if store is None:
            raise ManifestReadError(f"cannot read C2PA data: {exc}") from exc
        return _damaged(exc, manifest_hash)
    except _DAMAGE as exc:
        # The SDK reports some damaged stores by raising plain Python errors (e.g. KeyError
        # 'Active manifest not found in manifest store'): a typed "invalid", never a crash.
        return _damaged(exc, manifest_hash)
    try:
        return _report(sdk_state, results, active, store, manifest_hash)
    except _DAMAGE as exc:
        return _damaged(exc, manifest_hash)


#: Errors the SDK and the certificate parser raise on damaged manifests.
_DAMAGE = (KeyError, ValueError, TypeError, IndexError, AttributeError, UnicodeError)


def _damaged(exc: Exception, manifest_hash: bytes | None) -> ManifestReport:
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    code = ValidationCode("general.error", None, "failure", explain("general.error"), detail)
    return ManifestReport(state="invalid", codes=(code,), manifest_hash=manifest_hash)


def has_manifest(source: Path | bytes) -> bool:
    """Whether a file (path or bytes) carries C2PA data at all, valid or not.

    Cheap: for PNG it looks for the ``caBX`` chunk; other formats ask the SDK without
    validating. Unreadable files count as having no manifest.
    """
    import c2pa

    try:
        data = source.read_bytes() if isinstance(source, Path) else bytes(source)
    except OSError:
        return False
    if data.startswith(jumbf.PNG_SIGNATURE):
        return jumbf.png_manifest_store(data) is not None
    try:
        with c2pa.Context.from_dict({"verify": {"verify_after_reading": False, "remote_manifest_fetch": False}}) as ctx:
            reader = c2pa.Reader.try_create(None, io.BytesIO(data), None, ctx)
            if reader is None:
                return False
            reader.close()
            return True
    except c2pa.C2paError:
        return False


def _codes(results: Mapping[str, Any]) -> list[ValidationCode]:
    """Active-manifest codes, then ingredient deltas (their explanation says so)."""
    kinds: tuple[tuple[str, Severity], ...] = (("failure", "failure"), ("informational", "warning"), ("success", "info"))

    def group(statuses: Mapping[str, Any]) -> list[ValidationCode]:
        return [from_sdk(entry, severity) for key, severity in kinds for entry in statuses.get(key) or []]

    codes = group(results.get("activeManifest") or {})
    for delta in results.get("ingredientDeltas") or []:
        codes += [
            replace(c, explanation=f"In an earlier version (ingredient): {c.explanation}")
            for c in group(delta.get("validationDeltas") or {})
        ]
    return codes


def _report(
    sdk_state: str | None,
    results: Mapping[str, Any],
    active: Mapping[str, Any],
    store: bytes | None,
    manifest_hash: bytes | None,
) -> ManifestReport:
    codes = _codes(results)
    assertions = {a.get("label"): a.get("data") for a in active.get("assertions") or [] if isinstance(a, dict)}
    shield = _parse_shield(assertions.get(SHIELD_ASSERTION_LABEL))
    soft_id = _parse_soft_binding(assertions.get("c2pa.soft-binding"))
    if shield is not None and soft_id is not None and soft_id != shield.asset_id:
        codes.append(ValidationCode(ASSET_ID_MISMATCH, None, "failure",
                                    "The asset id in the soft binding differs from the one in shield's assertion."))
    failed = any(c.severity == "failure" and c.code != UNTRUSTED for c in codes)
    state: ManifestState
    if failed or sdk_state == "Invalid":
        state = "invalid"
    elif any(c.code == TRUSTED for c in codes) and sdk_state == "Trusted":
        state = "trusted"
    else:
        state = "valid"
    actions_data = assertions.get("c2pa.actions.v2") or assertions.get("c2pa.actions") or {}
    actions = tuple(str(a.get("action")) for a in actions_data.get("actions", []) if isinstance(a, dict))
    ingredients = tuple(str(i.get("title")) for i in active.get("ingredients") or [] if isinstance(i, dict))
    gen = active.get("claim_generator_info") or []
    claim_generator = "/".join(str(gen[0].get(k)) for k in ("name", "version") if gen[0].get(k)) if gen else None
    return ManifestReport(
        state=state,
        codes=tuple(codes),
        active_label=active.get("label"),
        title=active.get("title"),
        claim_generator=claim_generator,
        actions=actions,
        ingredients=ingredients,
        signer=_signer_info(active.get("signature_info") or {}, store),
        shield=shield,
        soft_binding_asset_id=soft_id,
        manifest_hash=manifest_hash,
    )


def _signer_info(sig: Mapping[str, Any], store: bytes | None) -> SignerInfo:
    """Signer facts: from the leaf certificate itself when it can be recovered from the
    PNG or WebP store (exact issuer DN, SHA-256 fingerprint), else from the SDK's summary.

    The SDK names the signer but does not hand out its certificate, so for other formats
    (JPEG, TIFF, ...) ``cert_fingerprint`` is None: the signer cannot be compared with a
    ledger publisher, and ``shield.report.decide`` never calls such a file authentic."""
    from cryptography import x509

    from shield.provenance.certs import common_name

    found = jumbf.active_manifest_signature(store) if store is not None else None
    chain = jumbf.cose_certificate_chain(found[1]) if found else []
    leaf = None
    name = issuer = serial = None
    if chain:
        try:
            leaf = x509.load_der_x509_certificate(chain[0])
            # cryptography parses names lazily: a damaged subject fails here, not above.
            name, issuer, serial = common_name(leaf.subject), leaf.issuer.rfc4514_string(), format(leaf.serial_number, "x")
        except ValueError:
            leaf = None
    return SignerInfo(
        common_name=name if leaf is not None else _text(sig.get("common_name")),
        issuer=issuer if leaf is not None else _text(sig.get("issuer")),
        cert_fingerprint=hashlib.sha256(chain[0]).digest() if chain else None,
        cert_serial=serial if leaf is not None else _text(sig.get("cert_serial_number")),
        alg=sig.get("alg"),
        signing_time=_parse_time(sig.get("time")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _hex(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        return None


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _parse_shield(data: Any) -> ShieldAssertion | None:
    if not isinstance(data, dict):
        return None
    asset_id = _hex(data.get("asset_id"))
    if asset_id is None or len(asset_id) != ASSET_ID_BYTES:
        return None
    watermark, ledger, protection = (_as_dict(data.get(k)) for k in ("watermark", "ledger", "protection"))
    chain_id = ledger.get("chain_id")
    return ShieldAssertion(
        asset_id=asset_id,
        watermark_scheme=watermark.get("scheme") if isinstance(watermark.get("scheme"), str) else None,
        watermark_public_key=_hex(watermark.get("public_key")),
        ledger=LedgerTarget(
            chain_id=chain_id if isinstance(chain_id, int) else None,
            registry=ledger.get("registry") if isinstance(ledger.get("registry"), str) else None,
            publisher=ledger.get("publisher") if isinstance(ledger.get("publisher"), str) else None,
        ),
        protection=protection,
        signed_at=_parse_time(data.get("signed_at")),
        raw=data,
    )


def _parse_soft_binding(data: Any) -> bytes | None:
    if not isinstance(data, dict) or data.get("alg") != SOFT_BINDING_ALG:
        return None
    for block in data.get("blocks") or []:
        value = block.get("value") if isinstance(block, dict) else None
        if isinstance(value, str):
            try:
                raw = base64.b64decode(value, validate=True)
            except ValueError:
                return None
            return raw if len(raw) == ASSET_ID_BYTES else None
    return None
