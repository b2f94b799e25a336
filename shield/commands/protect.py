"""`shield protect INPUT... [-o OUTDIR] [--json]`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shield.commands._common import emit_json, json_option, notice, settings

STRENGTHS = ("fast", "balanced", "max")


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--outdir", type=click.Path(path_type=Path, file_okay=False), help="Output folder (default: beside each input).")
@click.option("--strength", type=click.Choice(STRENGTHS), default="balanced", show_default=True, help="Adversarial preset: time vs strength.")
@click.option("--whole-frame", is_flag=True, help="Protect the whole image when no face is found.")
@click.option("--no-adversarial", is_flag=True, help="Skip the perturbation: watermark, C2PA and ledger only.")
@click.option("--batch", is_flag=True, help="Anchor all photos as one Merkle root (cheaper per photo).")
@click.option("--ingredient", is_flag=True, help="Embed the original as a C2PA ingredient.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (inputs are never overwritten).")
@click.option("--seed", type=int, help="Seed for a reproducible perturbation.")
@json_option
def protect(
    inputs: tuple[Path, ...],
    outdir: Path | None,
    strength: str,
    whole_frame: bool,
    no_adversarial: bool,
    batch: bool,
    ingredient: bool,
    overwrite: bool,
    seed: int | None,
    as_json: bool,
) -> None:
    """Protect photos: perturbation, fragile watermark, signed C2PA manifest, ledger anchor.

    Writes <name>.shield.png per input.
    """
    from shield.pipeline import ProtectOptions, protect_files

    options = ProtectOptions(
        outdir=outdir,
        strength=strength,
        whole_frame=whole_frame,
        adversarial=not no_adversarial,
        batch=batch,
        ingredient=ingredient,
        overwrite=overwrite,
        seed=seed,
    )
    outcomes = protect_files(list(inputs), settings(), options, progress=None if as_json else _progress_bar)
    if any(o.manifest.get("development_keys") for o in outcomes):
        notice("signed with development keys (generated on first use, password stored beside them): not for publishing; see `shield keys init`")
    if as_json:
        emit_json(outcomes)
        return
    for o in outcomes:
        click.echo(f"{o.input} -> {o.output}")
        click.echo(f"  asset id   {o.asset_id}")
        if o.psnr is not None:
            click.echo(f"  quality    PSNR {o.psnr:.1f} dB, SSIM {o.ssim:.3f} vs input ({o.faces} face{'s' if o.faces != 1 else ''})")
        for i, face in enumerate(o.face_stages, 1):
            broke = [f"{s.model} ({s.role})" for s in face.stages if s.broken]
            held = [f"{s.model} ({s.role})" for s in face.stages if s.broken is False]
            untested = [s.model for s in face.stages if s.broken is None]
            click.echo(f"  face {i}     {len(broke)} of {len(broke) + len(held)} attacked stages broke (self-check on the final photo)")
            if broke:
                click.echo(f"    broke    {', '.join(broke)}")
            if held:
                click.echo(f"    held     {', '.join(held)}")
            if untested:
                click.echo(f"    n/a      {', '.join(untested)} (already fails on the original)")
        click.echo(f"  watermark  {o.watermark['scheme']}, PSNR {o.watermark['psnr']:.1f} dB")
        click.echo(f"  manifest   {o.manifest['state']} by {o.manifest['signer']}")
        ledger = o.ledger
        if ledger.get("status") == "queued":
            click.echo(f"  ledger     {ledger['message']}")
        else:
            click.echo(f"  ledger     {ledger.get('status')}: chain {ledger.get('chain_id')}, tx {ledger.get('tx')}, block {ledger.get('block')}")
        for note in o.notes:
            click.echo(f"  note       {note}")


def _progress_bar(label: str, total: int) -> Callable[[int], None]:
    bar: Any = click.progressbar(length=total, label=label, file=sys.stderr)
    bar.__enter__()
    state = {"done": 0}

    def advance(n: int) -> None:
        bar.update(n)
        state["done"] += n
        if state["done"] >= total:
            bar.__exit__(None, None, None)

    return advance
