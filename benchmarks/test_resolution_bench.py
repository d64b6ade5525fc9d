"""Benchmarks of socialsearch.resolution: how its parameters were fitted, its accuracy on the
synthetic truth and on FEBRL4 (against a plain-text recordlinkage baseline in the same run),
and its speed at national scale.

Run explicitly (they are not collected by the default ``pytest``)::

    pytest benchmarks/test_resolution_bench.py -p no:cacheprovider -s -k "fit or synth or febrl"
    flock /tmp/socialsearch-bigmem.lock \\
        pytest benchmarks/test_resolution_bench.py -p no:cacheprovider -s -k national

The figures printed (and stored in ``benchmark.extra_info``) are recorded in
``docs/resolution.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from socialsearch import identifiers
from socialsearch.resolution import (
    DATE_LEVELS,
    DEFAULT_MODEL,
    NAME_LEVELS,
    comparison_pairs,
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
        from socialsearch.synth import synthesize

        out = tmp_path_factory.mktemp(f"synth-{scale}-{seed}")
        synthesize(out, scale=scale, seed=seed, week=WEEK)
        return out

    return make


# --------------------------------------------------------------------------- parameters


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
    from scipy.special import logsumexp

    pairs, _ = comparison_pairs(queries.select("qid", "given_name", "surname", "birth_date"), register,
                                block_one_digit=False)
    cols = ["date_level", "given_level", "surname_level"]
    features = pd.DataFrame({c: pairs[c].fill_null(9).cast(pl.Int64).to_numpy() for c in cols})
    best: tuple[float, Any] | None = None
    for seed in range(restarts):
        np.random.seed(seed)
        ecm = rl.ECMClassifier(init="random", max_iter=500, atol=1e-6)
        ecm.fit(features)
        k = ecm.kernel
        x_unique, freq = np.unique(features.to_numpy(), axis=0, return_counts=True)
        ll = float((logsumexp(k._joint_log_likelihood(x_unique), axis=1) * freq).sum())
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
    return {"pairs": pairs.height, "match_share": float(np.exp(k.class_log_prior_[match])),
            "log_likelihood": best[0], "probs": probs}


def test_fit_parameters(synth_dir: Any) -> None:
    """Reproduce DEFAULT_MODEL's constants: ECM on synth seed 2, scale 0.05 (never the evaluation seed)."""
    data = load_synth(synth_dir(0.05, 2))
    fit = fit_parameters(data["queries"], data["register"])
    print(f"pairs {fit['pairs']}, match share {fit['match_share']:.5f}, log-likelihood {fit['log_likelihood']:.1f}")
    for col, p in fit["probs"].items():
        print(col, {k: [round(x, 4) for x in v] for k, v in p.items()})
    model = DEFAULT_MODEL
    got = fit["probs"]
    np.testing.assert_allclose(model.date_m, got["date_level"]["m"], atol=5e-4)
    np.testing.assert_allclose(model.given_m, got["given_level"]["m"], atol=5e-4)
    np.testing.assert_allclose(model.surname_m, got["surname_level"]["m"], atol=5e-4)
    np.testing.assert_allclose(model.given_u, got["given_level"]["u"], atol=5e-4)
    np.testing.assert_allclose(model.surname_u, got["surname_level"]["u"], atol=5e-4)
