"""`shield models`: list the model zoo, verify checksums, import official checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from shield.commands._common import emit_json, json_option, notice, settings

if TYPE_CHECKING:
    from shield.adversarial.zoo import ImportedModel

__all__ = ["models"]

def _size(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f} MB"


@click.group()
def models() -> None:
    """Named models: pretrained networks from registry packages, our surrogates, official checkpoints you import.

    shield never downloads weights: `fetch` tells you where an official file comes
    from, and `import` checks and registers the file you downloaded.
    """


@models.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """Every known model: role, status, size, SHA-256 prefix, licence, source and what it is used for."""
    from shield.adversarial.zoo import list_models

    rows = list_models(home=settings().home)
    if as_json:
        emit_json({"models": rows})
        return
    click.echo(f"{'name':<20} {'role':<12} {'status':<13} {'size':>9}  {'sha256':<12}  {'licence':<22}  used for (source)")
    for row in rows:
        digest = row.sha256[:12] if row.sha256 else "-"
        licence = (row.licence or "-").split(" (")[0].split(";")[0]
        source = f" ({row.origin})" if row.origin else ""
        click.echo(f"{row.name:<20} {row.role or '-':<12} {row.status.value:<13} {_size(row.bytes):>9}  {digest:<12}  {licence:<22}  {row.purpose}{source}")


@models.command("verify")
@json_option
def verify_cmd(as_json: bool) -> None:
    """Re-hash every shipped and imported weights file against its recorded SHA-256.

    Exit status 0 when every file is intact, 19 when any is MISMATCH, MISSING or INVALID
    (official models that were never imported are not a problem).
    """
    from shield.adversarial.zoo import Check, VerificationFailedError, verify_all

    report = verify_all(home=settings().home)
    if as_json:
        emit_json({"ok": report.ok, "results": report.results})
    else:
        for result in report.results:
            digest = result.actual_sha256[:12] if result.actual_sha256 else "-"
            click.echo(f"{result.status.value.upper():<13} {result.name:<20} {digest:<12}  {result.detail}")
    if not report.ok:
        bad = [f"{r.name} ({r.status.value})" for r in report.results if r.status not in (Check.OK, Check.NOT_IMPORTED)]
        raise VerificationFailedError(f"weights failed verification: {', '.join(bad)}")


@models.command("import")
@click.argument("name")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Replace an earlier import of a different file.")
@json_option
def import_cmd(name: str, path: Path, replace: bool, as_json: bool) -> None:
    """Check an official checkpoint PATH (layout, shapes, a test forward pass) and register it as NAME."""
    from shield.adversarial.zoo import Source, get_spec, import_checkpoint

    spec = get_spec(name)
    if not as_json and spec.source is Source.OFFICIAL:
        notice(f"checking {path} as {spec.name} ({spec.file_name}); this loads the whole network")
    record = import_checkpoint(spec.name, path, home=settings().home, replace=replace)
    if as_json:
        emit_json(record)
        return
    _print_record(record)


def _print_record(record: ImportedModel) -> None:
    rows = [
        ("model", record.name),
        ("file", str(record.file)),
        ("sha256", record.sha256),
        ("size", _size(record.bytes)),
        ("source", str(record.source_path)),
        ("imported", f"{record.imported_utc:%Y-%m-%d %H:%M:%S} UTC"),
    ]
    for key, value in rows:
        click.echo(f"{key:>9}: {value}")


@models.command("fetch")
@click.argument("name")
@json_option
def fetch_cmd(name: str, as_json: bool) -> None:
    """Say where NAME's weights come from. shield never downloads: for an official model
    that is not imported this prints the URL and the import command, and exits 19."""
    from shield.adversarial.zoo import fetch, fetch_info

    cfg = settings()
    info = fetch_info(name, home=cfg.home)
    if as_json:
        emit_json(info)
    elif info.path is not None:
        click.echo(f"{info.name} is available at {info.path}")
    if info.path is None:
        fetch(name, home=cfg.home)  # raises DownloadRefusedError naming the URL
