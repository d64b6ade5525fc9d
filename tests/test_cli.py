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

    import socialsearch.crypto.keys as keys_module

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


@pytest.mark.parametrize("command", [c for c in COMMANDS if not isinstance(
    cli.commands[c[0]] if len(c) == 1 else cli.commands[c[0]].commands[c[1]], click.Group)], ids=" ".join)
def test_every_command_accepts_verbose_and_quiet_after_its_name(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert "-v, --verbose" in result.output and "-q, --quiet" in result.output


def test_verbose_and_quiet_work_before_and_after_the_command(tmp_path):
    import logging

    runner = CliRunner()
    keys = str(tmp_path / "keys")
    assert runner.invoke(cli, ["keys", "init", "--keys", keys, "-v"]).exit_code == 0
    assert logging.getLogger().level == logging.INFO
    assert runner.invoke(cli, ["-v", "keys", "show", "--keys", keys, "-v"]).exit_code == 0
    assert logging.getLogger().level == logging.DEBUG
    result = runner.invoke(cli, ["keys", "show", "--keys", keys, "-q"])
    assert result.exit_code == 0 and logging.getLogger().level == logging.ERROR
    from socialsearch import progress

    assert not progress.is_enabled()
    assert runner.invoke(cli, ["keys", "show", "--keys", keys]).exit_code == 0
    assert logging.getLogger().level == logging.WARNING  # each invocation starts afresh


def test_keys_rotate_says_what_it_did_and_what_comes_next(tmp_path):
    runner = CliRunner()
    keys = tmp_path / "keys"
    runner.invoke(cli, ["keys", "init", "--keys", str(keys)])
    from socialsearch.crypto.keys import KeyStore

    old = KeyStore.load(keys).primary_key_id
    result = runner.invoke(cli, ["keys", "rotate", "--keys", str(keys)])
    assert result.exit_code == 0
    new = next(k for k in KeyStore.load(keys).key_ids if k != old)
    assert result.output.startswith(f"added key {new} (enabled, not yet primary; the primary is still {old}).")
    assert f"socialsearch keys rotate --keys {keys} --promote {new}" in result.output
    assert "--role station" in result.output and "{" not in result.output  # no JSON dump
    result = runner.invoke(cli, ["keys", "rotate", "--keys", str(keys), "--promote", new])
    assert result.output.startswith(f"promoted key {new}")
    assert f"socialsearch keys rekey --keys {keys} --state STATE" in result.output
    assert f"socialsearch keys rotate --keys {keys} --disable {old}" in result.output
    result = runner.invoke(cli, ["keys", "rotate", "--keys", str(keys), "--disable", old])
    assert result.output.startswith(f"disabled key {old}") and f"{old} (disabled), {new} (enabled)" in result.output


def test_keys_export_force_replaces_an_earlier_export(tmp_path):
    runner = CliRunner()
    keys, hub = tmp_path / "keys", tmp_path / "hub-keys"
    runner.invoke(cli, ["keys", "init", "--keys", str(keys)])
    export = ["keys", "export", "--keys", str(keys), "--role", "hub", "--out", str(hub)]
    assert runner.invoke(cli, export).exit_code == 0
    runner.invoke(cli, ["keys", "rotate", "--keys", str(keys)])
    again = runner.invoke(cli, export)
    assert again.exit_code == 2 and "--force" in again.output
    forced = runner.invoke(cli, [*export, "--force"])
    assert forced.exit_code == 0 and "exported a hub keystore" in forced.output
    from socialsearch.crypto.keys import KeyStore

    assert KeyStore.load(hub).key_ids == KeyStore.load(keys).key_ids


def test_synth_defaults_to_a_small_denmark():
    option = next(p for p in cli.commands["synth"].params if p.name == "scale")
    assert option.default <= 0.01


def test_run_ends_with_the_pages_and_the_command_that_lists_the_drafts(scenario, catalogue_file, tmp_path):
    runner = CliRunner()
    keys, out, state = tmp_path / "keys", tmp_path / "out", tmp_path / "state"
    runner.invoke(cli, ["keys", "init", "--keys", str(keys)])
    runner.invoke(cli, ["keys", "municipality", "init", "--municipality", "461", "--keys", str(tmp_path / "m461")])
    runner.invoke(cli, ["keys", "municipality", "add", "--keys", str(keys), "--public",
                        str(tmp_path / "m461" / "municipality.pub")])
    result = runner.invoke(cli, ["run", "--input", str(scenario), "--week", "2026-W47", "--out", str(out),
                                 "--state", str(state), "--keys", str(keys), "--catalogue", str(catalogue_file), "-q",
                                 "--new-state"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "caseworkers' pages (one per municipality):" in lines
    assert any(line.endswith(str(out / "2026-W47" / "101" / "drafts.html")) for line in lines)
    assert lines[-1] == f"list the drafts: socialsearch drafts list --state {state} --week 2026-W47"
    # The page as it arrives says what is sealed; opened, the immediate draft's page names the
    # category that made it (the station sealed the catalogue's).
    page = (out / "2026-W47" / "461" / "drafts.html").read_text(encoding="utf-8")
    assert "Der er registreret en hændelse i kategorien »" not in page and "socialsearch open" in page
    assert "kommunen har ingen nøgle hos politiet" in (out / "2026-W47" / "101" / "drafts.html").read_text("utf-8")
    opened = runner.invoke(cli, ["open", "--drafts", str(out / "2026-W47" / "461"), "--keys", str(tmp_path / "m461")])
    assert opened.exit_code == 0, opened.output
    page = (out / "2026-W47" / "461" / "drafts.opened.html").read_text(encoding="utf-8")
    assert "Der er registreret en hændelse i kategorien »" in page
