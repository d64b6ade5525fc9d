"""The ``socialsearch`` command line: options in, one library call, a clear message out.

Each command calls the library function of the same name (``socialsearch run`` calls
:func:`socialsearch.run`, ``socialsearch keys rotate`` :func:`socialsearch.keys_rotate`, ...),
so everything the CLI does a developer can do from Python with the same names.

Errors a user can cause (:class:`~socialsearch.errors.SocialsearchError`) and foreseeable faults
of the machine (a full disk, a read-only folder, ...: :func:`~socialsearch.errors.fault_message`)
exit with code 2 and one sentence; Ctrl-C or SIGTERM before a command's commit point exits with
130 (143) after the command cleaned up, and after it the command completes; anything else exits
with code 1 and a message that carries no data values (set ``SOCIALSEARCH_DEBUG=1`` for the
traceback).

``-v``/``-vv`` (more log output) and ``-q`` (errors only, no progress display) are accepted
before the command and after it (``socialsearch run ... -v``); every command gets them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import click

import socialsearch as api

from . import _signals, progress
from ._terminal import PrintableFormatter, printable
from .contract import DECISIONS
from .errors import EXIT_UNEXPECTED, EXIT_USAGE, SocialsearchError, fault_message
from .weeks import IsoWeek

__all__ = ["cli", "drafts_table", "main"]

_COMMAND = "socialsearch.command"
#: the parameters naming what a command writes and reads, most likely first
_WRITTEN = ("out_dir", "state_dir", "demo_dir", "keys_dir")
_READ = ("import_file", "input_dir", "path", "catalogue_path", "keys_dir", "state_dir")


def _verbosity(ctx: click.Context, param: click.Parameter, value: int | bool) -> None:
    """Add this occurrence of -v/-q (before or after the command) and apply the sum."""
    if not isinstance(ctx.command, click.Group):
        ctx.meta[_COMMAND] = ctx  # the command's own context: its paths name a fault (see _Group)
    counts = ctx.find_root().meta.setdefault("socialsearch.verbosity", {"verbose": 0, "quiet": False})
    if param.name == "verbose":
        counts["verbose"] += int(value)
    elif value:
        counts["quiet"] = True
    level = logging.ERROR if counts["quiet"] else logging.WARNING - 10 * min(counts["verbose"], 2)
    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(handlers=[handler])  # a no-op once the root logger has a handler
    logging.getLogger().setLevel(level)
    progress.configure(enabled=False if counts["quiet"] else None)


def _verbosity_options() -> list[click.Option]:
    return [
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_verbosity,
                     help="More log output (-vv for debug)."),
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_verbosity,
                     help="Errors only: no progress display, no log output below errors, no summary "
                          "(synth, pseudonymise)."),
    ]


class _Commands(click.Group):
    """A group whose commands all accept -v/-q after their name, as the root group does before it."""

    group_class: type[click.Group] | type[type] | None = type  # subgroups are _Commands too

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not isinstance(cmd, click.Group) and not any(p.name == "verbose" for p in cmd.params):
            cmd.params.extend(_verbosity_options())
        super().add_command(cmd, name)


class _Group(_Commands):
    """The root group: maps every error of every command to an exit code, in one place.

    Its subgroups are plain :class:`_Commands` (the error mapping happens once, here).

    A :class:`~socialsearch.errors.SocialsearchError` prints its message and exits with
    :data:`~socialsearch.errors.EXIT_USAGE`; anything else prints only the exception's type
    (its message may quote data values) and exits with :data:`~socialsearch.errors.EXIT_UNEXPECTED`.
    """

    group_class = _Commands

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _signals.handling():
                result = super().invoke(ctx)
                if _signals.deferred() is not None:
                    click.echo("(an interrupt arrived after the work was committed; it was completed)", err=True)
                return result
        except SocialsearchError as exc:
            click.echo(f"error: {printable(exc, keep_newlines=True)}", err=True)
            sys.exit(exc.exit_code)
        except _signals.Interrupted as exc:
            click.echo(f"interrupted ({_signal_name(exc.signum)}) before the command committed anything; "
                       "what it had started was cleaned up. Run it again when ready.", err=True)
            sys.exit(128 + exc.signum)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as exc:  # the last line of defence
            message = _fault(ctx, exc)
            if message is not None:
                click.echo(f"error: {message}", err=True)
                sys.exit(EXIT_USAGE)
            if os.environ.get("SOCIALSEARCH_DEBUG"):
                raise
            click.echo(
                f"unexpected failure ({type(exc).__name__}); nothing was committed to the ledger. "
                "Re-run with SOCIALSEARCH_DEBUG=1 to see the traceback.",
                err=True,
            )
            sys.exit(EXIT_UNEXPECTED)


def _signal_name(signum: int) -> str:
    """``SIGINT`` (Ctrl-C) or ``SIGTERM``."""
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def _fault(ctx: click.Context, exc: BaseException) -> str | None:
    """One sentence for a foreseeable fault of the machine, naming the command's own paths."""
    command = ctx.meta.get(_COMMAND)
    params: dict[str, Any] = command.params if isinstance(command, click.Context) else {}
    paths = {k: v for k, v in params.items() if isinstance(v, Path)}
    state = paths.get("state_dir")
    return fault_message(
        exc,
        written=[paths[k] for k in _WRITTEN if k in paths],
        read=[paths[k] for k in _READ if k in paths],
        ledger=None if state is None else state / "ledger.sqlite",
    )
