"""Benchmarks of socialsearch.station.resolution: how its parameters were fitted, its accuracy on the
synthetic truth and on FEBRL4 (against a plain-text recordlinkage baseline in the same run),
and its speed at national scale.

Run explicitly (they are not collected by the default ``pytest``)::

    pytest benchmarks/test_resolution_bench.py -p no:cacheprovider -s -k fit
    pytest benchmarks/test_resolution_bench.py -p no:cacheprovider -s -k "synthetic or febrl or false_drafts"
    flock /tmp/socialsearch-bigmem.lock \\
        pytest benchmarks/test_resolution_bench.py -p no:cacheprovider -s -k national

Fit first (on seed 2), evaluate afterwards (on seed 1). The figures printed (and stored in
``benchmark.extra_info``) are recorded in ``docs/resolution.md``.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from memory import cpu_seconds, peak_rss_mib

from socialsearch import identifiers
from socialsearch.station.resolution import (
    DATE_LEVELS,
    DEFAULT_MODEL,
    MATCH_THRESHOLD,
    NAME_LEVELS,
    comparison_pairs,
    date_variants,
    resolve,
)
from socialsearch.weeks import IsoWeek

WEEK = IsoWeek(2026, 47)
M_FLOOR = 0.01
"""Least m-probability of any level (then renormalised): an error kind the synthetic data lack
(a one-digit birth date) must stay possible."""


# --------------------------------------------------------------------------- synthetic Denmark


def _read_table(folder: Path) -> pl.DataFrame:
    """All files of an incident_persons folder, each with its 0-based data row ``row_in_file``."""
    frames = []
    for f in sorted(folder.iterdir()):
        if f.suffix == ".parquet":
            frames.append(pl.read_parquet(f))
        elif f.suffix == ".csv":
            frames.append(pl.read_csv(f, infer_schema=False).with_columns(pl.col("birth_date").str.to_date()))
    return pl.concat([f.with_row_index("row_in_file") for f in frames], how="vertical_relaxed")


def load_synth(out: Path) -> dict[str, pl.DataFrame]:
    """Queries, register and truth from a ``socialsearch synth`` folder, through its documented files.

    Queries are the incident persons whose CPR number is not valid (``identifiers.cpr_status``);
    the truth is ``truth/fallback.parquet`` joined on (district, incident_id, row_in_file).
    """
    pop = pl.read_parquet(out / "population.parquet") if (out / "population.parquet").exists() else pl.read_csv(
        out / "population.csv", infer_schema=False
    )
    cpr = identifiers.normalise_cpr(pl.col("cpr"))
    register = pop.select(cpr.alias("cpr"), "given_name", "surname").with_columns(
        birth_date=identifiers.birth_date(pl.col("cpr"))
    )
    persons = _read_table(out / "incident_persons").with_columns(status=identifiers.cpr_status(pl.col("cpr")))
    queries = (
        persons.filter(pl.col("status") != "valid")
        .with_row_index("qid")
        .select("qid", "district", "incident_id", pl.col("row_in_file").cast(pl.UInt32), "given_name", "surname",
                "birth_date")
    )
    truth = pl.read_parquet(out / "truth" / "fallback.parquet").with_columns(pl.col("row_in_file").cast(pl.UInt32))
    queries = queries.join(
        truth.select("district", "incident_id", "row_in_file", "kind", "true_cpr", "name_variant"),
        on=["district", "incident_id", "row_in_file"],
        how="left",
    )
    return {"queries": queries, "register": register}


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    def make(scale: float, seed: int) -> Path:
        from socialsearch.synthetic import synth

        out = tmp_path_factory.mktemp(f"synth-{scale}-{seed}")
        synth(out, scale=scale, seed=seed, week=WEEK)
        return out

    return make


# --------------------------------------------------------------------------- parameters


def _log_likelihood(kernel: Any, x: np.ndarray) -> float:
    """Log-likelihood of the rows ``x`` under a fitted ECM kernel (both classes summed out).

    Each row's log-probability is the sum of the log-probabilities of the levels it has.
    (The kernel's own ``_joint_log_likelihood`` is a dense dot product of the one-hot rows
    with the log-probabilities: a level with probability 0 in a class, e.g. no one-digit
    birth date among the matches, gives 0 · (−inf) = NaN for every row, and a NaN likelihood
    never compares greater, so the restarts were not compared at all.)
    """
    from scipy.special import logsumexp

    x_unique, freq = np.unique(x, axis=0, return_counts=True)
    binary = kernel._transform_data(x_unique)
    onehot = np.asarray(binary.todense() if hasattr(binary, "todense") else binary) == 1
    log_prob = kernel.feature_log_prob_
    with np.errstate(invalid="ignore"):
        joint = np.where(onehot[:, None, :], log_prob[None, :, :], 0.0).sum(axis=2) + kernel.class_log_prior_
    return float((logsumexp(joint, axis=1) * freq).sum())


def fit_parameters(queries: pl.DataFrame, register: pl.DataFrame, restarts: int = 10) -> dict[str, Any]:
    """m- and u-probabilities per level by recordlinkage's ECMClassifier, unsupervised.

    The candidate pairs are those of :func:`comparison_pairs` without the one-digit name
    blocking (every resident on a candidate date, so that the levels are independent within
    a class as ECM assumes). Missing names are a level of their own in the fit and are left
    out of the m's and u's afterwards. ECM with random starts (seeds 0..restarts-1); the fit
    with the highest likelihood is kept, and its class with the smaller prior is the match
    class. Each m is then floored at :data:`M_FLOOR` and the m's renormalised.
    """
    import pandas as pd
    import recordlinkage as rl

    pairs, mapping = comparison_pairs(queries.select("qid", "given_name", "surname", "birth_date"), register,
                                      block_one_digit=False)
    cols = ["date_level", "given_level", "surname_level"]
    features = pd.DataFrame({c: pairs[c].fill_null(9).cast(pl.Int64).to_numpy() for c in cols})
    best: tuple[float, Any] | None = None
    for seed in range(restarts):
        np.random.seed(seed)
        ecm = rl.ECMClassifier(init="random", max_iter=500, atol=1e-6)
        ecm.fit(features)
        k = ecm.kernel
        ll = _log_likelihood(k, features.to_numpy())
        if best is None or ll > best[0]:
            best = (ll, ecm)
    assert best is not None
    ecm = best[1]
    k = ecm.kernel
    match = int(np.argmin(k.class_log_prior_))
    probs: dict[str, dict[str, list[float]]] = {}
    offset = 0
    for col, binarizer in zip(cols, k._binarizers, strict=True):
        levels = list(binarizer.classes_)
        m = np.exp(k.feature_log_prob_[match, offset : offset + len(levels)])
        u = np.exp(k.feature_log_prob_[1 - match, offset : offset + len(levels)])
        offset += len(levels)
        n = len(DATE_LEVELS) if col == "date_level" else len(NAME_LEVELS)
        mm = np.array([m[levels.index(i)] if i in levels else 0.0 for i in range(n)])
        uu = np.array([u[levels.index(i)] if i in levels else 0.0 for i in range(n)])
        mm, uu = mm / mm.sum(), uu / uu.sum()
        floored = np.maximum(mm, M_FLOOR)
        probs[col] = {"m_ecm": mm.tolist(), "u_ecm": uu.tolist(), "m": (floored / floored.sum()).tolist(),
                      "u": np.maximum(uu, 1e-4).tolist()}
    share = float(np.exp(k.class_log_prior_[match]))
    identities = int(mapping["iid"].drop_nulls().n_unique())
    return {"pairs": pairs.height, "match_share": share, "identities": identities,
            "p_in_register": share * pairs.height / identities, "log_likelihood": best[0], "probs": probs}


# recordlinkage's ECM takes logs of zero probabilities on the way (its own numpy RuntimeWarning);
# the fit does not use those values (see _fit), so that one warning is let through here only.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_fit_parameters(synth_dir: Any) -> None:
    """Reproduce DEFAULT_MODEL's constants: ECM on synth seed 2, scale 0.05 (never the evaluation seed)."""
    data = load_synth(synth_dir(0.05, 2))
    fit = fit_parameters(data["queries"], data["register"])
    print(f"pairs {fit['pairs']}, match share {fit['match_share']:.5f}, identities {fit['identities']}, "
          f"p_in_register {fit['p_in_register']:.4f}, log-likelihood {fit['log_likelihood']:.1f}")
    for col, p in fit["probs"].items():
        print(col, {k: [round(x, 4) for x in v] for k, v in p.items()})
    model = DEFAULT_MODEL
    got = fit["probs"]
    np.testing.assert_allclose(model.date_m, got["date_level"]["m"], atol=5e-4)
    np.testing.assert_allclose(model.given_m, got["given_level"]["m"], atol=5e-4)
    np.testing.assert_allclose(model.surname_m, got["surname_level"]["m"], atol=5e-4)
    np.testing.assert_allclose(model.given_u, got["given_level"]["u"], atol=5e-4)
    np.testing.assert_allclose(model.surname_u, got["surname_level"]["u"], atol=5e-4)
    assert abs(model.p_in_register - fit["p_in_register"]) < 5e-4


