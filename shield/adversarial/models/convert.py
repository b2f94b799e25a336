"""One-time conversion of SimSwap's released ArcFace file into a plain state dict.

SimSwap distributes its identity network (``arcface_checkpoint.tar``) as a
*pickled whole module* (``torch.save(model)``): unpickling it normally imports
the original repository's classes (``models.arcface_models.ResNet`` and friends)
and can run any code the pickle names. We never do that. Instead the file is
read with a restricted unpickler:

* only the handful of torch functions that rebuild tensors and parameters
  (``torch._utils._rebuild_tensor_v2``, ``_rebuild_parameter``, ...), storage
  types, ``collections.OrderedDict`` and builtin ``set``/``frozenset`` resolve to
  real objects;
* every other global the pickle names (the original module classes, torch's
  ``nn`` layer classes, or anything hostile such as ``os.system``) resolves to an
  inert stub class, which only records the arguments and state given to it.

The stub tree mirrors the module tree (``_modules``, ``_parameters``, ``_buffers``),
so walking it yields the state dict with the usual dotted names. A module saved
inside a dict (``{"model": ...}``) or wrapped in ``DataParallel`` is unwrapped. The result is
checked strictly against :class:`~shield.adversarial.models.arcface.ArcFace` and
saved with ``torch.save(state_dict)``; from then on it loads with
``torch.load(weights_only=True)`` via :func:`~shield.adversarial.models.arcface.load_arcface`.

Usage::

    python -m shield.adversarial.models.convert arcface_checkpoint.tar arcface_r101.pth
"""

from __future__ import annotations

import _compat_pickle
import argparse
import collections
import logging
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from shield.adversarial.models._strict import CheckpointReadError, LayoutError, load_strict
from shield.adversarial.models.arcface import ArcFace

__all__ = ["extract_state_dict", "convert_arcface", "main"]

log = logging.getLogger(__name__)

#: Real globals a pickled module may use to rebuild its tensors; nothing else resolves.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch", "Size"): torch.Size,
}
#: Upper bound on pickled objects (a guard against pathological files), far above a ResNet-101's ~2k.
MAX_STUBS = 200_000


class _Stub:
    """Inert stand-in for any class or callable named in the pickle."""

    _origin = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_stub_args"] = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)
        elif isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            self.__dict__.update(state[0])  # (dict, slots) form

    dump_patches = False


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`_ALLOWED` globals; everything else becomes a :class:`_Stub` subclass."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stubs: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> Any:
        # protocol-2 pickles name Python 2 modules (``__builtin__.set``): map them as pickle does
        key = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        key = (_compat_pickle.IMPORT_MAPPING.get(key[0], key[0]), key[1])
        module, name = key
        if key in _ALLOWED:
            return _ALLOWED[key]
        if module == "torch" and name.endswith("Storage") and hasattr(torch, name):
            return getattr(torch, name)  # typed storage classes: data containers only
        if key not in self._stubs:
            if len(self._stubs) >= MAX_STUBS:
                raise pickle.UnpicklingError("too many distinct globals")
            self._stubs[key] = type(name, (_Stub,), {"_origin": f"{module}.{name}"})
        return self._stubs[key]


class _RestrictedPickleModule:
    """The ``pickle_module`` handed to :func:`torch.load` (it needs ``Unpickler`` and ``load``)."""

    Unpickler = _RestrictedUnpickler
    __name__ = "shield_restricted_pickle"

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return _RestrictedUnpickler(file, **kwargs).load()


def _walk(obj: Any, prefix: str, out: dict[str, torch.Tensor], seen: set[int]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    state = getattr(obj, "__dict__", {})
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for table in ("_parameters", "_buffers"):
        for name, value in (state.get(table) or {}).items():
            if value is None or (table == "_buffers" and name in skip):
                continue
            if not isinstance(value, torch.Tensor):
                raise CheckpointReadError(f"{prefix}{name} is not a tensor")
            out[prefix + name] = value.detach().clone()
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            _walk(child, f"{prefix}{name}.", out, seen)


def _is_module(obj: Any) -> bool:
    return isinstance(obj, _Stub) and isinstance(obj.__dict__.get("_modules"), dict)


def _module_root(obj: Any) -> Any:
    """The network inside what was pickled: the module itself, ``{"model": module}``, or a
    ``DataParallel`` wrapper (a module whose only child is ``module`` and which has no tensors)."""
    if isinstance(obj, dict):
        found = [v for v in obj.values() if _is_module(v)]
        obj = found[0] if len(found) == 1 else None
    while _is_module(obj):
        state = obj.__dict__
        if list(state["_modules"]) == ["module"] and not state.get("_parameters") and not state.get("_buffers"):
            obj = state["_modules"]["module"]
            continue
        return obj
    return None


def extract_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """State dict of a pickled whole module, read without importing or running its code.

    Raises:
        CheckpointReadError: the file is missing, not a torch pickle, or holds no module tree.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointReadError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # source-change warnings about stub classes
            root = torch.load(path, map_location="cpu", pickle_module=_RestrictedPickleModule, weights_only=False)
    except Exception as exc:  # pickle and torch raise many unrelated types for a bad file
        raise CheckpointReadError(f"{path}: cannot read it as a pickled torch module ({type(exc).__name__})") from exc
    if isinstance(root, dict) and root and all(isinstance(v, torch.Tensor) for v in root.values()):
        return {k: v.detach().clone() for k, v in root.items()}  # already a state dict
    root = _module_root(root)
    if root is None:
        raise CheckpointReadError(f"{path}: holds no pickled module")
    out: dict[str, torch.Tensor] = {}
    _walk(root, "", out, set())
    if not out:
        raise CheckpointReadError(f"{path}: the pickled module holds no tensors")
    log.info("%s: extracted %d tensors from a pickled %s", path.name, len(out), getattr(root, "_origin", "?"))
    return out


def convert_arcface(src: Path | str, dst: Path | str, depth: int = 101) -> dict[str, torch.Tensor]:
    """Convert the released pickled ArcFace module ``src`` into a state dict file ``dst``.

    The extracted tensors are checked strictly against :class:`ArcFace` of ``depth``
    before anything is written.

    Raises:
        CheckpointReadError: ``src`` is unreadable.
        LayoutError: the tensors do not form an IR-SE network of ``depth``.
    """
    state = extract_state_dict(src)
    load_strict(ArcFace(depth), state, f"ArcFace IR-SE-{depth}")
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(dst)
    return state


def main(argv: list[str] | None = None) -> int:
    """``python -m shield.adversarial.models.convert SRC DST [--depth N]``."""
    p = argparse.ArgumentParser(prog="python -m shield.adversarial.models.convert", description=__doc__.split("\n")[0])
    p.add_argument("src", type=Path, help="released pickled ArcFace module (arcface_checkpoint.tar)")
    p.add_argument("dst", type=Path, help="state dict file to write")
    p.add_argument("--depth", type=int, default=101)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        state = convert_arcface(args.src, args.dst, args.depth)
    except (CheckpointReadError, LayoutError) as exc:
        log.error("%s (%s)", exc, exc.fix)
        return 1
    log.info("wrote %s (%d tensors)", args.dst, len(state))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