def _say(text: str) -> None:
    """Print a line (or lines) for the person at the terminal: every file name, id or value in it
    goes through :func:`~socialsearch._terminal.printable`, so the terminal obeys nothing in it."""
    click.echo(printable(text, keep_newlines=True))


def _quiet() -> bool:
    """Whether -q was given (before or after the command): errors only."""
    counts = click.get_current_context().find_root().meta.get("socialsearch.verbosity", {})
    return bool(counts.get("quiet"))


def _week(_ctx: click.Context, _param: click.Parameter, value: str | None) -> IsoWeek | None:
    if value is None:
        return None
    try:
        return IsoWeek.parse(value)
    except SocialsearchError as exc:
        raise click.BadParameter(str(exc)) from None


def _dir(exists: bool = False) -> click.Path:
    return click.Path(file_okay=False, dir_okay=True, exists=exists, path_type=Path)


_keys_option = click.option(
    "--keys", "keys_dir", required=True, type=_dir(), help="Keystore folder (see `keys init`)."
)
_absent_option = click.option(
    "--absent-district", "absent_districts", multiple=True, metavar="CODE",
    help="A police district that delivered no incidents for this run (repeatable); any other "
         "district without incident rows is an error.",
)
_state_option = click.option(
    "--state", "state_dir", required=True, type=_dir(), help="State folder: ledger, audit log, vaults."
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="socialsearch")
def cli() -> None:
    """socialsearch: the weekly, privacy-preserving police-to-municipality child-welfare search.

    -v and -q work before or after a command: `socialsearch run ... -v`.

    \b
    Example:
        socialsearch demo
    """


cli.params.extend(_verbosity_options())


# --------------------------------------------------------------------------- keys
@cli.group()
def keys() -> None:
    """Create, rotate, export and show keys (secrets are never printed).

    \b
    Example:
        socialsearch keys init --keys ./keys
    """


@keys.command("init")
@_keys_option
def keys_init(keys_dir: Path) -> None:
    """Create the pseudonymisation secret and the custodian key pair (files mode 0600).

    \b
    Example:
        socialsearch keys init --keys ./keys
    """
    store = api.keys_init(keys_dir)
    _say(f"created keystore {keys_dir} (primary key {store.primary_key_id}, "
               f"custodian key {store.custodian_key_id})")


@keys.command("show")
@_keys_option
def keys_show(keys_dir: Path) -> None:
    """Show key ids, their status and the custodian's public key; never secrets.

    \b
    Example:
        socialsearch keys show --keys ./keys
    """
    _say(json.dumps(api.keys_show(keys_dir), indent=2, ensure_ascii=False))


@keys.command("rotate")
@_keys_option
@click.option("--promote", metavar="KID", help="Make this (already added) key the primary.")
@click.option("--disable", metavar="KID", help="Disable this key (not the primary).")
def keys_rotate(keys_dir: Path, promote: str | None, disable: str | None) -> None:
    """Rotate in three steps: add a key, promote it, later disable the old one.

    Old keys stay in the keystore for re-identification and re-keying. Each step says what
    it changed and what to do next.

    \b
    Example:
        socialsearch keys rotate --keys ./keys            # adds a new key
        socialsearch keys rotate --keys ./keys --promote k1a2b3c4d
        socialsearch keys rotate --keys ./keys --disable k9f8e7d6c
    """
    store = api.keys_rotate(keys_dir, promote=promote, disable=disable)
    _say(_rotation_message(store, keys_dir, promote, disable))


