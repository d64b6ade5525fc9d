"""The CLI surface: every command has help with an example, and exit codes follow DESIGN §7."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from socialsearch.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def all_commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found.extend(all_commands(command, path))
    return found


COMMANDS = all_commands()


def test_the_commands_of_design_section_7_exist():
    names = {" ".join(c) for c in COMMANDS}
    for expected in ["keys init", "keys rotate", "keys show", "run", "pseudonymise", "review",
                     "reidentify", "audit verify", "synth", "demo"]:
        assert expected in names


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert "socialsearch " in result.output.split("Example:", 1)[1]


@pytest.mark.parametrize("command", [c for c in COMMANDS if not isinstance(
    cli.commands[c[0]] if len(c) == 1 else cli.commands[c[0]].commands[c[1]], click.Group)], ids=" ".join)
def test_every_command_is_documented(command):
    docs = (ROOT / "README.md").read_text(encoding="utf-8") + "".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    assert f"socialsearch {' '.join(command)}" in docs


def test_bad_usage_exits_2():
    runner = CliRunner()
    assert runner.invoke(cli, ["run"]).exit_code == 2
    result = runner.invoke(cli, ["synth", "--out", "x", "--week", "2026-W99"])
    assert result.exit_code == 2 and "week" in result.output
    assert runner.invoke(cli, ["no-such-command"]).exit_code == 2


def test_library_errors_exit_2_and_unexpected_errors_exit_1_without_data(tmp_path, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(cli, ["keys", "show", "--keys", str(tmp_path / "missing")])
    assert result.exit_code == 2

    import socialsearch.keys as keys_module

    def boom(*_a, **_k):
        raise RuntimeError("value 0101701357 leaked")

    monkeypatch.setattr(keys_module.KeyStore, "load", classmethod(lambda cls, d: boom()))
    monkeypatch.delenv("SOCIALSEARCH_DEBUG", raising=False)
    result = runner.invoke(cli, ["keys", "show", "--keys", str(tmp_path)])
    assert result.exit_code == 1
    assert "RuntimeError" in result.output and "0101701357" not in result.output


def test_readme_quick_start_has_exactly_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    commands = [line for line in blocks[0].splitlines() if line.strip()]
    assert len(commands) == 2
    assert "socialsearch demo" in commands[0] and "pip install" in commands[0]
    assert "pytest" in commands[1] and "[test]" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1].strip() in ci
