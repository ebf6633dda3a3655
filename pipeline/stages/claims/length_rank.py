"""Does spell length predict getting GC001? The case's rank in its risk set (§4.12, L1384).

In a risk set drawn at the case's first GC001 (day t), every member is still on
sick leave and untreated on day t. If the chance of treatment on day t does not
depend on how long a spell will last (and treatment does not change the length),
the case is a random member of its set with respect to total length: its rank is
uniform. Two statistics, both conditional on the sets:

- the stratified Gehan score test: within a set, member i scores +1 against j
  when i is surely longer (j ended and i lasted longer, or as long and i is still
  open), -1 when surely shorter, 0 otherwise (ties, censoring). Under uniformity
  the case's score has mean 0 and the permutation variance of the set's scores;
  Z sums over sets. It uses censored lengths correctly.
- a chi-square test on the deciles of the case's randomised rank
  u = (members shorter + V x (ties + 1)) / m, V ~ U(0, 1): exactly uniform under
  the hypothesis, whatever the set size (ties broken at random, seeded).

Which sets matter: with never-treated controls (§6.2, the report's design) the
controls are selected to be short (a long spell had more time to be treated),
so the case ranks high even when length does not matter. Not-yet-treated
controls drawn from the at-risk spells (`claims.rank_control_mode`, DEFAULT) do
not have that bias; both are reported (the report's never-treated §6.2 sets whatever
`riskset.control_mode` the other analyses use).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy import stats

DECILES = 10


def set_members(riskset: pl.DataFrame, spells: pl.DataFrame) -> pl.DataFrame:
    """Members of every set with at least one control: set_id, case, length (gross days),
    censored (the spell is still open at the data end)."""
    members = riskset.select("set_id", "spell_id", "case").join(
        spells.select("spell_id", pl.col("gross_days").alias("length"), "censored"),
        on="spell_id",
        how="left",
    )
    size = pl.len().over("set_id")
    return members.filter(size > 1).select("set_id", "case", "length", "censored")


def gehan_scores(members: pl.DataFrame) -> pl.DataFrame:
    """Per set: m (members), case_score, score_variance (the permutation variance of the
    case's Gehan score when the case is any member with equal chance)."""
    indexed = members.with_row_index("member")
    pairs = indexed.join(indexed, on="set_id", suffix="_j").filter(
        pl.col("member") != pl.col("member_j")
    )
    longer = ~pl.col("censored_j") & (
        (pl.col("length") > pl.col("length_j"))
        | ((pl.col("length") == pl.col("length_j")) & pl.col("censored"))
    )
    shorter = ~pl.col("censored") & (
        (pl.col("length") < pl.col("length_j"))
        | ((pl.col("length") == pl.col("length_j")) & pl.col("censored_j"))
    )
    scores = pairs.group_by("set_id", "member", "case").agg(
        (longer.cast(pl.Int64) - shorter.cast(pl.Int64)).sum().alias("score")
    )
    return (
        scores.group_by("set_id")
        .agg(
            pl.len().alias("m"),
            pl.col("score").filter(pl.col("case")).sum().alias("case_score"),
            (pl.col("score").cast(pl.Float64) ** 2).mean().alias("score_variance"),
        )
        .sort("set_id")
    )


def randomised_ranks(members: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Per set: m and the case's randomised rank u in (0, 1) (uniform under the hypothesis)."""
    case = members.filter("case").select("set_id", pl.col("length").alias("case_length"))
    counted = (
        members.filter(~pl.col("case"))
        .join(case, on="set_id")
        .group_by("set_id")
        .agg(
            (pl.len() + 1).alias("m"),
            (pl.col("length") < pl.col("case_length")).sum().alias("shorter"),
            (pl.col("length") == pl.col("case_length")).sum().alias("ties"),
        )
        .sort("set_id")
    )
    v = np.random.default_rng(seed).random(counted.height)
    u = (counted["shorter"].to_numpy() + v * (counted["ties"].to_numpy() + 1)) / counted[
        "m"
    ].to_numpy()
    return counted.select("set_id", "m").with_columns(pl.Series("u", u))


def rank_test(members: pl.DataFrame, seed: int) -> tuple[dict[str, Any], pl.DataFrame]:
    """Summary (n_sets, mean set size, mean rank u, Gehan Z and p, chi-square, df, p) and the
    decile counts of the case's randomised rank (observed, expected)."""
    scores = gehan_scores(members)
    ranks = randomised_ranks(members, seed)
    variance = float(scores["score_variance"].sum())
    z = float(scores["case_score"].sum()) / np.sqrt(variance) if variance > 0 else np.nan
    decile = np.minimum((ranks["u"].to_numpy() * DECILES).astype(np.int64), DECILES - 1)
    observed = np.bincount(decile, minlength=DECILES)
    expected = np.full(DECILES, ranks.height / DECILES)
    chi2 = float(((observed - expected) ** 2 / expected).sum()) if ranks.height else np.nan
    summary = {
        "n_sets": ranks.height,
        "mean_set_size": float(ranks["m"].mean()) if ranks.height else np.nan,
        "mean_rank": float(ranks["u"].mean()) if ranks.height else np.nan,
        "gehan_z": z,
        "gehan_p": float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
        "chi2": chi2,
        "chi2_df": DECILES - 1,
        "chi2_p": float(stats.chi2.sf(chi2, DECILES - 1)) if np.isfinite(chi2) else np.nan,
    }
    deciles = pl.DataFrame(
        {
            "decile": np.arange(1, DECILES + 1),
            "observed": observed.astype(np.int64),
            "expected": expected,
        }
    )
    return summary, deciles