def _rotation_message(store: Any, keys_dir: Path, promote: str | None, disable: str | None) -> str:
    """What a rotation step changed and the commands of the next steps (key ids only)."""
    keys = shlex.quote(str(keys_dir))
    if promote is not None:
        return "\n".join([
            f"promoted key {promote}: new pseudonyms and draft ids use it from now on.",
            "Next:",
            "  1. export the keys again for the hub and the source stations, replacing the old exports:",
            f"       socialsearch keys export --keys {keys} --role hub --out HUB-KEYS --force",
            f"       socialsearch keys export --keys {keys} --role station --out STATION-KEYS --force",
            "  2. before the next weekly run, re-key the ledger and vaults so nothing is notified twice:",
            f"       socialsearch keys rekey --keys {keys} --state STATE",
            "  3. later, disable the old key:",
            f"       socialsearch keys rotate --keys {keys} --disable "
            + ", ".join(k for k in store.key_ids if k != promote and store.key_status(k) == "enabled"),
        ])
    if disable is not None:
        return (f"disabled key {disable}: it no longer makes pseudonyms; its secret stays in {keys_dir} so old "
                f"vaults can still be opened and old pseudonyms re-keyed.\n"
                f"Primary key: {store.primary_key_id}. Keys: "
                + ", ".join(f"{k} ({store.key_status(k)})" for k in store.key_ids))
    added = store.key_ids[-1]
    return "\n".join([
        f"added key {added} (enabled, not yet primary; the primary is still {store.primary_key_id}).",
        "Next:",
        "  1. give every source station the new key (the station export holds the secrets):",
        f"       socialsearch keys export --keys {keys} --role station --out STATION-KEYS --force",
        "  2. when every station has it, make it the primary:",
        f"       socialsearch keys rotate --keys {keys} --promote {added}",
    ])


@keys.command("export")
@_keys_option
@click.option("--role", type=click.Choice(["hub", "station"]), required=True,
              help="hub: no secret, only the draft-id key and the custodian's public key; "
                   "station: the secret and the custodian's public key.")
@click.option("--out", "out_dir", required=True, type=_dir(), help="Folder for the exported keystore.")
@click.option("--force", is_flag=True,
              help="Replace an earlier hub or station export in --out (after a rotation); "
                   "never replaces a full keystore.")
def keys_export(keys_dir: Path, role: str, out_dir: Path, force: bool) -> None:
    """Export the keys a matching hub or a source station needs, and nothing more.

    \b
    Example:
        socialsearch keys export --keys ./keys --role hub --out ./hub-keys
        socialsearch keys export --keys ./keys --role hub --out ./hub-keys --force   # after a rotation
    """
    store = api.keys_export(keys_dir, out_dir, role, force=force)  # type: ignore[arg-type]
    _say(f"exported a {role} keystore to {out_dir} (keys {', '.join(store.key_ids)}, "
               f"primary {store.primary_key_id})")


@keys.command("rekey")
@_keys_option
@_state_option
@click.option("--to", "to_key", metavar="KID", help="Key to re-key to (default: the primary key).")
def keys_rekey(keys_dir: Path, state_dir: Path, to_key: str | None) -> None:
    """After promoting a new key: re-key the ledger and vaults so nothing is notified twice.

    The key custodian runs it with the full keystore, before the first weekly run with the new key.

    \b
    Example:
        socialsearch keys rekey --keys ./keys --state ./state
    """
    _say(json.dumps(api.keys_rekey(state_dir, keys_dir, to_key), indent=2, ensure_ascii=False))


@keys.group("municipality")
def keys_municipality() -> None:
    """A municipality's key pair: the station seals exact values (ages, times, places) for it.

    \b
    Example:
        socialsearch keys municipality init --municipality 101 --keys ./kk-keys
    """


@keys_municipality.command("init")
@click.option("--municipality", required=True, metavar="KODE", help="The municipality's kommunekode, e.g. 101.")
@click.option("--keys", "keys_dir", required=True, type=_dir(),
              help="New folder for the municipality's key pair (kept by the municipality).")