# --------------------------------------------------------------------------- accuracy, synthetic


def _in_variants(queries: pl.DataFrame, register: pl.DataFrame) -> pl.Series:
    """Per query: is its true resident in the register and born on one of the query's candidate dates?"""
    variants = date_variants(queries["birth_date"]).select("birth_date", true_birth="candidate_date")
    true = queries.select("qid", "birth_date", "true_cpr").join(
        register.select(pl.col("cpr").alias("true_cpr"), true_birth="birth_date"), on="true_cpr"
    )
    ok = true.join(variants, on=["birth_date", "true_birth"], how="semi")["qid"]
    return queries["qid"].is_in(ok.implode())


def score(matches: pl.DataFrame, queries: pl.DataFrame, register: pl.DataFrame) -> dict[str, Any]:
    """Precision, recall of the resolvable, false matches, outcomes; by name variant."""
    got = queries.with_columns(resolvable=_in_variants(queries, register)).join(matches, on="qid")
    resolved = got.filter(pl.col("outcome") == "resolved")
    correct = int((resolved["cpr"] == resolved["true_cpr"]).sum())
    false = resolved.height - correct
    resolvable = int(got["resolvable"].sum())
    by_variant = (
        got.filter("resolvable")
        .group_by("name_variant")
        .agg(n=pl.len(), resolved_correctly=(pl.col("cpr") == pl.col("true_cpr")).sum())
        .sort("name_variant")
    )
    return {
        "queries": got.height,
        "in_register": int(got["true_cpr"].is_not_null().sum()),
        "resolvable": resolvable,
        "resolved": resolved.height,
        "precision": correct / max(resolved.height, 1),
        "recall_of_resolvable": correct / max(resolvable, 1),
        "false_matches": false,
        "false_matches_of_outsiders": int(resolved["true_cpr"].is_null().sum()),
        "outcomes": dict(got.group_by("outcome").len().sort("outcome").iter_rows()),
        "unresolved_resolvable_by_outcome": dict(
            got.filter(pl.col("resolvable") & (pl.col("cpr").is_null() | (pl.col("cpr") != pl.col("true_cpr"))))
            .group_by("outcome").len().sort("outcome").iter_rows()
        ),
        "by_name_variant": by_variant.rows(named=True),
    }


