"""The ``socialsearch`` command line: options in, one library call, a clear message out.

Errors a user can cause (:class:`~socialsearch.errors.SocialsearchError`) exit with code 2 and
their message; anything else exits with code 1 and a message that carries no data values
(set ``SOCIALSEARCH_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .errors import SocialsearchError
from .weeks import IsoWeek

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE = 0, 1, 2


def _handle_errors(func: F) -> F:
    """Turn library errors into exit code 2 and unexpected ones into exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SocialsearchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as exc:  # the last line of defence
            if os.environ.get("SOCIALSEARCH_DEBUG"):
                raise
            # The message of an unexpected exception may quote data values: never print it.
            click.echo(
                f"unexpected failure ({type(exc).__name__}); nothing was committed to the ledger. "
                "Re-run with SOCIALSEARCH_DEBUG=1 to see the traceback.",
                err=True,
            )
            sys.exit(EXIT_UNEXPECTED)

    return wrapper  # type: ignore[return-value]


def _week(_ctx: click.Context, _param: click.Parameter, value: str | None) -> IsoWeek | None:
    if value is None:
        return None
    try:
        return IsoWeek.parse(value)
    except SocialsearchError as exc:
        raise click.BadParameter(str(exc)) from None


def _dir(exists: bool = False) -> click.Path:
    return click.Path(file_okay=False, dir_okay=True, exists=exists, path_type=Path)


