"""Build and sign the C2PA manifest of a protected image (C2PA 2.x via c2pa-python).

The manifest of a protected image holds:

- ``c2pa.actions.v2``: the input action (``c2pa.created`` for an input without
  provenance, ``c2pa.opened`` with the original as ``parentOf`` ingredient), then
  ``c2pa.edited`` describing the adversarial protection, then ``c2pa.watermarked``;
  the builder intent (CREATE / EDIT) is set accordingly;
- ``org.shield.protection``: shield's own assertion (asset id, protection parameters
  and measurements, watermark scheme and public key, ledger target, claimed signing
  time);
- ``c2pa.soft-binding``: the asset id that the robust soft-binding mark carries
  (algorithm ``shield.sstile.v1``, :mod:`shield.softbinding`; value = base64 of the 16
  bytes), so a copy stripped of this manifest and re-encoded or resized can be traced
  back to its record; the fragile watermark, which carries the same asset id but does
  not survive re-encoding, is described in ``org.shield.protection`` (``watermark``);
- ``c2pa.hash.data``: the hard binding to the file bytes (added by the SDK).

Manifest hash: SHA-256 of the manifest store bytes. ``sign_image`` hashes what the SDK
returns; ``read_manifest`` hashes the PNG ``caBX`` payload, which is the same bytes, so
the verifier can compare with the hash recorded on the ledger.

Reading lives in ``reading.py``. Trust is never "everything": reading validates the signing chain against the trust
anchors passed in, and without anchors a valid signature is reported as ``valid``
(signer unknown), not ``trusted``. No network access: OCSP and remote manifests are off.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shield import __version__
from shield.provenance import jumbf
from shield.provenance.errors import SigningError
from shield.provenance.keystore import UnlockedKeys

__all__ = [
    "ManifestSpec",
    "SignedAsset",
    "sign_image",
    "c2pa_context",
    "SHIELD_ASSERTION_LABEL",
    "SOFT_BINDING_ALG",
    "DIGITAL_SOURCE_UNSPECIFIED",
    "ASSET_ID_BYTES",
]

log = logging.getLogger(__name__)

SHIELD_ASSERTION_LABEL = "org.shield.protection"
SHIELD_ASSERTION_VERSION = 1
#: The soft-binding algorithm (shield.softbinding.ALG, spelled out so that reading a
#: manifest does not import the mark's code).
SOFT_BINDING_ALG = "shield.sstile.v1"
#: The C2PA digital source type for "origin not stated" (C2PA 2.2): shield cannot know
#: how the input photo was made, so it does not claim "digitalCapture".
DIGITAL_SOURCE_UNSPECIFIED = "http://c2pa.org/digitalsourcetype/empty"
ASSET_ID_BYTES = 16
INPUT_ACTIONS = ("c2pa.created", "c2pa.opened")
_MIME_BY_SUFFIX = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
                   ".tif": "image/tiff", ".tiff": "image/tiff"}

@dataclass(frozen=True)
class ManifestSpec:
    """What the manifest of one protected image says.

    Attributes:
        title: human title (usually the output file name).
        asset_id: the 16-byte asset id shared with the watermark and the ledger.
        format: MIME type of the signed file.
        input_action: ``c2pa.created`` (input had no provenance) or ``c2pa.opened``
            (input had provenance; then ``ingredient_path`` is required). Giving an
            ``ingredient_path`` makes the input the parent, hence ``c2pa.opened``.
        protection: parameters and measurements of the perturbation (JSON values):
            e.g. eps, steps, targeted models, self-check disruption, psnr, ssim.
        watermark: ``scheme``, ``block_size`` and ``public_key`` (hex Ed25519), etc.
        ledger: ``chain_id``, ``registry`` address, ``publisher`` address.
        ingredient_path: the original image, embedded as ``parentOf`` ingredient.
        claim_generator: ``name/version`` of the software that made the claim.
        digital_source_type: IPTC/C2PA URI for ``c2pa.created``.
    """

    title: str
    asset_id: bytes
    format: str = "image/png"
    input_action: str = "c2pa.created"
    protection: Mapping[str, Any] = field(default_factory=dict)
    watermark: Mapping[str, Any] = field(default_factory=dict)
    ledger: Mapping[str, Any] = field(default_factory=dict)
    ingredient_path: Path | None = None
    claim_generator: str = f"shield/{__version__}"
    digital_source_type: str = DIGITAL_SOURCE_UNSPECIFIED

    def __post_init__(self) -> None:
        if not isinstance(self.asset_id, bytes) or len(self.asset_id) != ASSET_ID_BYTES:
            raise ValueError(f"asset_id must be {ASSET_ID_BYTES} bytes")
        if not self.title.strip():
            raise ValueError("title must not be empty")
        if self.input_action not in INPUT_ACTIONS:
            raise ValueError(f"input_action must be one of {INPUT_ACTIONS}, got {self.input_action!r}")
        if self.input_action == "c2pa.opened" and self.ingredient_path is None:
            raise ValueError("input_action 'c2pa.opened' needs the original as ingredient_path")
        for name in ("protection", "watermark", "ledger"):
            try:
                json.dumps(getattr(self, name))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must hold JSON values only: {exc}") from exc

    @property
    def effective_input_action(self) -> str:
        return "c2pa.opened" if self.ingredient_path is not None else self.input_action


@dataclass(frozen=True)
class SignedAsset:
    """A signed file. ``manifest_hash`` = SHA-256(``manifest_bytes``), 32 bytes."""

    data: bytes = field(repr=False)
    manifest_bytes: bytes = field(repr=False)
    manifest_hash: bytes
    active_label: str


# -- signing -----------------------------------------------------------------------


def c2pa_context(trust_anchors_pem: bytes | None, claim_generator: str | None = None) -> Any:
    """A c2pa ``Context``: verify against exactly these anchors, offline, no thumbnail."""
    import c2pa

    config: dict[str, Any] = {
        "verify": {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False},
        "builder": {"thumbnail": {"enabled": False}},
    }
    if trust_anchors_pem:
        config["trust"] = {"trust_anchors": trust_anchors_pem.decode("ascii")}
    if claim_generator:
        name, _, version = claim_generator.partition("/")
        config["builder"]["claim_generator_info"] = {"name": name, "version": version or __version__}
    return c2pa.Context.from_dict(config)


def _manifest_definition(spec: ManifestSpec, keys: UnlockedKeys, now: datetime) -> dict[str, Any]:
    name, _, version = spec.claim_generator.partition("/")
    agent = {"name": name, "version": version or __version__}
    shield_data = {
        "version": SHIELD_ASSERTION_VERSION,
        "asset_id": spec.asset_id.hex(),
        "protection": dict(spec.protection),
        "watermark": dict(spec.watermark),
        "ledger": dict(spec.ledger),
        "publisher_cert_sha256": keys.cert_fingerprint.hex(),
        "signed_at": now.isoformat(),
    }
    soft_binding = {
        "alg": SOFT_BINDING_ALG,
        "name": "shield robust soft-binding mark (keyed spread spectrum, public key): the asset id",
        "blocks": [{"scope": {}, "value": base64.b64encode(spec.asset_id).decode("ascii")}],
        "pad": [],
    }
    actions = [
        {
            "action": "c2pa.edited",
            "softwareAgent": agent,
            "description": "Adversarial perturbation against face reenactment and face swapping (shield protection).",
            "parameters": {"org.shield.assertion": SHIELD_ASSERTION_LABEL},
        },
        {
            "action": "c2pa.watermarked",
            "softwareAgent": agent,
            "description": "Robust soft-binding mark carrying the asset id (survives re-encoding and resizing),"
                           " then a fragile watermark carrying it too (reveals and locates later edits).",
        },
    ]
    return {
        "claim_generator_info": [agent],
        "title": spec.title,
        "format": spec.format,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": actions}},
            {"label": SHIELD_ASSERTION_LABEL, "data": shield_data},
            {"label": "c2pa.soft-binding", "data": soft_binding},
        ],
    }


def _signer(keys: UnlockedKeys) -> Any:
    import c2pa

    alg = getattr(c2pa.C2paSigningAlg, keys.c2pa_alg.upper())
    if keys.c2pa_sign is not None:
        return c2pa.Signer.from_callback(keys.c2pa_sign, alg, keys.c2pa_cert_chain_pem.decode("ascii"), None)
    info = c2pa.C2paSignerInfo(keys.c2pa_alg.encode("ascii"), keys.c2pa_cert_chain_pem, keys.c2pa_private_key_pem, None)
    return c2pa.Signer.from_info(info)


def sign_image(
    image_bytes: bytes,
    spec: ManifestSpec,
    keys: UnlockedKeys,
    *,
    mime: str = "image/png",
    now: datetime | None = None,
) -> SignedAsset:
    """Embed a signed C2PA manifest into an encoded image, in memory.

    Args:
        image_bytes: the encoded image (PNG for shield outputs); any existing manifest
            in it is replaced, so pass the original as ``spec.ingredient_path`` to keep it.
        spec: what the manifest says.
        keys: unlocked keystore (certificate chain and key, or a callback signer).
        mime: MIME type of ``image_bytes``.
        now: claimed signing time written to the shield assertion (UTC; default now).

    Raises:
        SigningError: the SDK refused the manifest or the signature.
    """
    import c2pa

    if not isinstance(image_bytes, (bytes, bytearray)):
        raise TypeError("image_bytes must be bytes")
    if mime != spec.format:
        raise ValueError(f"mime {mime!r} differs from spec.format {spec.format!r}")
    now = datetime.now(UTC) if now is None else now
    definition = _manifest_definition(spec, keys, now)
    try:
        with c2pa_context(keys.trust_anchors_pem, spec.claim_generator) as ctx:
            builder = c2pa.Builder(definition, context=ctx)
            if spec.ingredient_path is not None:
                builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
                _add_parent(builder, spec.ingredient_path)
            else:
                builder.set_intent(c2pa.C2paBuilderIntent.CREATE, _source_type(spec.digital_source_type))
            out = io.BytesIO()
            with _signer(keys) as signer:
                manifest_bytes = builder.sign(signer, mime, io.BytesIO(bytes(image_bytes)), out)
    except c2pa.C2paError as exc:
        raise SigningError(f"C2PA signing failed: {exc}") from exc
    except OSError as exc:
        raise SigningError(f"cannot read the ingredient {spec.ingredient_path}: {exc.strerror}") from exc
    found = jumbf.active_manifest_signature(manifest_bytes)
    label = found[0] if found else ""
    log.debug("signed %s (%d bytes manifest)", label, len(manifest_bytes))
    return SignedAsset(out.getvalue(), manifest_bytes, hashlib.sha256(manifest_bytes).digest(), label)


def _source_type(uri: str) -> Any:
    import c2pa

    if uri == DIGITAL_SOURCE_UNSPECIFIED:
        return c2pa.C2paDigitalSourceType.EMPTY
    tail = uri.rstrip("/").rsplit("/", 1)[-1]
    snake = "".join("_" + ch if ch.isupper() else ch.upper() for ch in tail).lstrip("_")
    try:
        return c2pa.C2paDigitalSourceType[snake]
    except KeyError as exc:
        raise ValueError(f"unsupported digital_source_type {uri!r}") from exc


def _add_parent(builder: Any, path: Path) -> None:
    mime = _MIME_BY_SUFFIX.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"ingredient_path {path} is not a PNG, JPEG, WebP or TIFF file")
    with path.open("rb") as fh:
        builder.add_ingredient({"title": path.name, "relationship": "parentOf"}, mime, fh)