def test_synthetic_truth(benchmark: Any, synth_dir: Any) -> None:
    """(a) The synthetic truth: ``socialsearch synth --scale 0.05 --seed 1 --week 2026-W47``."""
    data = load_synth(synth_dir(0.05, 1))
    queries, register = data["queries"], data["register"]
    q = queries.select("qid", "given_name", "surname", "birth_date")
    result = benchmark.pedantic(lambda: resolve(q, register), rounds=3, iterations=1)
    info = {"register": register.height, **score(result.matches, queries, register), "stats": result.stats,
            "threshold": MATCH_THRESHOLD}
    without_tf = resolve(q, register, model=replace(DEFAULT_MODEL, term_frequencies=False))
    info["without_term_frequencies"] = {
        k: v for k, v in score(without_tf.matches, queries, register).items() if k != "by_name_variant"
    }
    benchmark.extra_info.update(info)
    for k, v in info.items():
        print(f"{k}: {v}")
    assert info["false_matches"] == 0
    assert info["recall_of_resolvable"] >= 0.98


# --------------------------------------------------------------------------- accuracy, FEBRL4


def _prf(pred: set[tuple[str, str]], truth: set[tuple[str, str]]) -> dict[str, float]:
    tp = len(pred & truth)
    p = tp / len(pred) if pred else 0.0
    r = tp / len(truth) if truth else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp, "n_pred": len(pred)}


