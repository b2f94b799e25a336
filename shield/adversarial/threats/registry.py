"""Which threat-model plug-ins exist, and loading them.

The model zoo's catalogue names each model's plug-in (``ModelSpec.plugin``,
``module:Class``); :func:`register` adds one from outside the catalogue (a user's own
network, or a toy model in a test). The attack, the presets and the harness only ever
loop over what this module returns.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable

import torch

from shield.adversarial.threats.base import Role, Target
from shield.errors import ModelError

__all__ = ["UnknownThreatModelError", "register", "unregister", "plugin", "names", "role_of", "load_targets", "load_ensemble"]

log = logging.getLogger(__name__)

_REGISTERED: dict[str, type[Target]] = {}


class UnknownThreatModelError(ModelError):
    """No threat-model plug-in has that name."""

    default_fix = "run `shield models list` for the known names"


def register(cls: type[Target]) -> type[Target]:
    """Add a plug-in class (usable as a decorator). Its ``name`` must be new and its ``role`` a :class:`Role`.

    Raises:
        ValueError: the class has no name or role, or the name is taken.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__}: a threat model needs a non-empty `name`")
    if not isinstance(getattr(cls, "role", None), Role):
        raise ValueError(f"{cls.__name__}: `role` must be a shield.adversarial.threats.Role")
    if name in _REGISTERED or name in _catalogued():
        raise ValueError(f"a threat model called {name!r} already exists")
    _REGISTERED[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a plug-in added with :func:`register` (no effect for catalogue entries)."""
    _REGISTERED.pop(name, None)


def _catalogued() -> dict[str, str]:
    from shield.adversarial.zoo import catalogue

    return {spec.name: spec.plugin for spec in catalogue() if spec.plugin}


def names(role: Role | None = None) -> list[str]:
    """Every plug-in name (catalogue first, then registered ones), optionally of one role."""
    from shield.adversarial.zoo import catalogue

    found = [(spec.name, spec.role) for spec in catalogue() if spec.plugin]
    found += [(name, cls.role.value) for name, cls in _REGISTERED.items()]
    return [name for name, r in found if role is None or r == role.value]


def role_of(name: str) -> Role:
    """The role of the plug-in ``name`` (read from the catalogue, without importing it).

    Raises:
        UnknownThreatModelError: no such plug-in.
    """
    if name in _REGISTERED:
        return _REGISTERED[name].role
    from shield.adversarial.zoo import catalogue

    for spec in catalogue():
        if spec.name == name and spec.plugin:
            return Role(spec.role)
    raise UnknownThreatModelError(f"no threat model called {name!r}")


def plugin(name: str) -> type[Target]:
    """The plug-in class of ``name``.

    Raises:
        UnknownThreatModelError: no such plug-in, or its module does not define it.
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    path = _catalogued().get(name)
    if path is None:
        raise UnknownThreatModelError(f"no threat model called {name!r}")
    module_name, _, attr = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownThreatModelError(f"the plug-in of {name!r} ({path}) cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Target)):
        raise UnknownThreatModelError(f"{path} is not a threat-model plug-in")
    return cls


def load_targets(wanted: Iterable[str], device: torch.device | str = "cpu") -> tuple[Target, ...]:
    """Load the plug-ins ``wanted``, in that order, on ``device``.

    Raises:
        UnknownThreatModelError: an unknown name.
        ModelError: a network's weights are missing or corrupt (the fix says how to install them).
    """
    return tuple(plugin(name).load(device) for name in wanted)


def load_ensemble(weights: dict[str, float] | Iterable[tuple[str, float]], device: torch.device | str = "cpu") -> tuple[Target, ...]:
    """The networks an attack with ``weights`` runs: every name with a non-zero weight.

    Official checkpoints (``fomm-vox-256``, ``simswap-224``, ``arcface-r100``) join only
    once a user imported them; the others must be installed.

    Raises:
        UnknownThreatModelError: an unknown name.
        ModelError: an installed network's weights are missing or corrupt.
    """
    from shield.adversarial.zoo import ModelNotImportedError

    pairs = weights.items() if isinstance(weights, dict) else weights
    out: list[Target] = []
    for name, weight in pairs:
        if not weight:
            continue
        try:
            out.append(plugin(name).load(device))
        except ModelNotImportedError:
            log.info("%s is not imported: left out of the attack", name)
    return tuple(out)
