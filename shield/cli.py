"""The `shield` command: parse, call the API, print. Nothing else lives here.

Each command lives in ``shield/commands/<name>.py`` and is imported only when it is
run, so that `shield verify` does not pay for importing torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from typing import Any

import click

from shield.errors import ShieldError

__all__ = ["main", "cli"]

#: command name -> (module, attribute). Modules live in shield.commands.
COMMANDS: dict[str, tuple[str, str]] = {
    "protect": ("protect", "protect"),
    "verify": ("verify", "verify"),
    "audit": ("audit", "audit"),
    "anchor": ("anchor", "anchor"),
    "keys": ("keys", "keys"),
    "chain": ("chain", "chain"),
    "models": ("models", "models"),
    "bench": ("bench", "bench"),
    "serve": ("serve", "serve"),
}

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


def _available(module_name: str) -> bool:
    return importlib.util.find_spec(f"shield.commands.{module_name}") is not None


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (module, _) in COMMANDS.items() if _available(module))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not _available(COMMANDS[cmd_name][0]):
            return None
        module_name, attr = COMMANDS[cmd_name]
        module = importlib.import_module(f"shield.commands.{module_name}")
        command: click.Command = getattr(module, attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
@click.version_option(package_name="shield")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """Protect photos against deepfakes and prove where they came from."""
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI, turning ShieldError into a one-line message and exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        return cli.main(args=argv, prog_name="shield", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("shield: aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except ShieldError as exc:
        if debug:
            raise
        line = f"shield: error: {exc.message}"
        if exc.fix:
            line += f" (fix: {exc.fix})"
        click.echo(line, err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("shield: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":  # pragma: no cover
    main()
