"""Helpers shared by the CLI commands: settings, JSON output, notices."""

from __future__ import annotations

import dataclasses
import enum
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from shield.config import Settings, load_settings

__all__ = ["settings", "home_line", "to_jsonable", "emit_json", "notice", "json_option"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of text.")


def settings() -> Settings:
    """The settings of this invocation (cached on the click context)."""
    ctx = click.get_current_context()
    obj = ctx.find_root().ensure_object(dict)
    if "settings" not in obj:
        obj["settings"] = load_settings()
    value: Settings = obj["settings"]
    return value


def home_line(cfg: Settings) -> str:
    """``home: <path> (<where that came from>)``: the one line saying which state a command used."""
    origin = {"default": "the default; SHIELD_HOME chooses another", "SHIELD_HOME": "from SHIELD_HOME"}
    return f"home: {cfg.home} ({origin.get(cfg.home_origin, f'from {cfg.home_origin}')})"


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, paths, bytes (plain hex, no 0x: the form the text output prints) and datetimes -> JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if not f.name.startswith("_")}
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    return value


def emit_json(value: Any) -> None:
    click.echo(json.dumps(to_jsonable(value), indent=2, sort_keys=False))


def notice(message: str) -> None:
    """A one-line note to stderr (never mixed into --json output on stdout)."""
    click.echo(f"shield: note: {message}", err=True)
