"""Every validation code has plain words; unknown codes are explained, never dropped."""

from __future__ import annotations

from shield.provenance.validation import EXPLANATIONS, explain, from_sdk

REQUIRED = [
    "signingCredential.trusted",
    "signingCredential.untrusted",
    "signingCredential.expired",
    "assertion.dataHash.mismatch",
    "assertion.hashedURI.mismatch",
    "claimSignature.mismatch",
    "claimSignature.validated",
    "signingCredential.ocsp.skipped",
]


def test_known_codes_have_sentences():
    for code in REQUIRED:
        assert code in EXPLANATIONS
    for code, text in EXPLANATIONS.items():
        assert text.endswith(".") and len(text) > 20 and code not in text, code


def test_unknown_code_keeps_family_and_sdk_text():
    text = explain("signingCredential.somethingNew", "cert chain too long")
    assert "signing certificate" in text and "somethingNew" in text and "cert chain too long" in text
    assert "cawg.identity.bad" in explain("cawg.identity.bad")
    assert explain("totally.unknown").startswith("Validation result")


def test_from_sdk_entry():
    code = from_sdk({"code": "assertion.dataHash.mismatch", "url": "self#jumbf=x", "explanation": "hash mismatch"}, "failure")
    assert code.code == "assertion.dataHash.mismatch" and code.url == "self#jumbf=x"
    assert code.severity == "failure" and code.sdk_explanation == "hash mismatch"
    assert "modified" in code.explanation
    bare = from_sdk({}, "warning")
    assert bare.code == "general.error" and bare.url is None
