"""`shield audit [--json] [--publisher ADDR] [--since ISO8601]`."""

from __future__ import annotations

from datetime import datetime

import click

from shield.commands._common import emit_json, json_option, notice, settings

__all__ = ["audit"]


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint="--since") from exc


@click.command()
@click.option("--publisher", metavar="ADDR", help="Only entries of this publisher address.")
@click.option("--since", metavar="ISO8601", help="Only entries anchored at or after this time (UTC if no zone).")
@json_option
def audit(publisher: str | None, since: str | None, as_json: bool) -> None:
    """List ledger records and batches, cross-checked with storage and the local index."""
    from shield.ledger import audit as run_audit
    from shield.ledger import open_ledger

    cfg = settings()
    ledger = open_ledger(cfg, None)
    try:
        report = run_audit(cfg, ledger, publisher=publisher, since=_since(since))
    finally:
        ledger.close()
    if as_json:
        emit_json(report)
        return
    click.echo(f"chain {report.chain_id}  registry {report.contract}  blocks {report.from_block}-{report.to_block}")
    click.echo(f"{'kind':<13}{'id / root':<34}{'publisher':<44}{'time (UTC)':<21}{'block':>7}  flags")
    for e in report.entries:
        key = (e.asset_id or e.batch_root or b"").hex()
        key = key if len(key) <= 32 else key[:29] + "..."
        when = e.timestamp.strftime("%Y-%m-%d %H:%M:%S") if e.timestamp else "-"
        flags = ",".join(e.flags) or "ok"
        click.echo(f"{e.kind:<13}{key:<34}{e.publisher or '-':<44}{when:<21}{e.block if e.block is not None else '-':>7}  {flags}")
    summary = ", ".join(f"{v} {k}" for k, v in sorted(report.counts.items())) or "no entries"
    click.echo(summary)
    if not report.clean:
        notice("some entries are flagged; see the flags column (--json for details)")
