"""Settings, from the environment and an optional TOML file, in one place.

Precedence: environment variable > ``shield.toml`` (``$SHIELD_CONFIG``, else
``./shield.toml``) > built-in default. The result is a frozen, validated dataclass;
nothing else in the package reads the environment.

The home (all state: chain, local index, outbox, caches; the keystore in ``<home>/keys``)
is ``$SHIELD_HOME``, else ``home`` in the config file, else ``~/.shield``: the same for
``make run`` and for ``shield`` run by hand.

``[chain]`` section keys: ``rpc_url``, ``chain_id``, ``registry``, ``confirmations``,
``anvil_port``. Environment names: ``SHIELD_RPC_URL``, ``SHIELD_CHAIN_ID``,
``SHIELD_REGISTRY``, ``SHIELD_CONFIRMATIONS``, ``SHIELD_ANVIL_PORT``. Without an anvil
port the devnet uses the port recorded in its home (``<home>/chain/anvil.port``), else
8545, or the next free port when another program holds that one.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shield.errors import ConfigError

__all__ = ["ChainSettings", "Settings", "load_settings", "find_node_tool", "DEFAULT_MAX_PIXELS"]

#: Largest image accepted, in pixels (width x height). 100 MP covers every camera sold
#: today; a decompression bomb declares far more. Override with SHIELD_MAX_PIXELS.
DEFAULT_MAX_PIXELS = 100_000_000

DEFAULT_ANVIL_PORT = 8545
ANVIL_CHAIN_ID = 31337


@dataclass(frozen=True)
class ChainSettings:
    """Where records are anchored. ``rpc_url`` None means the embedded anvil devnet.

    ``anvil_port`` None (not configured) lets the devnet choose: the port recorded in the
    home, else DEFAULT_ANVIL_PORT, else the next free one (shield.ledger.devnet).
    """

    rpc_url: str | None = None
    chain_id: int | None = None
    registry: str | None = None
    confirmations: int = 1
    anvil_port: int | None = None

    @property
    def embedded(self) -> bool:
        return self.rpc_url is None


@dataclass(frozen=True)
class Settings:
    """All settings of one shield invocation.

    Attributes:
        home: state directory (chain state, local index, outbox, caches).
        keys_dir: keystore directory.
        data_dir: shared face data (photos, videos), or None when absent.
        node_bin: folder holding the npm tools (anvil, solcjs), or None to use PATH.
        max_pixels: pixel-count limit for loaded images.
        keys_password_env: name of the env var holding the keystore password.
        chain: ledger settings.
        device: torch device of the protection (``cpu``, ``cuda``, ``cuda:N``, ``mps``);
            from ``SHIELD_DEVICE``, default ``cpu``.
        home_origin: where ``home`` came from, in words (``SHIELD_HOME``, the config
            file's path, or ``default``), for the ``home:`` line commands print.
    """

    home: Path
    keys_dir: Path
    data_dir: Path | None
    node_bin: Path | None
    max_pixels: int = DEFAULT_MAX_PIXELS
    keys_password_env: str = "SHIELD_KEYS_PASSWORD"
    chain: ChainSettings = field(default_factory=ChainSettings)
    device: str = "cpu"
    home_origin: str = "default"

    def with_chain(self, **changes: Any) -> Settings:
        return replace(self, chain=replace(self.chain, **changes))


def _int(name: str, raw: object, *, minimum: int = 0) -> int:
    try:
        value = int(str(raw))
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _port(raw: object) -> int | None:
    """A TCP port (1..65535), or None when not configured."""
    if raw is None or raw == "":
        return None
    value = _int("anvil_port", raw, minimum=1)
    if value > 65535:
        raise ConfigError(f"anvil_port must be <= 65535, got {value}")
    return value


def _device(raw: object) -> str:
    """A torch device name, checked without importing torch."""
    value = str(raw).strip().lower()
    if re.fullmatch(r"cpu|mps|cuda(:\d+)?", value) is None:
        raise ConfigError(f"SHIELD_DEVICE must be cpu, cuda, cuda:N or mps, got {raw!r}")
    return value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", fix=f"fix or remove {path}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def _default_data_dir(cwd: Path) -> Path | None:
    for candidate in (cwd / ".." / "shared" / "data", Path(__file__).resolve().parents[2] / "shared" / "data"):
        if candidate.is_dir():
            return candidate.resolve()
    return None


#: The npm tools installed beside the package by ``npm ci`` (a source checkout).
_REPO_NODE_BIN = Path(__file__).resolve().parents[1] / "node_modules" / ".bin"


def _default_node_bin(cwd: Path) -> Path | None:
    for candidate in (cwd / "node_modules" / ".bin", _REPO_NODE_BIN):
        if candidate.is_dir():
            return candidate
    return None


def find_node_tool(name: str, node_bin: Path | None) -> Path | None:
    """The executable ``name`` from the npm tools: in ``node_bin``, else the repository's
    ``node_modules/.bin``, else on PATH; None when it is nowhere."""
    folders = [node_bin] if node_bin is not None else []
    folders.append(_REPO_NODE_BIN)
    for folder in folders:
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def load_settings(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Build the settings from ``env`` (default ``os.environ``) and the config file.

    Raises:
        ConfigError: a value is malformed, or the config file cannot be parsed.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    config_path = Path(env["SHIELD_CONFIG"]) if "SHIELD_CONFIG" in env else cwd / "shield.toml"
    if "SHIELD_CONFIG" in env and not config_path.is_file():
        raise ConfigError(f"SHIELD_CONFIG points to {config_path}, which does not exist")
    doc = _read_toml(config_path) if config_path.is_file() else {}
    chain_doc = doc.get("chain", {})
    if not isinstance(chain_doc, dict):
        raise ConfigError("[chain] in the config file must be a table")

    def pick(env_name: str, key: str, section: Mapping[str, Any] = doc) -> Any:
        return env.get(env_name, section.get(key))

    home_raw = pick("SHIELD_HOME", "home")
    home = Path(home_raw or Path.home() / ".shield").expanduser().absolute()
    home_origin = "default" if not home_raw else "SHIELD_HOME" if env.get("SHIELD_HOME") else str(config_path)
    keys_dir = Path(pick("SHIELD_KEYS_DIR", "keys_dir") or home / "keys").expanduser()
    data_raw = pick("SHIELD_DATA_DIR", "data_dir")
    data_dir = Path(data_raw).expanduser() if data_raw else _default_data_dir(cwd)
    if data_dir is not None and not data_dir.is_dir():
        data_dir = None
    node_raw = pick("SHIELD_NODE_BIN", "node_bin")
    node_bin = Path(node_raw).expanduser() if node_raw else _default_node_bin(cwd)

    rpc_url = pick("SHIELD_RPC_URL", "rpc_url", chain_doc) or None
    chain_id_raw = pick("SHIELD_CHAIN_ID", "chain_id", chain_doc)
    chain = ChainSettings(
        rpc_url=rpc_url,
        chain_id=_int("chain_id", chain_id_raw, minimum=1) if chain_id_raw is not None else (None if rpc_url else ANVIL_CHAIN_ID),
        registry=pick("SHIELD_REGISTRY", "registry", chain_doc) or None,
        confirmations=_int("confirmations", pick("SHIELD_CONFIRMATIONS", "confirmations", chain_doc) or 1, minimum=0),
        anvil_port=_port(pick("SHIELD_ANVIL_PORT", "anvil_port", chain_doc)),
    )
    if rpc_url is not None and chain.chain_id is None:
        raise ConfigError("a remote chain needs its chain id", fix="set SHIELD_CHAIN_ID (or chain_id in [chain])")
    return Settings(
        home=home,
        keys_dir=keys_dir,
        data_dir=data_dir,
        node_bin=node_bin,
        max_pixels=_int("max_pixels", pick("SHIELD_MAX_PIXELS", "max_pixels") or DEFAULT_MAX_PIXELS, minimum=1),
        keys_password_env=str(pick("SHIELD_KEYS_PASSWORD_ENV", "keys_password_env") or "SHIELD_KEYS_PASSWORD"),
        chain=chain,
        device=_device(pick("SHIELD_DEVICE", "device") or "cpu"),
        home_origin=home_origin,
    )
