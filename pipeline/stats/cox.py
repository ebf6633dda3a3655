"""Stratified Cox model of the time to the end of the sick-leave spell (analysis-spec.md §11).

Input: one row per member of a risk-set-sampled matched set (`set_id`; one case, a
spell that got GC001 on the index day, and up to k controls on sick leave that day),
with the person `lopnr` (controls recur across sets), `case`, `duration_days` (index
day to the end of the spell, >= 0) and `event` (the spell ended before the data end;
false = censored at the data end).

`fit_stratified_cox`: Cox model stratified by `set_id`, Efron ties (R `coxph`'s default
too), fitted by Newton-Raphson on the stratified partial likelihood, vectorised over
strata (`pipeline.stats._efron`; ~1.5 s for 70 000 sets of 6). lifelines'
`CoxPHFitter(strata=...)`, used before, loops over strata in Python (10-30 ms each,
more the more strata: over an hour for those sets); the tests check the fit against
it and R. Kaplan-Meier curves of the same rows are in `pipeline.stats.km`.

Variance conventions (reconciled with R survival::coxph in `tests/test_survival.py`):

- naive: the inverse information at the Efron MLE = R `fit$naive.var`.
- robust (the reported `std_err`): the Lin-Wei (1989) sandwich V = D'D, D = per-cluster
  sums of the dfbeta residuals U I^-1 (U = score residuals), without a small-sample
  factor (no G/(G-1)) = R `coxph(Surv(t, e) ~ case + strata(set_id), cluster = lopnr)`
  `fit$var`. lifelines computes the same sandwich, but its score residuals ignore tied
  times (its docstring says so): with day-resolution durations its robust SEs are off
  by a fraction of a per cent. We therefore compute the score residuals ourselves with
  the Efron weighting R uses (`pipeline.stats._efron`), vectorised over all strata;
  without ties they equal lifelines' exactly.
- CIs and p-values: Wald with normal quantiles on the robust SE (R `summary(fit)`).

Caveat (tests/reference_r/survival/robust_se_mc.R): with matched sets of 2-5 rows the
per-person sandwich above, in R as here, was 19-27 % below the Monte Carlo SD of the
log-HR, even with independent persons: each set's baseline hazard is a nuisance
parameter estimated from a handful of rows (compare heteroskedasticity-robust SEs with
many small fixed effects, Stock & Watson 2008). Clustering by matched set
(`CoxResult.cov_strata_`) or two-way by set and person (`cov_two_way_`, Cameron, Gelbach
& Miller 2011: V_set + V_person - V_row) came within 2-7 %. Both are in `metadata()`;
which one §11 reports is the analysis owners' decision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from pipeline.stats._efron import (
    center_by_stratum,
    newton_raphson,
    risk_sets,
    robust_cov,
    solve_information,
    sorted_score_residuals,
)
from pipeline.stats.base import (
    COEFFICIENT_SCHEMA,
    FittedModel,
    as_binary,
    drop_missing,
    drop_negative,
    json_float,
    json_floats,
    require_columns,
    safe_sqrt,
)

MAX_CONCORDANCE_PAIRS = 50_000_000  # within-stratum pairs; matched sets of <= 5 give <= 25 each


@dataclass(frozen=True, eq=False)
class CoxResult(FittedModel):
    """A fitted stratified Cox model; estimates on the log-hazard-ratio scale.

    Attributes (besides `FittedModel`'s; `terms` are the treatment, then the covariates
    kept; `cov` is the robust (Lin-Wei, per-cluster) covariance of the module
    docstring; n_dropped counts the input rows not fitted: nulls/NaN, negative
    durations, dropped strata; `converged` is also False when a coefficient looks
    infinite; `n_clusters` counts rows when there is no cluster column):
        strata, cluster: the column names used (`cluster` None = per row).
        naive_cov_: inverse information (model-based) covariance.
        cov_strata_: the same sandwich with the matched sets as clusters.
        cov_two_way_: cov_strata_ + cov_ - (sandwich per row): clustered by set and person.
        n_strata, n_strata_dropped: strata fitted / dropped as uninformative.
        n_events: events in the rows fitted.
        concordance: Harrell's C over pairs within strata (= R `concordance(fit)`).
    """

    strata: str
    cluster: str | None
    naive_cov_: np.ndarray = field(repr=False)
    cov_strata_: np.ndarray = field(repr=False)
    cov_two_way_: np.ndarray = field(repr=False)
    n_strata: int
    n_strata_dropped: int
    n_events: int
    concordance: float

    @property
    def naive_std_err(self) -> np.ndarray:
        """Model-based standard errors of `params`, log-HR scale."""
        return safe_sqrt(np.diag(self.naive_cov_))

    @property
    def hazard_ratio(self) -> float:
        """Treatment hazard ratio exp(b), unitless (> 1: spells of cases end sooner)."""
        return self._treatment_ratio()[0]

    @property
    def hazard_ratio_ci(self) -> tuple[float, float]:
        """95 % CI of the hazard ratio: exp of the robust Wald CI of the log-HR."""
        return self._treatment_ratio()[1:]

    def _derived(self) -> list[pl.DataFrame]:
        """Summary row `HR(<treatment>)`: exp(b), delta-method SE HR * se(b), exp CI, p."""
        return [pl.DataFrame([self._ratio_row("HR")], schema=COEFFICIENT_SCHEMA)]

    def _metadata(self) -> dict[str, Any]:
        """Strata, cluster, HR with CI and p, strata and event counts, concordance, all SEs."""
        lo, hi = self.hazard_ratio_ci
        return {
            "strata": self.strata,
            "cluster": self.cluster,
            "ties": "efron",
            "cov_type": "robust_cluster" if self.cluster else "robust",
            "hazard_ratio": json_float(self.hazard_ratio),
            "hazard_ratio_ci": [json_float(lo), json_float(hi)],
            "p_value": json_float(self.p_value),
            "n_strata": self.n_strata,
            "n_strata_dropped": self.n_strata_dropped,
            "n_events": self.n_events,
            "concordance": json_float(self.concordance),
            "std_err": json_floats(self.std_err),
            "std_err_naive": json_floats(self.naive_std_err),
            "std_err_cluster_strata": json_floats(safe_sqrt(np.diag(self.cov_strata_))),
            "std_err_two_way": json_floats(safe_sqrt(np.diag(self.cov_two_way_))),
        }


def _drop_uninformative_strata(
    rows: pl.DataFrame, event: str, treatment: str, strata: str
) -> tuple[pl.DataFrame, int, list[str]]:
    """Rows of the strata kept, number of strata dropped, warnings with counts.

    Kept: strata with treatment variation and >= 1 event. The others add nothing to
    the partial likelihood of the treatment (statsmodels' conditional models drop them
    the same way); with covariates they could inform the covariate terms, which are
    then estimated from the informative matched sets only.
    """
    per = rows.group_by(strata).agg(
        pl.len().alias("rows"),
        pl.col(treatment).cast(pl.Float64).mean().alias("share"),
        pl.col(event).cast(pl.Int64).sum().alias("events"),
    )
    constant = pl.col("share").is_in([0.0, 1.0])
    no_events = ~constant & (pl.col("events") == 0)
    counts = per.select(
        constant.sum().alias("constant"),
        pl.col("rows").filter(constant).sum().alias("constant_rows"),
        (pl.col("share") == 1.0).sum().alias("all_1"),
        (pl.col("share") == 0.0).sum().alias("all_0"),
        no_events.sum().alias("no_events"),
        pl.col("rows").filter(no_events).sum().alias("no_events_rows"),
    ).row(0, named=True)
    total = per.height
    notes = []
    if counts["constant"]:
        notes.append(
            f"{counts['constant']} of {total} strata ({counts['constant_rows']} rows) dropped: "
            f"treatment {treatment!r} constant within the stratum ({counts['all_1']} all 1, "
            f"{counts['all_0']} all 0)"
        )
    if counts["no_events"]:
        notes.append(
            f"{counts['no_events']} of {total} strata ({counts['no_events_rows']} rows) "
            "dropped: no events"
        )
    kept = per.filter(~constant & ~no_events).select(strata)
    return rows.join(kept, on=strata, how="semi"), counts["constant"] + counts["no_events"], notes


def _monotone_direction(
    rows: pl.DataFrame, duration: str, event: str, treatment: str, strata: str
) -> str | None:
    """Direction in which the treatment log-HR runs off to infinity, or None.

    "highest" ("lowest") when every event has the largest (smallest) treatment value of
    its risk set. Then the partial likelihood increases without bound in the treatment coefficient
    (whatever the covariates do): the Cox analogue of separation. Newton-Raphson stops
    somewhere along the ridge and the sandwich SE there is spuriously small.
    """
    x = pl.col(treatment).cast(pl.Float64)
    at_risk = [duration, strata]  # risk set = same stratum, duration >= t (ties included)
    flags = (
        rows.sort(strata, duration)
        .with_columns(
            x.cum_max(reverse=True).over(strata).alias("hi"),
            x.cum_min(reverse=True).over(strata).alias("lo"),
        )
        .with_columns(pl.col("hi", "lo").first().over(at_risk))  # first row of tied times
        .filter(pl.col(event).cast(pl.Boolean))
        .select(
            (x == pl.col("hi")).all().alias("highest"), (x == pl.col("lo")).all().alias("lowest")
        )
        .row(0, named=True)
    )
    return next((k for k, v in flags.items() if v), None)


def _concordance(
    stratum: np.ndarray, time: np.ndarray, event: np.ndarray, lp: np.ndarray
) -> tuple[float, list[str]]:
    """Harrell's C over pairs within strata (R `concordance(coxph)`), and warnings.

    A pair (i, j) is comparable when i has an event and t_i < t_j, or t_i = t_j with j
    censored; concordant when lp_i > lp_j; ties in lp count 1/2; tied event times are
    not comparable. NaN when no pair is comparable or there are too many pairs.
    """
    sizes = np.bincount(stratum)
    if int((sizes.astype(np.int64) ** 2).sum()) > MAX_CONCORDANCE_PAIRS:
        return math.nan, [f"concordance not computed: over {MAX_CONCORDANCE_PAIRS} pairs"]
    rows = pl.DataFrame({"s": stratum, "t": time, "e": event.astype(bool), "lp": lp})
    pairs = (
        rows.filter("e")
        .join(rows, on="s", suffix="_j")
        .filter((pl.col("t") < pl.col("t_j")) | ((pl.col("t") == pl.col("t_j")) & ~pl.col("e_j")))
        .select(
            (pl.col("lp") > pl.col("lp_j")).sum().alias("concordant"),
            (pl.col("lp") == pl.col("lp_j")).sum().alias("tied"),
            pl.len().alias("pairs"),
        )
        .row(0, named=True)
    )
    if pairs["pairs"] == 0:
        return math.nan, []
    return (pairs["concordant"] + pairs["tied"] / 2) / pairs["pairs"], []


def fit_stratified_cox(
    frame: pl.DataFrame,
    duration: str = "duration_days",
    event: str = "event",
    treatment: str = "case",
    strata: str = "set_id",
    cluster: str | None = "lopnr",
    covariates: Sequence[str] = (),
    name: str | None = None,
) -> CoxResult:
    """Cox model of time to the end of the spell stratified by matched set; log-HR per term.

    Args:
        frame: one row per matched-set member.
        duration: time from the index day to the end of the spell (days, >= 0).
        event: bool or 0/1; false = censored at the data end.
        treatment: bool or 0/1 (the case indicator); first term.
        strata: matched-set id; each set gets its own baseline hazard.
        cluster: person id for the robust variance (controls recur across sets);
            None = robust per row.
        covariates: numeric or bool columns (encode categories as 0/1 columns first).
        name: `model` column of `summary`; default f"cox_{treatment}".

    Returns:
        A `CoxResult`. Data problems never raise: null/NaN rows and negative durations
        are dropped, strata without treatment variation or without events are dropped,
        covariates constant within every stratum are dropped, all with warnings and
        counts; a model that cannot be fitted (no strata left, < 2 clusters, singular
        information) has NaN estimates and says why in `warnings`. A fit that did not
        converge, or whose covariate coefficient runs to infinity, keeps its estimates
        with `converged` False and a warning.

    Raises:
        ValueError: missing or repeated column, non-binary event/treatment.
        TypeError: a covariate that is not numeric/bool.
    """
    roles = [duration, event, treatment, strata, *([cluster] if cluster else [])]
    covariates = [c for c in covariates if c != treatment]
    if len(set(roles + covariates)) < len(roles) + len(covariates):
        raise ValueError(f"a column is used twice: {roles + covariates}")
    require_columns(frame, roles + covariates)
    rows, notes = drop_missing(frame, roles + covariates)
    rows, negative = drop_negative(rows, duration, f"negative {duration!r}")
    notes += negative
    for col in covariates:
        if not (rows.schema[col].is_numeric() or rows.schema[col] == pl.Boolean):
            raise TypeError(f"covariate {col!r} has unsupported dtype {rows.schema[col]}")
    as_binary(rows[event], "event")
    as_binary(rows[treatment], "treatment")
    n_strata_all = rows[strata].n_unique()
    rows, n_strata_dropped, strata_notes = _drop_uninformative_strata(
        rows, event, treatment, strata
    )
    notes += strata_notes
    varies = dict.fromkeys(covariates, False)
    if rows.height and covariates:
        varies = rows.select(
            (pl.col(c).n_unique().over(strata) > 1).any().alias(c) for c in covariates
        ).row(0, named=True)
    constant = [c for c in covariates if not varies[c]]
    if constant:
        notes.append(f"covariates dropped: constant within every stratum: {constant}")
    terms = (treatment, *(c for c in covariates if c not in constant))
    codes = rows.select(
        pl.col(strata).rank("dense").cast(pl.Int64) - 1,
        *([pl.col(cluster).rank("dense").cast(pl.Int64) - 1] if cluster else []),
    )
    n_clusters = codes[cluster].max() + 1 if cluster and rows.height else rows.height
    k = len(terms)
    base: dict[str, Any] = {
        "name": name or f"cox_{treatment}",
        "treatment": treatment,
        "strata": strata,
        "cluster": cluster,
        "terms": terms,
        "n": rows.height,
        "n_dropped": frame.height - rows.height,
        "n_strata": n_strata_all - n_strata_dropped,
        "n_strata_dropped": n_strata_dropped,
        "n_events": int(rows[event].cast(pl.Int64).sum()),
        "n_clusters": int(n_clusters),
    }

    def unfitted(why: str, extra: Sequence[str] = ()) -> CoxResult:
        nan = np.full((k, k), np.nan)
        return CoxResult(
            **base,
            params_=np.full(k, np.nan),
            cov_=nan,
            naive_cov_=nan,
            cov_strata_=nan,
            cov_two_way_=nan,
            concordance=math.nan,
            converged=False,
            warnings_=(*notes, *extra, f"not fitted: {why}"),
        )

    if rows.height == 0:
        return unfitted("no strata left")
    if n_clusters < 2:
        return unfitted("fewer than 2 clusters")
    direction = _monotone_direction(rows, duration, event, treatment, strata)
    if direction:
        return unfitted(
            f"treatment effect not identified: every event has the {direction} {treatment!r} "
            "in its risk set (monotone partial likelihood, |log-HR| -> infinity)"
        )
    data = rows.select(
        pl.col(duration).cast(pl.Float64),
        pl.col(event).cast(pl.Int8),
        *(pl.col(c).cast(pl.Float64) for c in terms),
        codes[strata].alias(strata),
        *([codes[cluster].alias(cluster)] if cluster else []),
    )
    x = data.select(terms).to_numpy()
    sets = risk_sets(data[strata].to_numpy(), data[duration].to_numpy(), data[event].to_numpy())
    x_sorted = x[sets.order]
    centered = center_by_stratum(x_sorted, sets)
    try:
        params, information, fit_notes = newton_raphson(sets, centered, terms)
        naive_cov = solve_information(information, np.eye(k))
    except np.linalg.LinAlgError as err:
        return unfitted(f"Newton-Raphson failed: {err}")
    resid = sorted_score_residuals(sets, centered, params)  # all in sorted row order now
    s_code = data[strata].to_numpy()[sets.order]
    person = data[cluster].to_numpy()[sets.order] if cluster else None
    cov = robust_cov(resid, naive_cov, person)
    cov_strata = robust_cov(resid, naive_cov, s_code)
    cov_two_way = cov_strata + cov - robust_cov(resid, naive_cov, None)
    time = data[duration].to_numpy()[sets.order]
    concordance, c_notes = _concordance(s_code, time, sets.dead, x_sorted @ params)
    return CoxResult(
        **base,
        params_=params,
        cov_=cov,
        naive_cov_=naive_cov,
        cov_strata_=cov_strata,
        cov_two_way_=cov_two_way,
        concordance=concordance,
        converged=not fit_notes,
        warnings_=(*notes, *fit_notes, *c_notes),
    )
