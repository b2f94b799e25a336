"""`shield protect INPUT... [-o OUTDIR] [--json]`; folders (a library run) with `-o OUT`.

File inputs alone run the per-file recipe, unchanged. A folder among the inputs, or
`--workers`/`--ray`, makes it a library run (shield.pipeline.library): resumable, one
progress bar, one line per failed photo, exit status 1 if any photo failed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shield.commands._common import emit_json, json_option, notice, settings

STRENGTHS = ("fast", "balanced", "max")


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--outdir", type=click.Path(path_type=Path, file_okay=False), help="Output folder (default: beside each input).")
@click.option("--strength", type=click.Choice(STRENGTHS), default="balanced", show_default=True, help="Adversarial preset: time vs strength.")
@click.option("--whole-frame", is_flag=True, help="Protect the whole image when no face is found.")
@click.option("--no-adversarial", is_flag=True, help="Skip the perturbation: watermark, C2PA and ledger only.")
@click.option("--batch", is_flag=True, help="Anchor all photos as one Merkle root (cheaper per photo).")
@click.option("--ingredient", is_flag=True, help="Embed the original as a C2PA ingredient.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (inputs are never overwritten).")
@click.option("--seed", type=int, help="Seed for a reproducible perturbation.")
@click.option("--recursive", is_flag=True, help="Library run: also walk sub-folders of folder inputs.")
@click.option("--workers", type=click.IntRange(min=1), help="Library run: protect with N processes (or N Ray actors).")
@click.option("--ray", "ray_address", envvar="SHIELD_RAY_ADDRESS", metavar="ADDRESS",
              help="Library run on Ray: a cluster address, or `auto` for a local Ray instance (needs shield[ray]).")
@click.option("--ray-transfer", type=click.Choice(("bytes", "path")), default="bytes", show_default=True,
              help="Ray: send photos as bytes, or have actors read and write them on a path all nodes share.")
@click.option("--ray-gpus", type=click.FloatRange(min=0), default=0.0, help="Ray: GPUs per actor (runs it with SHIELD_DEVICE=cuda).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Library run: photos per Merkle batch on the ledger.")
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
    recursive: bool,
    workers: int | None,
    ray_address: str | None,
    ray_transfer: str,
    ray_gpus: float,
    batch_size: int,
    as_json: bool,
) -> None:
    """Protect photos: perturbation, fragile watermark, signed C2PA manifest, ledger anchor.

    Writes <name>.shield.png per input. Folders (with -o OUT) are protected as a
    library: outputs mirror the folders in OUT, a rerun continues where a run stopped.
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
    if any(p.is_dir() for p in inputs) or workers is not None or ray_address:
        from shield.pipeline.library import LibraryOptions

        if outdir is None:
            raise click.UsageError("a folder run needs an output folder: -o OUT")
        lib = LibraryOptions(outdir=outdir, recursive=recursive, workers=workers or 1, batch_size=batch_size,
                             ray_address=ray_address or None, ray_transfer=ray_transfer, ray_gpus=ray_gpus)
        sys.exit(_run_library(list(inputs), options, lib, as_json))
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


def _run_library(inputs: list[Path], options: Any, lib: Any, as_json: bool) -> int:
    """A folder run: one progress bar, one stderr line per failure, a summary; 1 if any failed."""
    from shield.pipeline.library import protect_library

    bar = _LibraryBar(enabled=not as_json)
    try:
        report = protect_library(inputs, settings(), options, lib, progress=bar)
    finally:
        bar.close()
    if any(o.manifest.get("development_keys") for o in report.protected):
        notice("signed with development keys (generated on first use, password stored beside them): not for publishing; see `shield keys init`")
    if as_json:
        emit_json(report)
    else:
        click.echo(f"{len(report.protected)} protected, {report.skipped} already done, {len(report.failures)} failed "
                   f"of {report.total} photos in {lib.outdir}")
        click.echo(f"ledger: {report.anchored} anchored, {report.queued} queued")
        for note in report.notes:
            click.echo(f"note: {note}")
        if report.failures:
            click.echo("failed (rerun the same command after fixing them; done photos are skipped):")
            for f in report.failures:
                click.echo(f"  {f.input}: {f.reason}")
    return 0 if report.ok else 1


class _LibraryBar:
    """Photos done, ETA and failures on one bar (stderr); failures also as their own lines."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.failed = enabled, 0
        self.bar: Any = None

    def __call__(self, event: Any) -> None:
        if event.kind == "start":
            if self.enabled:
                self.bar = click.progressbar(length=event.total, label="protecting", file=sys.stderr, show_eta=True,
                                             item_show_func=lambda _: f"{self.failed} failed" if self.failed else None)
                self.bar.__enter__()
                self.bar.update(event.already)
            return
        if event.kind == "failed":
            self.failed += 1
            click.echo(f"\nshield: failed: {event.input}: {event.reason}", err=True)
        if self.bar is not None:
            self.bar.update(1, event.input)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