def _febrl_frame(df: Any) -> pl.DataFrame:
    """rec_id, given_name, surname, birth_date (Date; a date that does not parse is null)."""
    r = df.reset_index()
    cols = ["rec_id", "given_name", "surname", "date_of_birth"]
    frame = pl.DataFrame(
        {c: r[c].astype(object).where(r[c].notna(), None).tolist() for c in cols}, schema={c: pl.String for c in cols}
    )
    return frame.with_columns(birth_date=pl.col("date_of_birth").str.to_date("%Y%m%d", strict=False))


def test_febrl4(benchmark: Any) -> None:
    """(b) FEBRL4 with names and birth date only: resolve A against B, and the plain-text
    plain-text recordlinkage baseline in the same run."""
    rl_datasets = pytest.importorskip("recordlinkage.datasets")
    import recordlinkage as rl

    a, b, links = rl_datasets.load_febrl4(return_links=True)
    truth = set(zip(links.get_level_values(0), links.get_level_values(1), strict=True))
    fa, fb = _febrl_frame(a), _febrl_frame(b)
    queries = fa.with_row_index("qid").select("qid", "given_name", "surname", "birth_date")
    register = fb.filter(pl.col("birth_date").is_not_null()).select(
        pl.col("rec_id").alias("cpr"), "given_name", "surname", "birth_date"
    )
    t0, c0 = time.perf_counter(), cpu_seconds()
    result = benchmark.pedantic(lambda: resolve(queries, register), rounds=5, iterations=1)
    ids = fa["rec_id"]
    got = result.matches.filter(pl.col("outcome") == "resolved")
    pred = set(zip(ids.gather(got["qid"]).to_list(), got["cpr"].to_list(), strict=True))

    # Plain-text baseline: block on dob + sorted neighbourhood on surname, JW names, ECM.
    idx = rl.Index()
    idx.block("date_of_birth")
    idx.sortedneighbourhood("surname", window=5)
    pairs = idx.index(a, b)
    comp = rl.Compare()
    comp.string("given_name", "given_name", method="jarowinkler", threshold=0.85, label="given")
    comp.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    comp.exact("date_of_birth", "date_of_birth", label="dob")
    t1 = time.perf_counter()
    features = comp.compute(pairs, a, b)
    base = set(rl.ECMClassifier(binarize=0.5).fit_predict(features).to_list())
    t_base = time.perf_counter() - t1

    # In scope of DESIGN §5a: the query has a birth date and the true record is born on one of its variants.
    fq = fa.with_row_index("qid").with_columns(
        true_cpr=pl.col("rec_id").replace_strict(dict(truth), default=None, return_dtype=pl.String)
    )
    scope_q = fq.filter(_in_variants(fq, register))
    scope_ids = set(scope_q["rec_id"].to_list())
    scope = {(x, y) for x, y in truth if x in scope_ids}
    info = {
        "resolution_all": _prf(pred, truth),
        "baseline_all": _prf(base, truth),
        "resolution_in_scope": _prf({p for p in pred if p[0] in scope_ids}, scope),
        "baseline_in_scope": _prf({p for p in base if p[0] in scope_ids}, scope),
        "in_scope_links": len(scope),
        "false_matches": len(pred - truth),
        "stats": result.stats,
        "seconds_resolve": benchmark.stats.stats.mean,
        "seconds_baseline_compare_and_ecm": t_base,
        "cpu_seconds_total": cpu_seconds() - c0,
        "wall_seconds_total": time.perf_counter() - t0,
    }
    benchmark.extra_info.update(info)
    for k, v in info.items():
        print(f"{k}: {v}")
    assert info["resolution_all"]["f1"] > 0.825


