"""The boundary between the runtime package and the lab: shield never imports lab/, the
optional extras (av, matplotlib, scikit-image) are imported only where they are used,
and the wheel's metadata ships the runtime alone."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from shield.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXTRAS = ("av", "matplotlib", "skimage")


def _top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_runtime_package_never_imports_the_lab() -> None:
    offenders = [p.relative_to(REPO).as_posix() for p in sorted((REPO / "shield").rglob("*.py")) if "lab" in _top_level_imports(p)]
    assert offenders == []


def test_the_cli_and_its_commands_load_without_the_optional_extras() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import shield.cli, shield.commands\n"
        "for m in pkgutil.iter_modules(shield.commands.__path__):\n"
        "    importlib.import_module('shield.commands.' + m.name)\n"
        f"print(sorted({{n.split('.')[0] for n in sys.modules}} & {set(EXTRAS) | {'lab'}!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_the_sample_portrait_without_scikit_image_names_the_bench_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shield.sample import write_sample

    monkeypatch.setitem(sys.modules, "skimage", None)  # import skimage raises ImportError
    with pytest.raises(ConfigError) as info:
        write_sample(tmp_path / "astronaut.png")
    assert "shield[bench]" in info.value.fix and not (tmp_path / "astronaut.png").exists()


def test_the_wheel_ships_shield_alone_and_the_extras_are_optional() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["shield", "shield.*"]
    runtime = {d.split(">")[0].split("=")[0].split("<")[0].strip() for d in project["project"]["dependencies"]}
    assert runtime.isdisjoint({"av", "matplotlib", "scikit-image", "setuptools"})
    extras = project["project"]["optional-dependencies"]
    assert {"av", "matplotlib", "scikit-image"} <= {d.split(">")[0] for d in extras["bench"]}