def keys_municipality_init(municipality: str, keys_dir: Path) -> None:
    """Create a municipality's key pair; give its public key file to the source station.

    \b
    Example:
        socialsearch keys municipality init --municipality 101 --keys ./kk-keys
        socialsearch keys municipality add --keys ./station-keys --public ./kk-keys/municipality.pub
    """
    key = api.keys_municipality_init(keys_dir, municipality)
    _say(f"created the key pair {key.key_id} of municipality {key.municipality} in {keys_dir}; give "
               f"{keys_dir / 'municipality.pub'} to the source station (`socialsearch keys municipality add`)")


@keys_municipality.command("add")
@_keys_option
@click.option("--public", "public_file", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The municipality's municipality.pub.")
@click.option("--force", is_flag=True, help="Replace the key held for that municipality (a new key pair).")
def keys_municipality_add(keys_dir: Path, public_file: Path, force: bool) -> None:
    """Give the station (or the full keystore, before exporting it) a municipality's public key.

    \b
    Example:
        socialsearch keys municipality add --keys ./station-keys --public ./kk-keys/municipality.pub
    """
    key = api.keys_municipality_add(keys_dir, public_file, force=force)
    _say(f"{keys_dir} now seals exact values for municipality {key.municipality} (key {key.key_id})")


@cli.command("open")
@click.option("--drafts", "drafts_dir", required=True, type=_dir(exists=True),
              help="The municipality's drafts folder, OUT/<week>/<kommunekode>.")
@click.option("--keys", "keys_dir", required=True, type=_dir(exists=True),
              help="The municipality's key pair (`keys municipality init`).")
@click.option("--out", "out_dir", type=_dir(), help="Folder for drafts.opened.json and .html (default: --drafts).")
def open_(drafts_dir: Path, keys_dir: Path, out_dir: Path | None) -> None:
    """Open the exact values (the child's age, each event's times and place) sealed for the municipality.

    \b
    Example:
        socialsearch open --drafts ./out/2026-W47/101 --keys ./kk-keys
    """
    report = api.open_drafts(drafts_dir, keys_dir, out_dir)
    _say(f"opened {report['opened']} of {report['drafts']} draft(s) of municipality {report['municipality']}: "
               f"{report['html']}")
    if report["without_exact_values"]:
        _say(f"{report['without_exact_values']} draft(s) carry no sealed values (the station held no key of "
                   "this municipality when it made them)")


# --------------------------------------------------------------------------- catalogue
@cli.group()
def catalogue() -> None:
    """Check an event-code catalogue before a weekly run uses it.

    \b
    Example:
        socialsearch catalogue check configs/event_codes.toml
    """


@catalogue.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, exists=True, path_type=Path))
def catalogue_check(path: Path | None) -> None:
    """Validate a catalogue (default: the packaged one); every problem is listed with its line.

    \b
    Example:
        socialsearch catalogue check ./my-district/event_codes.toml
    """
    c = api.catalogue_check(path)
    _say(f"{c['source']}: ok - {c['categories']} categories, {c['codes']} codes, "
               f"threshold {c['threshold']}, lookback {c['lookback_weeks']} weeks, child_max_age "
               f"{c['child_max_age']}, immediate: {', '.join(c['immediate']) or 'none'}; sha256 {c['sha256']}")


