"""Provenance: the local keystore and signed C2PA manifests (c2pa-python).

Recipes: ``ensure_keystore`` / ``open_keystore`` to get keys, ``sign_image`` to embed a
signed manifest, ``read_manifest`` to read and validate one against explicit trust
anchors. ``jumbf`` is the expert layer that reads raw manifest bytes from a PNG.
"""

from shield.provenance.errors import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    InsecurePermissionsError,
    KeystoreCorruptError,
    KeystoreExistsError,
    KeystoreMissingError,
    ManifestReadError,
    PasswordUnavailableError,
    SigningError,
    WrongPasswordError,
)
from shield.provenance.keystore import (
    KeystoreInfo,
    RotationResult,
    UnlockedKeys,
    default_publisher_name,
    development_notice,
    ensure_keystore,
    export_trust,
    init_keystore,
    keystore_exists,
    keystore_info,
    local_trust_anchors,
    open_keystore,
    rotate_keystore,
)
from shield.provenance.manifest import ManifestSpec, SignedAsset, sign_image
from shield.provenance.reading import (
    LedgerTarget,
    ManifestReport,
    ManifestState,
    ShieldAssertion,
    SignerInfo,
    has_manifest,
    read_manifest,
)
from shield.provenance.validation import ValidationCode, explain

__all__ = [
    "CertificateExpiredError",
    "CertificateNotYetValidError",
    "InsecurePermissionsError",
    "KeystoreCorruptError",
    "KeystoreExistsError",
    "KeystoreMissingError",
    "ManifestReadError",
    "PasswordUnavailableError",
    "SigningError",
    "WrongPasswordError",
    "KeystoreInfo",
    "RotationResult",
    "UnlockedKeys",
    "default_publisher_name",
    "development_notice",
    "ensure_keystore",
    "export_trust",
    "init_keystore",
    "keystore_exists",
    "keystore_info",
    "local_trust_anchors",
    "open_keystore",
    "rotate_keystore",
    "LedgerTarget",
    "ManifestReport",
    "ManifestSpec",
    "ManifestState",
    "ShieldAssertion",
    "SignedAsset",
    "SignerInfo",
    "read_manifest",
    "has_manifest",
    "sign_image",
    "ValidationCode",
    "explain",
]
