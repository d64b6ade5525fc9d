"""``socialsearch demo``: a synthetic Denmark, keys, one weekly run, and where to look.

The demo plays all three trust domains on one machine: a source station pseudonymises the
synthetic extracts with the full keystore, the hub runs the weekly search on the
pseudonymised extracts with a keystore that holds no secret, and the key custodian's keystore
is left for `review` and `reidentify`.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import progress
from .crypto.keys import keys_export, keys_init
from .crypto.municipal import keys_municipality_add, keys_municipality_init
from .errors import UsageError
from .geography import geography
from .hub.pipeline import RunReport, run
from .opening import open_drafts
from .station.pipeline import pseudonymise
from .synthetic import synth
from .weeks import IsoWeek

__all__ = ["demo"]

_MARKER = ".socialsearch-demo"


def _prepare(demo_dir: Path) -> None:
    """Create ``demo_dir``; replace an earlier demo there, refuse any other non-empty folder."""
    if demo_dir.exists() and any(demo_dir.iterdir()):
        if not (demo_dir / _MARKER).is_file():
            raise UsageError(
                f"{demo_dir} exists and is not an earlier socialsearch demo; "
                "choose another folder"
            )
        shutil.rmtree(demo_dir)
    demo_dir.mkdir(parents=True, exist_ok=True)
    (demo_dir / _MARKER).write_text("created by `socialsearch demo`; safe to delete\n", encoding="utf-8")


def demo(demo_dir: str | Path = "socialsearch-demo", *, scale: float = 0.01, seed: int = 14,
         week: str | IsoWeek | None = None, console: Console | None = None) -> RunReport:
    """Run the whole pipeline on synthetic data in ``demo_dir`` and print where to look (``socialsearch demo``).

    A synthetic Denmark of ``scale`` (0.01 is about 60,000 people), a full keystore and its hub
    export, the hub extract at the source station, and one weekly run of ``week`` (default: the
    last complete ISO week) at the hub. An earlier demo in ``demo_dir`` is replaced; any other
    non-empty folder is refused.
    """
    console = console or Console(soft_wrap=True)
    demo_dir = Path(demo_dir)
    if week is None:
        week = IsoWeek.of(date.today()).shift(-1)  # the last complete ISO week
    elif not isinstance(week, IsoWeek):
        week = IsoWeek.parse(week)
    _prepare(demo_dir)
    extract, pseudo = demo_dir / "extract", demo_dir / "pseudonymised"
    keys, hub_keys = demo_dir / "keys", demo_dir / "hub-keys"
    out, state = demo_dir / "out", demo_dir / "state"

    with progress.stage("synthesising a small Denmark"):
        made = synth(extract, scale=scale, seed=seed, week=week)
    console.print(f"[bold]1.[/] synthetic extracts for week {week}: {made.people:,} people, "
                  f"{made.children:,} children, {made.rows['incidents']:,} police events -> {extract}")
    keys_init(keys)
    keys_export(keys, hub_keys, "hub")
    municipal = demo_dir / "municipality-keys"
    for code in sorted(geography().municipality_codes):  # each municipality makes its own key pair
        keys_municipality_init(municipal / code, code)
        keys_municipality_add(keys, municipal / code / "municipality.pub")
    console.print(f"[bold]2.[/] keys: {keys} (custodian, secret), {hub_keys} (hub: no secret) and one key pair "
                  f"per municipality in {municipal} (their public keys are in {keys / 'municipalities'})")
    with progress.stage("the hub extract at the source station"):
        pseudonymise(extract, pseudo, keys, week=week)
    console.print(f"[bold]3.[/] the hub extract for {week} (pseudonyms only: no CPR number, name, birth date "
                  f"or journal number) -> {pseudo}")
    with progress.stage(f"the weekly search for {week} at the hub"):
        report = run(pseudo, week, out, state, hub_keys, new_state=True)  # the first week of a new ledger
    console.print(f"[bold]4.[/] weekly search for {week}: {report.drafts} draft(s) (the first week of a new "
                  f"ledger in {state}: `run --new-state`; later weeks give the same --state without it)")

    table = Table(title=f"Drafts per municipality, {week}")
    table.add_column("kommunekode")
    table.add_column("kommune")
    table.add_column("drafts", justify="right")
    geo = geography()
    for code, n in sorted(report.drafts_per_municipality.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(code, geo.municipality_name(code), str(n))
    console.print(table)
    persons = report.summary["persons"]
    console.print(f"persons without a valid CPR: {persons['without_valid_cpr']}, resolved at the "
                  f"station: {persons['resolved_probabilistically']}, unresolved: {persons['unresolved']}")
    draft_id = "<draft_id>"
    if report.html_paths:
        first = max(report.html_paths, key=lambda p: report.drafts_per_municipality[p.parent.name])
        console.print(f"\nOpen a caseworker's page: [bold]{first.resolve()}[/]")
        draft_id = json.loads((first.parent / "drafts.json").read_text(encoding="utf-8"))[0]["draft_id"]
        opened = open_drafts(first.parent, municipal / first.parent.name)
        console.print(f"The same page opened: why each child was drafted, the events, codes, roles, ages, times "
                      f"and places the station sealed for "
                      f"{first.parent.name} (`socialsearch open --drafts {first.parent} --keys "
                      f"{municipal / first.parent.name}`): [bold]{Path(opened['html']).resolve()}[/]")
    console.print(f"Summary: {(out / str(week) / 'summary.json').resolve()}")
    console.print(
        "\nNext steps (the municipality, then the key custodian, then the data-protection officer):\n"
        f"  socialsearch drafts list --state {state} --week {week}\n"
        f"  socialsearch review --state {state} --draft {draft_id} --decision approve --reason \"Relevant\" "
        "--reviewer ABC\n"
        f"  socialsearch reidentify --state {state} --keys {keys} --draft {draft_id}\n"
        f"  socialsearch audit verify --state {state}\n"
        f"  socialsearch stats --state {state} --keys {keys} --from {week} --to {week} --out {demo_dir / 'stats'}",
        highlight=False,
    )
    return report
