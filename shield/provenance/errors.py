"""Errors of the keystore and of C2PA signing/reading, each with a one-line fix."""

from __future__ import annotations

from shield.errors import KeystoreError, ProvenanceError

__all__ = [
    "KeystoreMissingError",
    "KeystoreExistsError",
    "KeystoreCorruptError",
    "WrongPasswordError",
    "PasswordUnavailableError",
    "InsecurePermissionsError",
    "CertificateExpiredError",
    "CertificateNotYetValidError",
    "SigningError",
    "ManifestReadError",
]


class KeystoreMissingError(KeystoreError):
    """No keystore (or one of its files) where the settings point."""

    default_fix = "run `shield keys init` (or set SHIELD_KEYS_DIR to an existing keystore)"


class KeystoreExistsError(KeystoreError):
    """``init`` was asked to create a keystore where one already exists."""

    default_fix = "use the existing keys, `shield keys rotate` to renew the signing certificate, or choose another SHIELD_KEYS_DIR"


class KeystoreCorruptError(KeystoreError):
    """A keystore file cannot be parsed or does not match the others."""

    default_fix = "restore the keystore from a backup, or move it away and run `shield keys init`"


class WrongPasswordError(KeystoreError):
    """The password does not decrypt the private keys."""

    default_fix = "set the keystore password in SHIELD_KEYS_PASSWORD (or the variable named by SHIELD_KEYS_PASSWORD_ENV)"


class PasswordUnavailableError(KeystoreError):
    """The keystore needs a password, none was given and there is no terminal to ask on."""

    default_fix = "set the keystore password in SHIELD_KEYS_PASSWORD (or the variable named by SHIELD_KEYS_PASSWORD_ENV)"


class InsecurePermissionsError(KeystoreError):
    """A private key file or the keystore folder is readable by other users."""

    default_fix = "chmod 700 the keystore folder and chmod 600 the files in it"


class CertificateExpiredError(KeystoreError):
    """The signing (or root) certificate is past its validity period."""

    default_fix = "run `shield keys rotate` to issue a new signing certificate"


class CertificateNotYetValidError(KeystoreError):
    """The signing (or root) certificate is not valid yet (clock skew or a future date)."""

    default_fix = "check the system clock; if it is right, run `shield keys rotate`"


class SigningError(ProvenanceError):
    """The C2PA SDK refused to build or sign the manifest."""

    default_fix = "run with --debug for details; check `shield keys show`"


class ManifestReadError(ProvenanceError):
    """The file's C2PA data could not be read at all (not the same as an invalid manifest)."""

    default_fix = "the file may be truncated or not a supported image; re-export it from its source"
