"""`shield protect INPUT... [-o OUTDIR] [--json]`; folders (a library run) with `-o OUT`.

File inputs alone run the per-file recipe, unchanged. A folder among the inputs, or
`--workers`/`--ray`, makes it a library run (shield.pipeline.library): resumable, one
progress bar, one line per failed photo, exit status 1 if any photo failed.

Progress of a file run goes to stderr, stage by stage: on a terminal a bar over the
attack's steps and the name of the running stage; otherwise (a log, a pipe) one plain
line per finished stage with its duration, e.g. ``astronaut.png: attack 11.2 s (40 steps, 1 face)``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

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
@click.option("--format", "output_format", type=click.Choice(("png", "webp")), default="png", show_default=True,
              help="Output format, both lossless: webp is about 30% smaller than png.")
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
    output_format: str,
    recursive: bool,
    workers: int | None,
    ray_address: str | None,
    ray_transfer: str,
    ray_gpus: float,
    batch_size: int,
    as_json: bool,
) -> None:
    """Protect photos: perturbation, fragile watermark, signed C2PA manifest, ledger anchor.

    Writes <name>.shield.png (or .shield.webp with --format webp) per input. Folders (with -o OUT) are protected as a
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
        output_format=output_format,
    )
    if any(p.is_dir() for p in inputs) or workers is not None or ray_address:
        from shield.pipeline.library import LibraryOptions

        if outdir is None:
            raise click.UsageError("a folder run needs an output folder: -o OUT")
        if output_format != "png":
            raise click.UsageError("a folder run writes PNG; --format webp is for photos given one by one")
        lib = LibraryOptions(outdir=outdir, recursive=recursive, workers=workers or 1, batch_size=batch_size,
                             ray_address=ray_address or None, ray_transfer=ray_transfer, ray_gpus=ray_gpus)
        sys.exit(_run_library(list(inputs), options, lib, as_json))
    display = None if as_json else _StageDisplay(sys.stderr)
    try:
        outcomes = protect_files(list(inputs), settings(), options, progress=display)
    finally:
        if display is not None:
            display.close()
    if any(o.manifest.get("development_keys") for o in outcomes):
        notice("signed with development keys (generated on first use, password stored beside them): not for publishing; see `shield keys init`")
    if as_json:
        emit_json(outcomes)
        return
    for o in outcomes:
        click.echo(f"{o.input} -> {o.output}")
        click.echo(f"  asset id   {o.asset_id}")
        if o.psnr is not None:
            click.echo(f"  quality    PSNR {o.psnr:.1f} dB, SSIM {o.ssim:.3f} vs input, {o.protected_what}")
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
        click.echo(f"  output     {_size_line(o)}")
        for note in o.notes:
            click.echo(f"  note       {note}")


def _size_line(o: Any) -> str:
    """``WEBP lossless, 0.61 MB (input 0.12 MB, 5.1x)``."""
    try:
        out_size, in_size = o.output.stat().st_size, o.input.stat().st_size
    except OSError:
        return "written"
    kind = o.output.suffix.lstrip(".").upper()
    return f"{kind} lossless, {out_size / 1e6:.2f} MB (input {in_size / 1e6:.2f} MB, {out_size / max(in_size, 1):.1f}x)"


class _StageDisplay:
    """Shows :class:`~shield.pipeline.protect.StageEvent` values on ``stream``.

    On a terminal: the running stage's name on one line, replaced by a bar over the
    attack's steps while it runs. Elsewhere: one line per finished stage with its time.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.bar: Any = None
        self.status = False

    def __call__(self, event: Any) -> None:
        from shield.pipeline.protect import Stage, StageState

        name = event.photo.name if event.photo is not None else "all photos"
        if not self.tty:
            if event.state is StageState.FINISHED:
                detail = f" ({event.detail})" if event.detail else ""
                took = f"{event.seconds:.2f}" if event.seconds < 1 else f"{event.seconds:.1f}"
                click.echo(f"{name}: {event.stage.value} {took} s{detail}", file=self.stream)
            return
        if event.stage is Stage.ATTACK and event.state is StageState.STARTED and event.total:
            self._clear()
            self.bar = click.progressbar(length=event.total, label=f"{name}: attack", file=self.stream, show_eta=True, show_pos=True, show_percent=True)
            self.bar.__enter__()
        elif event.state is StageState.ADVANCED and self.bar is not None:
            self.bar.update(event.done - self.bar.pos)
        elif event.state is StageState.FINISHED and event.stage is Stage.ATTACK:
            self._end_bar()
        elif event.state is StageState.STARTED:
            self._clear()
            click.echo(f"{name}: {event.stage.value}...", file=self.stream, nl=False)
            self.status = True

    def _clear(self) -> None:
        if self.status:
            click.echo("\r\x1b[K", file=self.stream, nl=False)
            self.status = False

    def _end_bar(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def close(self) -> None:
        self._end_bar()
        self._clear()


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
