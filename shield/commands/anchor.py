"""`shield anchor --pending` drains the outbox; `--register-publisher` binds our address
to the C2PA certificate fingerprint and watermark key, with the proof that we hold both.

A rejected anchor (the asset id is already anchored by this publisher with other hashes)
is an error: the command prints every outcome, then exits non-zero."""

from __future__ import annotations

import click

from shield.commands._common import emit_json, json_option, notice, settings

__all__ = ["anchor"]


@click.command()
@click.option("--pending", is_flag=True, help="Send every queued anchoring request.")
@click.option("--register-publisher", "register", is_flag=True,
              help="Register (or update) this publisher's certificate fingerprint and watermark key on chain.")
@click.option("--revoke", metavar="ID_OR_ROOT", help="Revoke our record (32 hex asset id) or batch (64 hex root).")
@click.option("--reason", default="", help="Reason recorded with --revoke.")
@json_option
def anchor(pending: bool, register: bool, revoke: str | None, reason: str, as_json: bool) -> None:
    """Drain queued anchors, register the publisher, or revoke an entry."""
    from shield.ledger import AnchorStatus, AssetTakenError, open_ledger
    from shield.provenance.keystore import ensure_keystore

    if not (pending or register or revoke):
        raise click.UsageError("say what to do: --pending, --register-publisher or --revoke")
    cfg = settings()
    keys = ensure_keystore(cfg)
    ledger = open_ledger(cfg, keys.eth_private_key, publisher_keys=keys)
    doc: dict[str, object] = {}
    try:
        if register:
            doc["register_tx"] = ledger.register_publisher(keys.cert_fingerprint, keys.watermark_public_key)
        if revoke:
            try:
                key = bytes.fromhex(revoke.removeprefix("0x"))
            except ValueError as exc:
                raise click.BadParameter("not hex", param_hint="--revoke") from exc
            doc["revoke_tx"] = ledger.revoke(key, reason)
        if pending:
            if not register and ledger.online:
                # Records of a publisher the registry does not know fail verification:
                # work queued while offline was never preceded by a registration.
                ledger.register_publisher(keys.cert_fingerprint, keys.watermark_public_key)
            doc["outcomes"] = ledger.drain()
    finally:
        ledger.close()
    rejected = [o for o in doc.get("outcomes", []) if o.status is AnchorStatus.REJECTED]  # type: ignore[attr-defined]
    if as_json:
        emit_json(doc)
        if rejected:
            raise AssetTakenError(f"{len(rejected)} anchoring request(s) rejected: {rejected[0].message}")
        return
    if register:
        click.echo(f"publisher registered: tx {doc['register_tx']}" if doc["register_tx"] else "publisher already registered")
    if revoke:
        click.echo(f"revoked: tx {doc['revoke_tx']}")
    for o in doc.get("outcomes", []):  # type: ignore[attr-defined]
        click.echo(f"{o.asset_id.hex()}  {o.status.value:<22} {o.tx_hash or '-'}  {o.message}")
    if pending and not doc["outcomes"]:
        notice("nothing queued")
    if rejected:
        raise AssetTakenError(f"{len(rejected)} anchoring request(s) rejected: {rejected[0].message}")
