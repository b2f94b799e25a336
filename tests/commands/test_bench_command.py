"""`shield bench protection`: the command is wired and documents its contract."""

from __future__ import annotations

from click.testing import CliRunner

from shield.cli import cli


def test_bench_protection_help_lists_the_harness_options() -> None:
    result = CliRunner().invoke(cli, ["bench", "protection", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--photos", "--json", "--plot", "--limit", "--strength", "--device"):
        assert option in result.output


def test_bench_protection_requires_its_folders() -> None:
    result = CliRunner().invoke(cli, ["bench", "protection"])
    assert result.exit_code != 0
    assert "--photos" in result.output
