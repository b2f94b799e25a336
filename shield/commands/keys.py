"""`shield keys`: create, inspect, export and rotate the local keystore."""

from __future__ import annotations

import getpass
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from shield.commands._common import emit_json, json_option, notice, settings

if TYPE_CHECKING:
    from shield.provenance import KeystoreInfo

__all__ = ["keys"]

#: `show` warns when the signing certificate expires sooner than this.
EXPIRY_WARNING = timedelta(days=30)


@dataclass(frozen=True)
class KeysStatus:
    """`shield keys show` output: the keystore facts plus what needs attention."""

    info: KeystoreInfo
    certificate_valid_now: bool
    warnings: tuple[str, ...]


@click.group()
def keys() -> None:
    """Manage the keystore: C2PA signing certificate, Ethereum account, watermark key."""


def _new_password(prompt: bool, env_name: str) -> str | None:
    from shield.provenance import PasswordUnavailableError
    from shield.provenance.keystore import password_from_env

    from_env = password_from_env(settings())
    if from_env or not prompt:
        return from_env
    if not sys.stdin.isatty():
        raise PasswordUnavailableError("--prompt needs a terminal", fix=f"set {env_name} instead")
    first = getpass.getpass("New keystore password: ")
    if first != getpass.getpass("Repeat it: "):
        raise click.UsageError("the two passwords differ")
    if len(first) < 8:
        raise click.UsageError("use a password of at least 8 characters")
    return first


@keys.command("init")
@click.option("--name", help="Publisher name for the signing certificate (default: $USER).")
@click.option("--prompt", is_flag=True, help="Ask for a password instead of creating development keys.")
@json_option
def init_cmd(name: str | None, prompt: bool, as_json: bool) -> None:
    """Create the keystore. Without a password (env or --prompt) it holds development keys."""
    from shield.provenance import default_publisher_name, development_notice, init_keystore

    cfg = settings()
    password = _new_password(prompt, cfg.keys_password_env)
    info = init_keystore(cfg.keys_dir, password=password, name=name or default_publisher_name())
    if info.development:
        notice(development_notice(info.keys_dir))
    if as_json:
        emit_json(info)
        return
    click.echo(f"created keystore in {info.keys_dir}")
    _print_info(info)


def _print_info(info: KeystoreInfo) -> None:
    rows = [
        ("keystore", str(info.keys_dir)),
        ("kind", "development keys" if info.development else "password-protected keys"),
        ("publisher", info.publisher_name),
        ("certificate", f"{info.cert_subject} (issuer {info.cert_issuer})"),
        ("valid", f"{info.cert_not_before:%Y-%m-%d} .. {info.cert_not_after:%Y-%m-%d} UTC"),
        ("fingerprint", f"sha256:{info.cert_fingerprint}"),
        ("algorithm", info.c2pa_alg.upper()),
        ("eth address", info.eth_address),
        ("watermark key", info.watermark_public_key),
        ("trust anchors", str(info.trust_anchors_path)),
    ]
    for key, value in rows:
        click.echo(f"{key:>14}: {value}")


@keys.command("show")
@json_option
def show_cmd(as_json: bool) -> None:
    """Show the keystore (no password needed) and anything that needs attention."""
    from shield.errors import KeystoreError
    from shield.provenance import development_notice, keystore_info
    from shield.provenance.keystore import check_permissions

    cfg = settings()
    info = keystore_info(cfg.keys_dir)
    now = datetime.now(UTC)
    warnings = []
    try:
        check_permissions(cfg.keys_dir)
    except KeystoreError as exc:
        warnings.append(f"{exc.message} (fix: {exc.fix})")
    valid = info.cert_not_before <= now <= info.cert_not_after
    if not valid:
        warnings.append("the signing certificate is not valid now (fix: shield keys rotate)")
    elif info.cert_not_after - now < EXPIRY_WARNING:
        warnings.append(f"the signing certificate expires on {info.cert_not_after:%Y-%m-%d} (fix: shield keys rotate)")
    if info.development:
        notice(development_notice(info.keys_dir))
    if as_json:
        emit_json(KeysStatus(info, valid, tuple(warnings)))
        return
    _print_info(info)
    for line in warnings:
        click.echo(f"{'warning':>14}: {line}")


@keys.command("export-trust")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def export_trust_cmd(out: Path, as_json: bool) -> None:
    """Write the trust-anchor PEM that verifiers pass to `shield verify`."""
    from shield.provenance import export_trust, keystore_info

    cfg = settings()
    info = keystore_info(cfg.keys_dir)
    path = export_trust(cfg.keys_dir, out)
    if info.development:
        notice("this trust anchor belongs to development keys: do not hand it out as a publisher identity")
    if as_json:
        emit_json({"trust_anchors": path, "publisher_name": info.publisher_name, "development": info.development})
    else:
        click.echo(f"wrote trust anchors to {path}")


@keys.command("rotate")
@click.option("--name", help="New publisher name (default: keep the current one).")
@json_option
def rotate_cmd(name: str | None, as_json: bool) -> None:
    """Issue a new signing certificate and key from the same root CA; archive the old ones."""
    from shield.provenance import development_notice, keystore_info, rotate_keystore

    cfg = settings()
    result = rotate_keystore(cfg, name=name)
    if keystore_info(cfg.keys_dir).development:
        notice(development_notice(cfg.keys_dir))
    notice(
        "the ledger still registers this publisher with the old certificate fingerprint: "
        "update the publisher registration on the ledger before protecting new photos"
    )
    if as_json:
        emit_json(result)
        return
    click.echo(f"new signing certificate sha256:{result.new_fingerprint} valid until {result.cert_not_after:%Y-%m-%d}")
    click.echo(f"old certificate sha256:{result.old_fingerprint} archived in {result.archived_to}")