keys_option = click.option(
    "--keys", "keys_dir", required=True, type=_dir(), help="Keystore folder (see `keys init`)."
)
state_option = click.option(
    "--state", "state_dir", required=True, type=_dir(), help="State folder: ledger, audit log, vaults."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="socialsearch")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """socialsearch: the weekly, privacy-preserving police-to-municipality child-welfare search.

    \b
    Example:
        socialsearch demo
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


# --------------------------------------------------------------------------- keys
@cli.group()
def keys() -> None:
    """Create, rotate, export and show keys (secrets are never printed).

    \b
    Example:
        socialsearch keys init --keys ./keys
    """


@keys.command("init")
@keys_option
@_handle_errors
def keys_init(keys_dir: Path) -> None:
    """Create the pseudonymisation secret and the custodian key pair (files mode 0600).

    \b
    Example:
        socialsearch keys init --keys ./keys
    """
    from .keys import KeyStore

    store = KeyStore.init(keys_dir)
    click.echo(f"created keystore {keys_dir} (primary key {store.primary_key_id}, "
               f"custodian key {store.custodian_key_id})")


@keys.command("show")
@keys_option
@_handle_errors
def keys_show(keys_dir: Path) -> None:
    """Show key ids, their status and the custodian's public key; never secrets.

    \b
    Example:
        socialsearch keys show --keys ./keys
    """
    from .keys import KeyStore

    click.echo(json.dumps(KeyStore.load(keys_dir).describe(), indent=2, ensure_ascii=False))


@keys.command("rotate")
@keys_option
@click.option("--promote", metavar="KID", help="Make this (already added) key the primary.")
@click.option("--disable", metavar="KID", help="Disable this key (not the primary).")
@_handle_errors
def keys_rotate(keys_dir: Path, promote: str | None, disable: str | None) -> None:
    """Rotate in three steps: add a key, promote it, later disable the old one.

    Old keys stay in the keystore for re-identification and re-keying.

    \b
    Example:
        socialsearch keys rotate --keys ./keys            # adds a new key
        socialsearch keys rotate --keys ./keys --promote k1a2b3c4d
        socialsearch keys rotate --keys ./keys --disable k9f8e7d6c
    """
    from .keys import rotate

    store = rotate(keys_dir, promote=promote, disable=disable)
    click.echo(json.dumps(store.describe(), indent=2, ensure_ascii=False))


@keys.command("export")
@keys_option
@click.option("--role", type=click.Choice(["hub", "station"]), required=True,
              help="hub: no secret, only the draft-id key and the custodian's public key; "
                   "station: the secret and the custodian's public key.")
@click.option("--out", "out_dir", required=True, type=_dir(), help="Folder for the exported keystore.")
@_handle_errors
def keys_export(keys_dir: Path, role: str, out_dir: Path) -> None:
    """Export the keys a matching hub or a source station needs, and nothing more.

    \b
    Example:
        socialsearch keys export --keys ./keys --role hub --out ./hub-keys
    """
    from .keys import export

    export(keys_dir, out_dir, role)  # type: ignore[arg-type]
    click.echo(f"exported a {role} keystore to {out_dir}")


@keys.command("rekey")
@keys_option
@state_option
@click.option("--to", "to_key", metavar="KID", help="Key to re-key to (default: the primary key).")
@_handle_errors
def keys_rekey(keys_dir: Path, state_dir: Path, to_key: str | None) -> None:
    """After promoting a new key: re-key the ledger and vaults so nothing is notified twice.

    The key custodian runs it with the full keystore, before the first weekly run with the new key.

    \b
    Example:
        socialsearch keys rekey --keys ./keys --state ./state
    """
    from .rekey import rekey_state

    click.echo(json.dumps(rekey_state(state_dir, keys_dir, to_key), indent=2, ensure_ascii=False))


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
@_handle_errors
def catalogue_check(path: Path | None) -> None:
    """Validate a catalogue (default: the packaged one); every problem is listed with its line.

    \b
    Example:
        socialsearch catalogue check ./my-district/event_codes.toml
    """
    from .catalogue import load_catalogue

    cat = load_catalogue(path)
    immediate = sorted(c.id for c in cat.categories if c.immediate)
    click.echo(f"{cat.source}: ok - {len(cat.categories)} categories, {len(cat.codes)} codes, "
               f"threshold {cat.threshold}, lookback {cat.lookback_weeks} weeks, child_max_age "
               f"{cat.child_max_age}, immediate: {', '.join(immediate) or 'none'}; sha256 {cat.digest}")


# --------------------------------------------------------------------------- data
@cli.command()
@click.option("--out", "out_dir", required=True, type=_dir(), help="Folder to write the extracts to.")
@click.option("--scale", default=0.01, show_default=True, type=click.FloatRange(min=0.0001),
              help="Size as a share of Denmark: 0.01 is about 60,000 people; 1.0 is national "
                   "(about 5.97 million people, 1.15 million children); 10 is ten Denmarks.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--week", required=True, callback=_week, help="Last ISO week of the year of events, e.g. 2026-W47.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@_handle_errors
def synth(out_dir: Path, scale: float, seed: int, week: IsoWeek, fmt: str) -> None:
    """Write a synthetic Denmark in the input contract's layout (one file per police district).

    The default size is small (about 60,000 people); ask for national size with --scale 1.0.

    \b
    Example:
        socialsearch synth --out ./extract --seed 1 --week 2026-W47
        socialsearch synth --out ./national --scale 1.0 --week 2026-W47
    """
    from .synth import synthesize

    summary = synthesize(out_dir, scale=scale, seed=seed, week=week, fmt=fmt)  # type: ignore[arg-type]
    click.echo(json.dumps(dataclasses.asdict(summary), indent=2, ensure_ascii=False, default=str))


@cli.command()
@click.option("--input", "input_dir", required=True, type=_dir(exists=True), help="Raw extracts (DESIGN §3).")
@click.option("--out", "out_dir", required=True, type=_dir(), help="Folder for the pseudonymised extracts.")
@keys_option
@_handle_errors
def pseudonymise(input_dir: Path, out_dir: Path, keys_dir: Path) -> None:
    """At a source station: replace CPR numbers, journal numbers and names by keyed values.

    `socialsearch run` accepts the result at a hub that holds no secret.

    \b
    Example:
        socialsearch pseudonymise --input ./extract --out ./pseudo --keys ./keys
    """
    from .pseudonymise import pseudonymise_dir

    report = pseudonymise_dir(input_dir, out_dir, keys_dir)
    click.echo(json.dumps(report, indent=2, ensure_ascii=False))


# --------------------------------------------------------------------------- the weekly run
@cli.command()
@click.option("--input", "input_dir", required=True, type=_dir(exists=True),
              help="Raw extracts (needs the secret) or pseudonymised extracts (does not).")
@click.option("--week", required=True, callback=_week, help="ISO week, e.g. 2026-W47.")
@click.option("--out", "out_dir", required=True, type=_dir(), help="Output folder for drafts.")
@state_option
@keys_option
@click.option("--catalogue", "catalogue_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Event-code catalogue (default: the packaged configs/event_codes.toml).")
@_handle_errors
def run(input_dir: Path, week: IsoWeek, out_dir: Path, state_dir: Path, keys_dir: Path,
        catalogue_path: Path | None) -> None:
    """Run the weekly search and write pseudonymised drafts per municipality.

    \b
    Example:
        socialsearch run --input ./extract --week 2026-W47 --out ./out --state ./state --keys ./keys
    """
    from .pipeline import run_week

    report = run_week(input_dir=input_dir, week=week, out_dir=out_dir, state_dir=state_dir,
                      keys_dir=keys_dir, catalogue_path=catalogue_path)
    click.echo(report.describe())


@cli.command()
@state_option
@click.option("--draft", "draft_id", required=True, help="The draft id.")
@click.option("--decision", type=click.Choice(["approve", "dismiss"]), required=True)
@click.option("--reason", required=True, help="Why (kept in the ledger and the audit log).")
@_handle_errors
def review(state_dir: Path, draft_id: str, decision: str, reason: str) -> None:
    """Record the municipality's decision on a draft.

    \b
    Example:
        socialsearch review --state ./state --draft D2026W47-... --decision approve --reason "Relevant"
    """
    from .pipeline import review_draft

    review_draft(state_dir, draft_id, decision, reason)
    click.echo(f"recorded: {decision} {draft_id}")


@cli.command()
@state_option
@keys_option
@click.option("--draft", "draft_id", required=True, help="An approved draft id.")
@_handle_errors
def reidentify(state_dir: Path, keys_dir: Path, draft_id: str) -> None:
    """The key custodian re-identifies one approved draft (written to the audit log).

    \b
    Example:
        socialsearch reidentify --state ./state --keys ./keys --draft D2026W47-...
    """
    from .pipeline import reidentify_draft

    click.echo(json.dumps(reidentify_draft(state_dir, keys_dir, draft_id), indent=2, ensure_ascii=False))


@cli.group()
def audit() -> None:
    """Check the hash-chained audit log.

    \b
    Example:
        socialsearch audit verify --state ./state
    """


@audit.command("verify")
@state_option
@_handle_errors
def audit_verify(state_dir: Path) -> None:
    """Verify the audit log: fails on any changed, removed or reordered entry.

    \b
    Example:
        socialsearch audit verify --state ./state
    """
    from .audit import verify

    report = verify(state_dir)
    click.echo(f"audit log ok: {report.entries} entries, head {report.head}")


@cli.command()
@click.option("--dir", "demo_dir", default=Path("socialsearch-demo"), show_default=True, type=_dir(),
              help="Folder for the demo (created; a previous demo there is replaced).")
@click.option("--scale", default=0.01, show_default=True, type=click.FloatRange(min=0.0005),
              help="Size of the synthetic Denmark (0.01 is about 60,000 people).")
@click.option("--seed", default=14, show_default=True, type=int)
@click.option("--week", callback=_week, help="ISO week to search (default: the last complete week).")
@_handle_errors
def demo(demo_dir: Path, scale: float, seed: int, week: IsoWeek | None) -> None:
    """Synthetic data, keys, one weekly run, and where to look.

    \b
    Example:
        socialsearch demo
    """
    from .demo import run_demo

    run_demo(demo_dir, scale=scale, seed=seed, week=week)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="socialsearch")