# --------------------------------------------------------------------------- data
@cli.command()
@click.option("--out", "out_dir", required=True, type=_dir(), help="Folder to write the extracts to.")
@click.option("--scale", default=0.01, show_default=True, type=click.FloatRange(min=0.0001),
              help="Size as a share of Denmark: 0.01 is about 60,000 people; 1.0 is national "
                   "(about 5.97 million people, 1.15 million children); 10 is ten Denmarks.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--week", required=True, callback=_week, help="Last ISO week of the year of events, e.g. 2026-W47.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
def synth(out_dir: Path, scale: float, seed: int, week: IsoWeek, fmt: str) -> None:
    """Write a synthetic Denmark in the input contract's layout (one file per police district).

    The default size is small (about 60,000 people); ask for national size with --scale 1.0.

    \b
    Example:
        socialsearch synth --out ./extract --seed 1 --week 2026-W47
        socialsearch synth --out ./national --scale 1.0 --week 2026-W47
    """
    with progress.stage(f"synthesising a Denmark at scale {scale:g}"):
        summary = api.synth(out_dir, scale=scale, seed=seed, week=week, fmt=fmt)  # type: ignore[arg-type]
    if not _quiet():
        _say(json.dumps(dataclasses.asdict(summary), indent=2, ensure_ascii=False, default=str))


@cli.command()
@click.option("--input", "input_dir", required=True, type=_dir(exists=True),
              help="Raw extracts: incidents/, incident_persons/, population, relations.")
@click.option("--out", "out_dir", required=True, type=_dir(), help="Folder for the hub extract (not inside --input).")
@_keys_option
@click.option("--week", required=True, callback=_week, help="The ISO week the hub will search, e.g. 2026-W47.")
@click.option("--catalogue", "catalogue_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Event-code catalogue (default: the packaged configs/event_codes.toml).")
@click.option("--force", is_flag=True, help="Replace an existing, non-empty --out folder.")
@_absent_option
def pseudonymise(input_dir: Path, out_dir: Path, keys_dir: Path, week: IsoWeek, catalogue_path: Path | None,
                 force: bool, absent_districts: tuple[str, ...]) -> None:
    """At a source station: the hub extract for one week, with keyed pseudonyms only.

    Resolves people without a valid CPR number against the population register here, keeps
    only what the week's search needs, and writes no name, birth date or journal number.
    `socialsearch run` accepts the result at a hub that holds no secret.

    \b
    Example:
        socialsearch pseudonymise --input ./extract --out ./pseudo --keys ./keys --week 2026-W47
    """
    with progress.stage(f"the hub extract for {week} at the source station"):
        report = api.pseudonymise(input_dir, out_dir, keys_dir, week=week, catalogue=catalogue_path, force=force,
                               absent_districts=absent_districts)
    if not _quiet():
        _say(json.dumps(report, indent=2, ensure_ascii=False))


# --------------------------------------------------------------------------- the weekly run
@cli.command()
@click.option("--input", "input_dir", required=True, type=_dir(exists=True),
              help="Raw extracts (needs the secret) or pseudonymised extracts (does not).")
@click.option("--week", required=True, callback=_week, help="ISO week, e.g. 2026-W47.")
@click.option("--out", "out_dir", required=True, type=_dir(), help="Output folder for drafts.")
@_state_option
@_keys_option
@click.option("--catalogue", "catalogue_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Event-code catalogue (default: the packaged configs/event_codes.toml).")
@_absent_option
@click.option("--new-state", "new_state", is_flag=True,
              help="The first week of a new ledger: create the state folder (without it, a --state folder "
                   "that holds no ledger is refused, so a mistyped path cannot start a new ledger).")
def run(input_dir: Path, week: IsoWeek, out_dir: Path, state_dir: Path, keys_dir: Path,
        catalogue_path: Path | None, absent_districts: tuple[str, ...], new_state: bool) -> None:
    """Run the weekly search and write pseudonymised drafts per municipality.

    The first week of a new ledger adds --new-state; every later week gives the same --state
    without it.

    \b
    Example:
        socialsearch run --input ./extract --week 2026-W47 --out ./out --state ./state --keys ./keys --new-state
        socialsearch run --input ./extract --week 2026-W48 --out ./out --state ./state --keys ./keys
    """
    with progress.stage(f"weekly search for {week}"):
        report = api.run(input_dir, week, out_dir, state_dir, keys_dir, catalogue=catalogue_path,
                         absent_districts=absent_districts, new_state=new_state)
    _say(report.describe(state_dir=state_dir))


_DRAFT_ID_EXAMPLE = "D2026-W47-k1a2b3c4d-0123456789abcdef"


@cli.group()
def drafts() -> None:
    """List the drafts in the ledger and their decisions.

    \b
    Example:
        socialsearch drafts list --state ./state --week 2026-W47 --pending
    """


@drafts.command("list")
@_state_option
@click.option("--week", callback=_week, help="Only this ISO week, e.g. 2026-W47.")
@click.option("--municipality", metavar="KODE", help="Only this municipality (kommunekode, e.g. 101).")
@click.option("--pending", is_flag=True, help="Only drafts without a decision.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def drafts_list(state_dir: Path, week: IsoWeek | None, municipality: str | None, pending: bool,
                as_json: bool) -> None:
    """List drafts: id, week, municipality, rule, score, age and the latest decision.

    Decisions are shown as the audit log records them. Rule, score and age are empty for drafts
    made from a hub extract: the station sealed them for the municipality (`socialsearch open`).

    \b
    Example:
        socialsearch drafts list --state ./state --week 2026-W47 --municipality 101 --pending
        socialsearch drafts list --state ./state --json
    """
    rows = api.drafts_list(state_dir, week=week, municipality=municipality, pending=pending)
    if as_json:
        _say(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    from rich.console import Console

    width = shutil.get_terminal_size((200, 24)).columns  # COLUMNS, else the terminal, else 200
    Console(width=width, highlight=False).print(drafts_table(rows, f"{len(rows)} draft(s) in {state_dir}", width))


def drafts_table(rows: list[dict[str, Any]], title: str, width: int) -> Any:
    """The table `drafts list` prints, laid out for ``width`` columns.

    Wide (120 columns and more): every field in a boxed table. Narrower: no box, one space
    between columns, the week left out (every draft id starts with it: D2026-W47-...), the rule
    as imm/thr, the decision date without the time; so at 80 columns every draft id and every
    value is shown whole. Every value goes through :func:`~socialsearch._terminal.printable`.
    """
    from datetime import datetime

    from rich.table import Table
    from rich.text import Text

    from .contract import TZ

    wide = width >= 120
    table = (Table(title=Text(printable(title)), title_justify="left") if wide else
             Table(title=Text(printable(title)), title_justify="left", box=None, padding=(0, 1), pad_edge=False,
                   collapse_padding=True, show_edge=False))
    names = (("draft id", "week", "municipality", "rule", "score", "age", "decision", "reviewer",
              "decided at (Copenhagen)") if wide else
             ("draft id", "kom.", "rule", "pts", "age", "decision", "by", "decided"))
    for name in names:
        table.add_column(name, no_wrap=True, overflow="fold",
                         justify="right" if name in ("score", "pts", "age") else "left")
    for r in rows:
        when = None if r["decided_at"] is None else datetime.fromisoformat(r["decided_at"]).astimezone(TZ)
        decided = "" if when is None else f"{when:%Y-%m-%d %H:%M}" if wide else f"{when:%Y-%m-%d}"
        rule = ("" if r["rule"] is None else str(r["rule"]) if wide
                else {"immediate": "imm", "threshold": "thr"}.get(r["rule"], str(r["rule"])))
        values = [r["draft_id"], *([r["week"]] if wide else []), r["municipality"], rule,
                  "" if r["score"] is None else str(r["score"]),
                  "" if r["age"] is None else str(r["age"]), r["decision"] or "pending", r["reviewer"] or "", decided]
        table.add_row(*(Text(printable(v)) for v in values))
    return table


@cli.command()
@_state_option
@click.option("--draft", "draft_id", metavar="ID", help="The draft id (see `drafts list`).")
@click.option("--decision", type=click.Choice(list(DECISIONS)))
@click.option("--reason", help="Why (kept in the ledger; no CPR numbers or names).")
@click.option("--reviewer", metavar="INITIALS",
              help="The caseworker's initials, 2-6 letters A-Z, Æ, Ø, Å (upper-cased).")
@click.option("--import", "import_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A decisions.json downloaded from the drafts page (instead of --draft ...).")
def review(state_dir: Path, draft_id: str | None, decision: str | None, reason: str | None,
           reviewer: str | None, import_file: Path | None) -> None:
    """Record the municipality's decisions: one with --draft, or a page's file with --import.

    \b
    Example:
        socialsearch review --state ./state --draft D2026-W47-k1a2b3c4d-0123456789abcdef \\
            --decision approve --reason "Kendt familie, tages op" --reviewer ABC
        socialsearch review --state ./state --import ./decisions.json
    """
    single = {"--draft": draft_id, "--decision": decision, "--reason": reason, "--reviewer": reviewer}
    if import_file is not None:
        given = [k for k, v in single.items() if v is not None]
        if given:
            raise click.UsageError(f"--import records a whole file: leave out {', '.join(given)}")
        report = api.import_decisions(state_dir, import_file)
        _say(f"{import_file}: recorded {report['recorded']} decision(s), {report['unchanged']} already "
                   f"recorded (week {report['week']}, municipality {report['municipality']}, "
                   f"sha256 {report['file_sha256']})")
        return
    missing = [k for k, v in single.items() if v is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or give --import FILE)")
    assert draft_id is not None and decision is not None and reason is not None and reviewer is not None
    api.review(state_dir, draft_id, decision, reason, reviewer)
    _say(f"recorded: {decision} {draft_id} by {reviewer.strip()}")


@cli.command()
@_state_option
@click.option("--from", "from_week", required=True, callback=_week, help="First ISO week, e.g. 2026-W27.")
@click.option("--to", "to_week", required=True, callback=_week, help="Last ISO week (included), e.g. 2026-W39.")
@click.option("--out", "out_dir", required=True, type=_dir(), help="Folder for stats.json, stats.csv, stats.html.")
@click.option("--by", "by", multiple=True, default=("municipality",), show_default=True,
              type=click.Choice(["municipality", "district", "category", "age_band", "rule", "decision",
                                 "cross_district"]),
              help="Add a table (and chart) of drafts by this dimension and decision; repeat for more.")
@click.option("--keys", "keys_dir", type=_dir(), default=None,
              help="The key custodian's keystore: opens each draft's statistics values, which a run on a hub "
                   "extract records sealed for the custodian.")
def stats(state_dir: Path, from_week: IsoWeek, to_week: IsoWeek, out_dir: Path, by: tuple[str, ...],
          keys_dir: Path | None) -> None:
    """Statistics for councils (kredsråd, lokalråd, SSP) from the ledger, small cells hidden.

    Verifies the audit chain first (as `audit verify`), then reads the ledger only (no vault)
    and writes stats.json, stats.csv and stats.html. A run on a hub extract records each draft's
    statistics values (age, categories, police districts) sealed for the key custodian: give the
    custodian's keystore with --keys (the hub's cannot open them). A cell of 1-4 children shows
    "<5"; a cell hidden so that no such cell can be worked out shows "(skjult)".

    \b
    Example:
        socialsearch stats --state ./state --keys ./keys --from 2026-W27 --to 2026-W39 --out ./q3 --by district
    """
    from rich.console import Console
    from rich.table import Table

    report = api.stats(state_dir, from_week=from_week, to_week=to_week, out_dir=out_dir, by=by, keys_dir=keys_dir)
    table = Table(title=f"socialsearch stats {report.from_week} – {report.to_week}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in report.summary.items():
        table.add_row(key, "–" if value is None else str(value))
    console = Console(width=100)
    console.print(table)
    for kind, path in report.paths.items():
        console.print(printable(f"wrote {kind}: {path}"), markup=False, highlight=False)


@cli.command()
@_state_option
@_keys_option
@click.option("--draft", "draft_id", required=True, metavar="ID", help="An approved draft id.")
def reidentify(state_dir: Path, keys_dir: Path, draft_id: str) -> None:
    """The key custodian re-identifies one approved draft (written to the audit log).

    The audit log and the ledger are verified first; the decision is the one the log records.

    \b
    Example:
        socialsearch reidentify --state ./state --keys ./keys --draft D2026-W47-k1a2b3c4d-0123456789abcdef
    """
    _say(json.dumps(api.reidentify(state_dir, keys_dir, draft_id), indent=2, ensure_ascii=False))


@cli.group()
def audit() -> None:
    """Check the hash-chained audit log.

    \b
    Example:
        socialsearch audit verify --state ./state
    """


@audit.command("verify")
@_state_option
def audit_verify(state_dir: Path) -> None:
    """Verify the audit log and the ledger rows it binds: fails on any changed, removed,
    inserted or reordered entry or row, and on an empty log.

    \b
    Example:
        socialsearch audit verify --state ./state
    """
    _say(str(api.audit_verify(state_dir)))


@cli.command()
@click.option("--dir", "demo_dir", default=Path("socialsearch-demo"), show_default=True, type=_dir(),
              help="Folder for the demo (created; a previous demo there is replaced).")
@click.option("--scale", default=0.01, show_default=True, type=click.FloatRange(min=0.0005),
              help="Size of the synthetic Denmark (0.01 is about 60,000 people).")
@click.option("--seed", default=14, show_default=True, type=int)
@click.option("--week", callback=_week, help="ISO week to search (default: the last complete week).")
def demo(demo_dir: Path, scale: float, seed: int, week: IsoWeek | None) -> None:
    """Synthetic data, keys, one weekly run, and where to look.

    \b
    Example:
        socialsearch demo
    """
    api.demo(demo_dir, scale=scale, seed=seed, week=week)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="socialsearch")
