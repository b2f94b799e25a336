"""C2PA validation status codes in plain words.

Codes are those of the C2PA Technical Specification 2.x, "Validation" chapter
("Standard Status Codes": success, informational, failure), plus the ones c2pa-rs
0.91 emits on its own (``assertion.action.softBindingMissing``, ``timeOfSigning.*``).
An unknown code is never dropped: it gets an explanation derived from its family
(the part before the first dot) and keeps the SDK's own text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["Severity", "ValidationCode", "EXPLANATIONS", "explain", "from_sdk", "UNTRUSTED", "TRUSTED"]

Severity = Literal["failure", "warning", "info"]

TRUSTED = "signingCredential.trusted"
UNTRUSTED = "signingCredential.untrusted"


@dataclass(frozen=True)
class ValidationCode:
    """One validation result.

    Attributes:
        code: the C2PA status code, e.g. ``assertion.dataHash.mismatch``.
        url: JUMBF URI of the part it concerns (claim, signature, assertion), or None.
        severity: ``failure`` (the check failed), ``warning`` (informational: a check
            was skipped or is weaker than it could be) or ``info`` (the check passed).
        explanation: what it means, in plain words.
        sdk_explanation: the SDK's own terse text, kept for debugging.
    """

    code: str
    url: str | None
    severity: Severity
    explanation: str
    sdk_explanation: str | None = None


#: code -> plain-words explanation.
EXPLANATIONS: Mapping[str, str] = {
    # -- success --
    "claimSignature.validated": "The publisher's signature over the manifest is mathematically valid.",
    "claimSignature.insideValidity": "The signing certificate was within its validity period when the manifest was signed.",
    "signingCredential.trusted": "The signing certificate chains to a trust anchor you trust.",
    "signingCredential.ocsp.notRevoked": "The certificate issuer confirmed (OCSP) the signing certificate is not revoked.",
    "timeStamp.validated": "The signature carries a well-formed time-stamp that matches it.",
    "timeStamp.trusted": "The signature's time-stamp comes from a trusted time-stamp authority.",
    "assertion.hashedURI.match": "A statement in the manifest is exactly as it was when signed.",
    "assertion.dataHash.match": "The image bytes are exactly the ones that were signed.",
    "assertion.dataHash.additionalExclusionsPresent": "The signed hash leaves out more of the file than just the manifest; the extra parts are unprotected.",
    "assertion.bmffHash.match": "The media boxes are exactly the ones that were signed.",
    "assertion.boxesHash.match": "The file's boxes are exactly the ones that were signed.",
    "assertion.collectionHash.match": "Every file of the collection is exactly as signed.",
    "assertion.accessible": "A statement stored outside the file could be fetched.",
    "ingredient.manifest.validated": "The manifest of an ingredient (earlier version) is intact.",
    "ingredient.claimSignature.validated": "The signature of an ingredient's manifest is intact.",
    "ingredient.unknownProvenance": "An ingredient (earlier version) had no provenance of its own.",
    # -- informational --
    "signingCredential.ocsp.skipped": "Revocation of the signing certificate was not checked online (offline verification).",
    "signingCredential.ocsp.inaccessible": "The revocation service of the certificate issuer could not be reached.",
    "timeStamp.mismatch": "The time-stamp does not match the signature, so the signing time is not proven.",
    "timeStamp.malformed": "The time-stamp is malformed, so the signing time is not proven.",
    "timeStamp.outsideValidity": "The time-stamp falls outside the validity of a certificate involved.",
    "timeStamp.untrusted": "The time-stamp authority is not one you trust, so the signing time is not proven.",
    "manifest.unknownProvenance": "The manifest cannot be interpreted by this version of the C2PA library.",
    "manifest.unreferenced": "The file holds a manifest that nothing refers to.",
    "algorithm.deprecated": "The signature uses an algorithm that is deprecated; it still validated.",
    "timeOfSigning.insideValidity": "The signing time claimed by the signer lies within the certificate's validity.",
    "timeOfSigning.outsideValidity": "The signing time claimed by the signer lies outside the certificate's validity.",
    # -- failure --
    "claim.malformed": "The manifest's claim is malformed.",
    "claim.missing": "A manifest the file refers to is missing.",
    "claim.multiple": "A manifest holds more than one claim.",
    "claim.hardBindings.missing": "The manifest does not bind to the image bytes at all.",
    "assertion.multipleHardBindings": "The manifest binds to the image bytes in more than one way, which is not allowed.",
    "claim.required.missing": "A required field of the manifest's claim is missing.",
    "claim.cbor.invalid": "The manifest's claim is not valid CBOR.",
    "ingredient.hashedURI.mismatch": "An ingredient's manifest was changed after it was referenced.",
    "claimSignature.missing": "The manifest has no signature.",
    "claimSignature.mismatch": "The signature does not match the manifest: the manifest was altered or forged.",
    "claimSignature.outsideValidity": "The manifest was signed outside the signing certificate's validity period.",
    "manifest.inaccessible": "The manifest is stored elsewhere and could not be fetched.",
    "manifest.multipleParents": "The manifest names more than one parent image.",
    "manifest.update.invalid": "An update manifest changes things an update may not change.",
    "manifest.update.wrongParents": "An update manifest does not have exactly one parent.",
    "manifest.timestamp.invalid": "A time-stamp manifest holds statements it may not hold.",
    "manifest.timestamp.wrongParents": "A time-stamp manifest does not have exactly one parent.",
    "manifest.compressed.invalid": "A compressed manifest cannot be decompressed.",
    "signingCredential.untrusted": "The signing certificate does not chain to any trust anchor you gave; the signer is unknown to you.",
    "signingCredential.invalid": "The signing certificate is not allowed to sign manifests (wrong profile or usage).",
    "signingCredential.ocsp.revoked": "The issuer has revoked the signing certificate.",
    "signingCredential.ocsp.unknown": "The issuer's revocation service does not know the signing certificate.",
    "signingCredential.expired": "The signing certificate has expired (no trusted time-stamp proves it was signed earlier).",
    "assertion.hashedURI.mismatch": "A statement in the manifest was changed after signing.",
    "assertion.missing": "A statement the manifest lists is missing from it.",
    "assertion.undeclared": "The manifest holds a statement its claim does not list (added after signing).",
    "assertion.inaccessible": "A statement stored outside the file could not be fetched.",
    "assertion.notRedacted": "A statement marked as removed is still present.",
    "assertion.selfRedacted": "A manifest tried to remove one of its own statements.",
    "assertion.required.missing": "A required field of a statement is missing.",
    "assertion.json.invalid": "A statement is not valid JSON.",
    "assertion.cbor.invalid": "A statement is not valid CBOR.",
    "assertion.action.ingredientMismatch": "An edit action refers to an ingredient that is missing or wrong.",
    "assertion.action.redacted": "An action statement was removed, which is not allowed.",
    "assertion.action.malformed": "The list of edit actions is malformed.",
    "assertion.action.redactionMismatch": "A redaction action does not match what was removed.",
    "assertion.action.softBindingMissing": "A watermark action has no soft-binding statement to go with it.",
    "assertion.dataHash.mismatch": "The image bytes differ from the ones that were signed: the image was modified, or the manifest was copied from another image.",
    "assertion.dataHash.malformed": "The hash of the image bytes in the manifest is malformed.",
    "assertion.dataHash.redacted": "The hash binding the manifest to the image was removed.",
    "assertion.bmffHash.mismatch": "The media boxes differ from the ones that were signed.",
    "assertion.bmffHash.malformed": "The media box hash in the manifest is malformed.",
    "assertion.boxesHash.mismatch": "The file's boxes differ from the ones that were signed.",
    "assertion.boxesHash.unknownBox": "The file contains boxes that were not there when it was signed.",
    "assertion.boxesHash.malformed": "The box hash in the manifest is malformed.",
    "assertion.cloud-data.hardBinding": "A binding to the image bytes is stored outside the file, which is not allowed.",
    "assertion.cloud-data.actions": "An update manifest refers to actions stored outside the file.",
    "assertion.cloud-data.malformed": "A statement stored outside the file is incomplete.",
    "assertion.collectionHash.mismatch": "A file of the collection differs from the one that was signed.",
    "assertion.collectionHash.incorrectFileCount": "A file of the collection is missing.",
    "assertion.collectionHash.invalidURI": "A file name in the collection hash is not allowed.",
    "assertion.collectionHash.malformed": "The collection hash is incomplete.",
    "assertion.ingredient.malformed": "An ingredient statement is incomplete.",
    "assertion.metadata.disallowed": "A metadata statement contains a field that is not allowed.",
    "assertion.outsideManifest": "A statement the claim lists lives outside its manifest.",
    "assertion.timestamp.malformed": "A time-stamp statement is malformed.",
    "ingredient.manifest.missing": "The manifest of an ingredient is missing.",
    "ingredient.manifest.mismatch": "The manifest of an ingredient was changed after it was referenced.",
    "ingredient.claimSignature.missing": "The signature of an ingredient's manifest is missing.",
    "ingredient.claimSignature.mismatch": "The signature of an ingredient's manifest was changed.",
    "hashedURI.missing": "Something the manifest refers to by hash cannot be found.",
    "hashedURI.mismatch": "Something the manifest refers to by hash was changed.",
    "algorithm.unsupported": "The manifest uses an algorithm this verifier does not support.",
    "general.error": "The manifest could not be validated because of an unexpected error.",
}

_FAMILY = {
    "claim": "Problem with the manifest's claim",
    "claimSignature": "Problem with the manifest's signature",
    "signingCredential": "Problem with the signing certificate",
    "timeStamp": "Problem with the signature's time-stamp",
    "timeOfSigning": "About the claimed signing time",
    "assertion": "Problem with a statement in the manifest",
    "ingredient": "Problem with an ingredient (earlier version)",
    "manifest": "Problem with the manifest",
    "hashedURI": "Problem with a hashed reference",
    "algorithm": "Problem with an algorithm",
    "cawg": "About a creator identity assertion",
}


def explain(code: str, sdk_explanation: str | None = None) -> str:
    """Plain words for ``code``; unknown codes get their family's words plus the SDK text."""
    known = EXPLANATIONS.get(code)
    if known is not None:
        return known
    family = _FAMILY.get(code.split(".", 1)[0], "Validation result")
    detail = f": {sdk_explanation}" if sdk_explanation else ""
    return f"{family} ({code}){detail}."


def from_sdk(entry: Mapping[str, object], severity: Severity) -> ValidationCode:
    """A ``ValidationCode`` from one c2pa-python ``validation_results`` entry."""
    code = str(entry.get("code", "general.error"))
    url = entry.get("url")
    sdk = entry.get("explanation")
    sdk_text = str(sdk) if sdk is not None else None
    return ValidationCode(code, str(url) if url is not None else None, severity, explain(code, sdk_text), sdk_text)