# --------------------------------------------------------------------------- speed, national


def test_national_scale(benchmark: Any, synth_dir: Any) -> None:
    """(c) 50,000 queries against the national register (``synth --scale 1.0 --seed 1``).

    The queries are every incident person without a valid CPR number, topped up to 50,000 with
    a seeded sample of the other incident persons as written (their CPR number is their
    truth). Scale with ``SOCIALSEARCH_BENCH_SCALE`` (default 1.0); run under the bigmem flock.
    """
    scale = float(os.environ.get("SOCIALSEARCH_BENCH_SCALE", "1.0"))
    t0 = time.perf_counter()
    out = synth_dir(scale, 1)
    t_synth = time.perf_counter() - t0
    data = load_synth(out)
    register = data["register"]
    fallback = data["queries"]
    persons = _read_table(out / "incident_persons").with_columns(status=identifiers.cpr_status(pl.col("cpr")))
    fill = (
        persons.filter(pl.col("status") == "valid")
        .sample(max(50_000 - fallback.height, 0), seed=3)
        .select("given_name", "surname", "birth_date", true_cpr=identifiers.normalise_cpr(pl.col("cpr")),
                name_variant=pl.lit("none"))
    )
    queries = pl.concat(
        [fallback.select("given_name", "surname", "birth_date", "true_cpr", "name_variant"), fill]
    ).head(50_000).with_row_index("qid")
    q = queries.select("qid", "given_name", "surname", "birth_date")

    c0 = cpu_seconds()
    result = benchmark.pedantic(lambda: resolve(q, register), rounds=1, iterations=1)
    c_resolve = cpu_seconds() - c0
    info = {
        "scale": scale,
        "register": register.height,
        "seconds_synth": t_synth,
        "seconds_resolve": benchmark.stats.stats.mean,
        "cpu_seconds_resolve": c_resolve,
        "load_average_1min": os.getloadavg()[0],
        "peak_rss_mib_process": peak_rss_mib(),
        "stats": result.stats,
        **{k: v for k, v in score(result.matches, queries, register).items() if k != "by_name_variant"},
    }
    benchmark.extra_info.update(info)
    for k, v in info.items():
        print(f"{k}: {v}")


# --------------------------------------------------------------------------- false drafts


def _cli(*args: str | Path) -> None:
    """``python -m socialsearch ARGS -q`` as a user types it; fails the benchmark on a non-zero exit."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "socialsearch", *map(str, args), "-q"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def oracle_extract(src: Path, dst: Path) -> int:
    """Copy a synth folder, giving every incident person without a valid CPR number the true
    CPR number from ``truth/fallback.parquet`` (foreigners have none and keep theirs).

    Returns the number of rows changed.
    """
    import shutil

    shutil.copytree(src, dst)
    truth = (
        pl.read_parquet(src / "truth" / "fallback.parquet")
        .filter(pl.col("true_cpr").is_not_null())
        .select("district", "incident_id", pl.col("row_in_file").cast(pl.UInt32), "true_cpr")
    )
    changed = 0
    for f in sorted((dst / "incident_persons").glob("*.parquet")):
        rows = pl.read_parquet(f).with_row_index("row_in_file")
        fixed = rows.join(truth, on=["district", "incident_id", "row_in_file"], how="left", maintain_order="left")
        changed += int(fixed["true_cpr"].is_not_null().sum())
        fixed.with_columns(cpr=pl.coalesce("true_cpr", "cpr")).drop("row_in_file", "true_cpr").write_parquet(f)
    return changed


def _drafts(week_dir: Path) -> pl.DataFrame:
    """One row per (draft, signal) of every municipality's ``drafts.json``: municipality, child
    pseudonym, rule, score, number of signals, and the signal's identity."""
    import json

    rows = []
    for f in sorted(week_dir.glob("*/drafts.json")):
        for d in json.loads(f.read_text(encoding="utf-8")):
            for s in d["signals"] or [{}]:
                rows.append({
                    "municipality": d["municipality"], "child": d["child"]["pseudonym"],
                    "rule": d["reason"]["rule"], "score": d["reason"]["score"], "n_signals": len(d["signals"]),
                    "signal": f"{s.get('event_ref')}|{s.get('person')}|{s.get('link')}|{s.get('code')}",
                })
    schema = {"municipality": pl.String, "child": pl.String, "rule": pl.String, "score": pl.Int64,
              "n_signals": pl.Int64, "signal": pl.String}
    return pl.DataFrame(rows, schema=schema)


