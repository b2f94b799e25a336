"""`shield audit [--json] [--publisher ADDR] [--since ISO8601]`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import click

from shield.commands._common import emit_json, home_line, json_option, notice, settings

if TYPE_CHECKING:
    from shield.ledger.audit import AuditEntry

__all__ = ["audit", "summary_line"]

#: Entry kinds in the order the summary names them, with their singular and plural.
KINDS: dict[str, tuple[str, str]] = {
    "publisher": ("publisher", "publishers"),
    "record": ("record", "records"),
    "batch": ("batch", "batches"),
    "batch-member": ("batch member", "batch members"),
    "local": ("local entry", "local entries"),
}
#: Widest file name shown in the text table (longer ones keep their end: the extension).
FILE_WIDTH = 28


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint="--since") from exc


def summary_line(counts: Mapping[str, int]) -> str:
    """``24 records, 1 batch, 3 batch members; flagged: 2 duplicate`` from the report's
    counts (entry kinds and flags share that table)."""
    kinds = [f"{counts[k]} {one if counts[k] == 1 else many}" for k, (one, many) in KINDS.items() if counts.get(k)]
    if not kinds:
        return "no entries"
    flags = [f"{n} {k}" for k, n in sorted(counts.items()) if k not in KINDS and n]
    return ", ".join(kinds) + ("; flagged: " + ", ".join(flags) if flags else "; none flagged")


def _file(name: str | None) -> str:
    if not name:
        return "-"
    return name if len(name) <= FILE_WIDTH else "..." + name[-(FILE_WIDTH - 3):]


def _table(entries: Sequence[AuditEntry]) -> list[str]:
    """The text table; the file column only when the local index named some file."""
    with_files = any(e.file_name for e in entries)
    file_head = f"{'file':<{FILE_WIDTH + 2}}" if with_files else ""
    lines = [f"{'kind':<13}{'id / root':<34}{file_head}{'publisher':<44}{'time (UTC)':<21}{'block':>7}  flags"]
    for e in entries:
        key = (e.asset_id or e.batch_root or b"").hex()
        key = key if len(key) <= 32 else key[:29] + "..."
        file = f"{_file(e.file_name):<{FILE_WIDTH + 2}}" if with_files else ""
        when = e.timestamp.strftime("%Y-%m-%d %H:%M:%S") if e.timestamp else "-"
        flags = ",".join(e.flags) or "ok"
        block = e.block if e.block is not None else "-"
        lines.append(f"{e.kind:<13}{key:<34}{file}{e.publisher or '-':<44}{when:<21}{block:>7}  {flags}")
    return lines


@click.command()
@click.option("--publisher", metavar="ADDR", help="Only entries of this publisher address.")
@click.option("--since", metavar="ISO8601", help="Only entries anchored at or after this time (UTC if no zone).")
@json_option
def audit(publisher: str | None, since: str | None, as_json: bool) -> None:
    """List ledger records and batches, cross-checked with storage and the local index.

    Reads only: with the embedded chain it does not start a stopped devnet (`shield chain up`
    does), it says so and exits 18."""
    from shield.ledger import ChainUnavailableError, Devnet
    from shield.ledger import audit as run_audit
    from shield.ledger import open_ledger

    cfg = settings()
    when = _since(since)
    if cfg.chain.embedded:
        devnet = Devnet(cfg)
        if devnet.pid() is None:
            raise ChainUnavailableError(
                f"the local devnet of the home {cfg.home} is not running ({devnet.url}); "
                "audit reads the chain and does not start it",
                fix="start it with `shield chain up`, then run `shield audit` again")
    ledger = open_ledger(cfg, None, start_devnet=False)
    try:
        report = run_audit(cfg, ledger, publisher=publisher, since=when)
    finally:
        ledger.close()
    if as_json:
        emit_json(report)
        return
    click.echo(home_line(cfg))
    click.echo(f"chain {report.chain_id}  registry {report.contract}  blocks {report.from_block}-{report.to_block}")
    for line in _table(report.entries):
        click.echo(line)
    click.echo(summary_line(report.counts))
    if not report.clean:
        notice("some entries are flagged; see the flags column (--json for details)")
