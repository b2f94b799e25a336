"""`shield verify IMAGE [--json] [--tamper-map OUT.png]`; exit status is the verdict."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from shield.commands._common import emit_json, json_option, settings


@click.command()
@click.argument("image", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--tamper-map", type=click.Path(path_type=Path, dir_okay=False), help="Write a PNG showing changed blocks.")
@click.option("--trust", "trust", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="PEM file of the publisher's trust anchors, as `shield keys export-trust` writes it (default: the local keystore's).")
@click.option("--proof", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="Merkle proof sidecar of a batch-anchored photo.")
@click.option("--offline", is_flag=True, help="Skip the ledger lookup.")
@json_option
def verify(image: Path, tamper_map: Path | None, trust: Path | None, proof: Path | None, offline: bool, as_json: bool) -> None:
    """Check a photo: authentic and intact, modified (and where), or of unknown origin.

    Exit status: 0 authentic, 1 modified/re-encoded/invalid, 2 no provenance, 3 could not check.
    A check that could not run is followed by "to do" lines: the exact flag or setting to pass.
    """
    from shield.pipeline import verify_file
    from shield.report import render_text

    anchors = trust.read_bytes() if trust else None
    report = verify_file(image, settings(), trust_anchors=anchors, use_ledger=not offline, tamper_map=tamper_map, proof_path=proof)
    if as_json:
        emit_json(report)
    else:
        click.echo(render_text(report))
        if tamper_map is not None and report.watermark.status not in ("absent", "unchecked"):
            click.echo(f"  tamper map {tamper_map}")
        elif tamper_map is not None:
            click.echo(f"  tamper map not written: no fragile watermark was checked ({report.watermark.status})")
    sys.exit(report.exit_code)