def false_drafts(real: pl.DataFrame, oracle: pl.DataFrame) -> dict[str, Any]:
    """What the real run has that the oracle run has not (and what it misses), per municipality.

    A false draft is a draft (municipality, child pseudonym) of the real run that the oracle
    run has not, or has with another rule, score or number of signals; a false signal is a
    signal of a real draft that the oracle's draft of the same child lacks.
    """
    key = ["municipality", "child"]
    draft_cols = [*key, "rule", "score", "n_signals"]
    rd, od = real.select(draft_cols).unique(), oracle.select(draft_cols).unique()
    false = rd.join(od, on=draft_cols, how="anti")
    missed = od.join(rd, on=draft_cols, how="anti")
    sig = [*key, "signal"]
    false_signals = real.select(sig).unique().join(oracle.select(sig).unique(), on=sig, how="anti")
    missed_signals = oracle.select(sig).unique().join(real.select(sig).unique(), on=sig, how="anti")
    return {
        "drafts_real": rd.height,
        "drafts_oracle": od.height,
        "false_drafts": false.height,
        "false_drafts_new_child": false.join(od, on=key, how="anti").height,
        "false_signals": false_signals.height,
        "missed_drafts": missed.height,
        "missed_drafts_no_draft_at_all": missed.join(rd, on=key, how="anti").height,
        "missed_signals": missed_signals.height,
        "false_by_municipality": dict(false.group_by("municipality").len().sort("municipality").iter_rows()),
    }


def test_false_drafts(tmp_path: Path, synth_dir: Any) -> None:
    """(d) False drafts of single-site ``run`` on the scale-0.05 seed-1 extract, against an oracle
    run on a copy in which every person without a valid CPR number has their true one.

    Both runs use the same keystore, so the same child has the same recipient pseudonym in
    both; the drafts are compared per municipality by child pseudonym, rule, score and
    number of signals.
    """
    src = synth_dir(0.05, 1)
    keys = tmp_path / "K"
    _cli("keys", "init", "--keys", keys)
    changed = oracle_extract(src, tmp_path / "oracle-input")
    import json

    out: dict[str, pl.DataFrame] = {}
    persons: dict[str, Any] = {}
    for name, folder in (("real", src), ("oracle", tmp_path / "oracle-input")):
        _cli("run", "--input", folder, "--week", str(WEEK), "--out", tmp_path / f"O-{name}",
             "--state", tmp_path / f"S-{name}", "--keys", keys, "--new-state")
        out[name] = _drafts(tmp_path / f"O-{name}" / str(WEEK))
        summary = json.loads((tmp_path / f"O-{name}" / str(WEEK) / "summary.json").read_text(encoding="utf-8"))
        persons[name] = summary.get("persons", {})
    info = {"oracle_rows_changed": changed, "persons_real_run": persons["real"],
            "persons_oracle_run": persons["oracle"], **false_drafts(out["real"], out["oracle"])}
    for k, v in info.items():
        print(f"{k}: {v}")
    assert info["false_drafts"] == 0
    assert info["false_signals"] == 0
