"""Time to the end of the sick-leave spell after the index day (analysis-spec.md §11 item 5).

Input: one row per member of a risk-set-sampled matched set (`set_id`; one case, a
spell that got GC001 on the index day, and up to k controls on sick leave that day),
with the person `lopnr` (controls recur across sets), `case`, `duration_days` (index
day to the end of the spell, >= 0) and `event` (the spell ended before the data end;
false = censored at the data end).

- `kaplan_meier` / `median_table`: lifelines `KaplanMeierFitter` per group (cases vs
  controls); pointwise CIs are log-log ("exponential Greenwood") = R `survfit(...,
  conf.type = "log-log")`. R's default `conf.type = "log"` gives other bounds. Rows are
  treated as independent (a control recurring in several sets counts each time), so
  the bands are somewhat narrow; the Cox model below accounts for that.
- `fit_stratified_cox`: Cox model stratified by `set_id`, Efron ties (R `coxph`'s default
  too), fitted by Newton-Raphson on the stratified partial likelihood, vectorised over
  strata (`_newton_raphson`; ~1.5 s for 70 000 sets of 6). lifelines'
  `CoxPHFitter(strata=...)`, used before, loops over strata in Python (10-30 ms each,
  more the more strata: over an hour for those sets); the tests check the fit against
  it and R.

Variance conventions (reconciled with R survival::coxph in `tests/test_survival.py`):

- naive: the inverse information at the Efron MLE = R `fit$naive.var`.
- robust (the reported `std_err`): the Lin-Wei (1989) sandwich V = D'D, D = per-cluster
  sums of the dfbeta residuals U I^-1 (U = score residuals), without a small-sample
  factor (no G/(G-1)) = R `coxph(Surv(t, e) ~ case + strata(set_id), cluster = lopnr)`
  `fit$var`. lifelines computes the same sandwich, but its score residuals ignore tied
  times (its docstring says so): with day-resolution durations its robust SEs are off
  by a fraction of a per cent. We therefore compute the score residuals ourselves with
  the Efron weighting R uses (`_efron_score_residuals`), vectorised over all strata;
  without ties they equal lifelines' exactly.
- CIs and p-values: Wald with normal quantiles on the robust SE (R `summary(fit)`).

Caveat (tests/reference_r/survival/robust_se_mc.R): with matched sets of 2-5 rows the
per-person sandwich above, in R as here, was 19-27 % below the Monte Carlo SD of the
log-HR, even with independent persons: each set's baseline hazard is a nuisance
parameter estimated from a handful of rows (compare heteroskedasticity-robust SEs with
many small fixed effects, Stock & Watson 2008). Clustering by matched set
(`CoxResult.cov_strata`) or two-way by set and person (`cov_two_way`, Cameron, Gelbach
& Miller 2011: V_set + V_person - V_row) came within 2-7 %. Both are in `metadata()`;
which one §11 reports is the analysis owners' decision.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from lifelines import KaplanMeierFitter
from matplotlib.figure import Figure
from scipy import stats

from pipeline.core.io import atomic_path
from pipeline.stats.regression import SUMMARY_COLUMNS, coefficient_table

log = logging.getLogger(__name__)

LEVEL = 0.95
# Newton-Raphson on the Efron partial likelihood (_newton_raphson). It stops after the step
# whose Newton decrement g' I^-1 g was below DECREMENT_TOL: beta was then within ~1e-8 SE of
# the MLE, and that last full Newton step leaves it at float noise; R's coxph (eps = 1e-10
# on the relative change in log-likelihood) agrees to ~1e-11 (tests/test_survival.py).
MAX_NEWTON_STEPS = 50  # as fit.R's coxph.control(iter.max = 50); 5-10 are typical
MAX_HALVINGS = 40  # step-halvings of one Newton step before giving up
DECREMENT_TOL = 1e-16
LOGLIK_RTOL = 1e-12  # a step may lower the log-likelihood by this (relative): float noise
# A last step larger than this (times max(1, |b|)) after the log-likelihood converged: the
# coefficient runs to infinity (as R coxph's check, default toler.inf = sqrt(eps = 1e-9)).
INFINITE_STEP_TOL = math.sqrt(1e-9)
MAX_CONDITION = 1e12  # of the information at unit diagonal; above it the terms are collinear
KM_COLUMNS = ("group", "time", "at_risk", "events", "censored", "survival", "ci_low", "ci_high")
MEDIAN_TOL = 1e-9  # survival this close above 0.5 counts as 0.5 (see median_table)
MAX_CONCORDANCE_PAIRS = 50_000_000  # within-stratum pairs; matched sets of <= 5 give <= 25 each
GROUP_LABELS: Mapping[Any, str] = {True: "Fall (GC001)", False: "Kontroller"}  # 1/0 match too
X_LABEL = "Dagar från index"
Y_LABEL = "Andel fortfarande sjukskrivna"


def _missing(frame: pl.DataFrame, columns: Sequence[str]) -> dict[str, pl.Expr]:
    """Per column, an expression that is true where the value is null (or NaN for floats)."""
    return {
        c: pl.col(c).is_null() | pl.col(c).is_nan()
        if frame.schema[c].is_float()
        else pl.col(c).is_null()
        for c in columns
    }


def _usable_rows(
    frame: pl.DataFrame, columns: Sequence[str], duration: str
) -> tuple[pl.DataFrame, list[str]]:
    """Rows without nulls/NaN in `columns` and with `duration` >= 0, and warnings with counts."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in frame: {missing}")
    is_missing = _missing(frame, columns)
    rows = frame.filter(~pl.any_horizontal(is_missing.values()))
    notes = []
    if rows.height < frame.height:
        per_col = frame.select(e.sum().alias(c) for c, e in is_missing.items()).row(0, named=True)
        detail = ", ".join(f"{c}: {k}" for c, k in per_col.items() if k)
        notes.append(
            f"{frame.height - rows.height} of {frame.height} rows dropped for nulls/NaN ({detail})"
        )
    negative = int((rows[duration] < 0).sum())
    if negative:
        notes.append(f"{negative} rows dropped: negative {duration!r}")
        rows = rows.filter(pl.col(duration) >= 0)
    return rows, notes


def _as_binary(values: pl.Series, role: str) -> np.ndarray:
    """`values` (bool or 0/1 numeric, no nulls) as a float 0/1 array; ValueError otherwise."""
    arr = values.cast(pl.Float64).to_numpy()
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{role} {values.name!r} must be bool or 0/1, got other values")
    return arr


# --- Kaplan-Meier ------------------------------------------------------------------


def kaplan_meier(
    frame: pl.DataFrame,
    duration: str = "duration_days",
    event: str = "event",
    group: str = "case",
    level: float = LEVEL,
) -> pl.DataFrame:
    """One row per group x distinct time (0 and every event/censoring time); survival 0-1.

    `time` is in the unit of `duration` (days); `at_risk` = rows with duration >= time,
    `events`/`censored` = rows ending/censored at time; `survival` is the Kaplan-Meier
    estimate just after time, `ci_low`/`ci_high` its pointwise log-log CI (module
    docstring). `group` holds the values of the `group` column. Rows with a null or
    negative duration/event/group are dropped with a logged warning.

    >>> km = kaplan_meier(pl.DataFrame({"duration_days": [2, 2, 3, 5, 5, 8],
    ...     "event": [True, False, True, True, True, False], "case": [True] * 6}))
    >>> km.select("time", "at_risk", "events", pl.col("survival").round(4)).rows()[1:4]
    [(2.0, 6, 1, 0.8333), (3.0, 4, 1, 0.625), (5.0, 3, 2, 0.2083)]
    """
    rows, notes = _usable_rows(frame, [duration, event, group], duration)
    for note in notes:
        log.warning("kaplan_meier: %s", note)
    _as_binary(rows[event], "event")
    parts = []
    for value in rows[group].unique().sort().to_list():  # a handful of groups
        sub = rows.filter(pl.col(group) == value)
        kmf = KaplanMeierFitter(alpha=1 - level).fit(
            sub[duration].cast(pl.Float64).to_numpy(),
            sub[event].cast(pl.Int8).to_numpy(),
        )
        table = kmf.event_table
        ci = kmf.confidence_interval_survival_function_.to_numpy()
        parts.append(
            pl.DataFrame(
                {
                    "time": table.index.to_numpy(dtype=float),
                    "at_risk": table["at_risk"].to_numpy(),
                    "events": table["observed"].to_numpy(),
                    "censored": table["censored"].to_numpy(),
                    "survival": kmf.survival_function_.iloc[:, 0].to_numpy(),
                    "ci_low": ci[:, 0],
                    "ci_high": ci[:, 1],
                },
                schema={"time": pl.Float64, **dict.fromkeys(KM_COLUMNS[2:5], pl.Int64)}
                | dict.fromkeys(KM_COLUMNS[5:], pl.Float64),
            ).select(pl.lit(value, rows.schema[group]).alias("group"), pl.all())
        )
    if not parts:
        return pl.DataFrame(
            schema={"group": rows.schema[group], "time": pl.Float64}
            | dict.fromkeys(KM_COLUMNS[2:5], pl.Int64)
            | dict.fromkeys(KM_COLUMNS[5:], pl.Float64)
        )
    return pl.concat(parts)


def median_table(km_table: pl.DataFrame) -> pl.DataFrame:
    """One row per group: rows `n`, `n_events`, median time and its CI (unit of `time`, days).

    The median is the first time with survival <= 0.5; the CI bounds are the first
    times the lower/upper pointwise bands reach 0.5 (lifelines `median_survival_time_`
    and `median_survival_times(confidence_interval_)`; R `survfit` agrees except when
    a curve sits exactly at 0.5, where R takes the midpoint to the next event time).
    Values within `MEDIAN_TOL` of 0.5 count as 0.5, so floating-point noise in the
    product-limit (0.49999999999999994 vs 0.5000000000000001) cannot move the median.
    Null when the curve never gets that low.
    """

    def first_time(col: str) -> pl.Expr:
        return pl.col("time").filter(pl.col(col) <= 0.5 + MEDIAN_TOL).min()

    return (
        km_table.group_by("group", maintain_order=True)
        .agg(
            pl.col("at_risk").first().alias("n"),
            pl.col("events").sum().alias("n_events"),
            first_time("survival").alias("median"),
            first_time("ci_low").alias("ci_low"),
            first_time("ci_high").alias("ci_high"),
        )
        .sort("group")
    )


def km_figure(
    km_table: pl.DataFrame, title: str, labels: Mapping[Any, str] | None = None
) -> Figure:
    """A matplotlib Figure of Kaplan-Meier step curves with CI bands, one per group.

    Swedish axis labels (`X_LABEL`, `Y_LABEL`); `labels` maps group values to legend
    text, default `GROUP_LABELS` (cases / controls), else the value as text.
    """
    labels = GROUP_LABELS if labels is None else labels
    fig = Figure(figsize=(7, 4.5), dpi=150)
    ax = fig.subplots()
    for i, value in enumerate(km_table["group"].unique().sort().to_list()):
        sub = km_table.filter(pl.col("group") == value)
        color = f"C{i}"
        time = sub["time"].to_numpy()
        label = labels.get(value, str(value))
        ax.step(time, sub["survival"].to_numpy(), where="post", color=color, label=label)
        ax.fill_between(
            time,
            sub["ci_low"].to_numpy(),
            sub["ci_high"].to_numpy(),
            step="post",
            color=color,
            alpha=0.2,
            linewidth=0,
        )
    ax.set(xlabel=X_LABEL, ylabel=Y_LABEL, title=title, ylim=(0, 1.02))
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def plot_km(
    km_table: pl.DataFrame,
    path: str | Path,
    title: str,
    labels: Mapping[Any, str] | None = None,
) -> Path:
    """Write `km_figure(km_table, title, labels)` to `path` as a byte-stable PNG; returns path.

    Written atomically (`pipeline.io.atomic_path`); the PNG carries no "Software"
    (matplotlib version) chunk, so reruns give identical bytes.
    """
    fig = km_figure(km_table, title, labels)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return Path(path)


# --- stratified Cox ----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CoxResult:
    """A fitted stratified Cox model; estimates on the log-hazard-ratio scale.

    Attributes:
        name: model name written to the `model` column of `summary`.
        treatment, strata, cluster: the column names used (`cluster` None = per row).
        terms: the treatment, then the covariates kept.
        params: log hazard ratios; NaN when the model was not fitted.
        cov: robust (Lin-Wei, per-cluster) covariance, module-docstring convention.
        naive_cov: inverse information (model-based) covariance.
        cov_strata: the same sandwich with the matched sets as clusters.
        cov_two_way: cov_strata + cov - (sandwich per row): clustered by set and person.
        n: rows fitted; n_dropped: rows of the input not fitted (nulls/NaN, negative
            durations, dropped strata), with reasons and counts in `warnings`.
        n_strata, n_strata_dropped: strata fitted / dropped as uninformative.
        n_events: events in the rows fitted; n_clusters: distinct clusters fitted.
        concordance: Harrell's C over pairs within strata (= R `concordance(fit)`).
        converged: False when Newton-Raphson did not converge, a coefficient looks
            infinite (both with a warning) or nothing was fitted.
        warnings: pre-fit and fit warnings with counts; write them to the model JSON.
    """

    name: str
    treatment: str
    strata: str
    cluster: str | None
    terms: tuple[str, ...]
    params: np.ndarray
    cov: np.ndarray = field(repr=False)
    naive_cov: np.ndarray = field(repr=False)
    cov_strata: np.ndarray = field(repr=False)
    cov_two_way: np.ndarray = field(repr=False)
    n: int
    n_dropped: int
    n_strata: int
    n_strata_dropped: int
    n_events: int
    n_clusters: int
    concordance: float
    converged: bool
    warnings: tuple[str, ...]

    @property
    def std_err(self) -> np.ndarray:
        """Robust standard errors of `params`, log-HR scale."""
        return _sqrt(np.diag(self.cov))

    @property
    def naive_std_err(self) -> np.ndarray:
        """Model-based standard errors of `params`, log-HR scale."""
        return _sqrt(np.diag(self.naive_cov))

    @property
    def p_value(self) -> float:
        """Two-sided robust Wald p-value of the treatment term."""
        return float(_wald(self.params[0], self.std_err[0])[2])

    @property
    def hazard_ratio(self) -> float:
        """Treatment hazard ratio exp(b), unitless (> 1: spells of cases end sooner)."""
        return math.exp(self.params[0])

    @property
    def hazard_ratio_ci(self) -> tuple[float, float]:
        """95 % CI of the hazard ratio: exp of the robust Wald CI of the log-HR."""
        lo, hi, _ = _wald(self.params[0], self.std_err[0])
        return (math.exp(lo), math.exp(hi))

    @property
    def coefficients(self) -> pl.DataFrame:
        """One row per term: log-HR estimate, robust std_err, 95 % CI, p_value."""
        return coefficient_table(self.terms, self.params, self.std_err)

    @property
    def summary(self) -> pl.DataFrame:
        """Tidy frame `model, term, estimate, std_err, ci_low, ci_high, p_value, n`.

        The log-HR terms, then `HR(<treatment>)`: exp(b), delta-method SE HR * se(b),
        CI = exp of the log-scale CI, p of the treatment term.
        """
        rows = self.coefficients
        lo, hi = self.hazard_ratio_ci
        hr = pl.DataFrame(
            {
                "term": [f"HR({self.treatment})"],
                "estimate": [self.hazard_ratio],
                "std_err": [self.hazard_ratio * self.std_err[0]],
                "ci_low": [lo],
                "ci_high": [hi],
                "p_value": [self.p_value],
            },
            schema=rows.schema,
        )
        return pl.concat([rows, hr]).select(
            pl.lit(self.name, pl.String).alias("model"),
            *SUMMARY_COLUMNS[1:7],
            pl.lit(self.n, pl.Int64).alias("n"),
        )

    def metadata(self) -> dict[str, Any]:
        """JSON-ready fit facts: counts, strata, clusters, HR, convergence, warnings."""
        lo, hi = self.hazard_ratio_ci
        return {
            "model": self.name,
            "treatment": self.treatment,
            "strata": self.strata,
            "cluster": self.cluster,
            "ties": "efron",
            "cov_type": "robust_cluster" if self.cluster else "robust",
            "hazard_ratio": _finite(self.hazard_ratio),
            "hazard_ratio_ci": [_finite(lo), _finite(hi)],
            "p_value": _finite(self.p_value),
            "n": self.n,
            "n_dropped": self.n_dropped,
            "n_strata": self.n_strata,
            "n_strata_dropped": self.n_strata_dropped,
            "n_events": self.n_events,
            "n_clusters": self.n_clusters,
            "concordance": _finite(self.concordance),
            "std_err": _finite_list(self.std_err),
            "std_err_naive": _finite_list(self.naive_std_err),
            "std_err_cluster_strata": _finite_list(_sqrt(np.diag(self.cov_strata))),
            "std_err_two_way": _finite_list(_sqrt(np.diag(self.cov_two_way))),
            "converged": self.converged,
            "warnings": list(self.warnings),
        }


def _finite(value: float) -> float | None:
    """`value`, or None when NaN/inf (JSON has no NaN)."""
    return value if math.isfinite(value) else None


def _finite_list(values: np.ndarray) -> list[float | None]:
    """`values` as a list with None for NaN/inf (JSON has no NaN)."""
    return [_finite(float(v)) for v in values]


def _wald(est: Any, se: Any, level: float = LEVEL) -> tuple[Any, Any, Any]:
    """Wald CI bounds and two-sided normal p-value for `est` with standard error `se`."""
    z = stats.norm.ppf(0.5 + level / 2)
    est, se = np.asarray(est, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.norm.sf(np.abs(est / se))
    return est - z * se, est + z * se, p


def _sqrt(values: Any) -> Any:
    """Square root with NaN for negative variances, no warning."""
    values = np.asarray(values, dtype=float)
    return np.sqrt(np.where(values >= 0, values, np.nan))


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


@dataclass(frozen=True)
class _RiskSets:
    """Rows sorted by (stratum, time) and the index arrays of the Efron sums (no values).

    `order` sorts the input rows; every other row array is in that order. A group is a
    distinct (stratum, time); `group_position` counts the groups of a stratum from its
    earliest time, `group_position_back` from its latest. Deaths are the rows with an
    event, in row order; the deaths of one group form an event group of `n_tied` tied
    deaths, and the k-th of them (0-based) has `frac` k / n_tied (Efron's weights).
    """

    order: np.ndarray
    stratum_start: np.ndarray  # first row of each stratum
    stratum_rows: np.ndarray  # rows per stratum
    group: np.ndarray  # group of each row
    group_start: np.ndarray  # first row of each group
    group_position: np.ndarray
    group_position_back: np.ndarray
    dead: np.ndarray  # bool per row
    death_group: np.ndarray  # group of each death
    death_event: np.ndarray  # event group of each death
    event_start: np.ndarray  # first death of each event group
    n_tied: np.ndarray  # deaths per event group
    frac: np.ndarray  # k / n_tied per death


def _risk_sets(stratum: np.ndarray, time: np.ndarray, event: np.ndarray) -> _RiskSets:
    """The sort order and index arrays of a stratified Cox model with Efron ties."""
    order = np.lexsort((time, stratum))
    s, t, dead = stratum[order], time[order], event[order].astype(bool)
    new_stratum = np.r_[True, s[1:] != s[:-1]]
    new_group = new_stratum | np.r_[True, t[1:] != t[:-1]]
    group = np.cumsum(new_group) - 1
    stratum_start = np.flatnonzero(new_stratum)
    group_start = np.flatnonzero(new_group)
    stratum_of_group = np.cumsum(new_stratum)[group_start] - 1
    first_group = group[stratum_start]
    groups_per_stratum = np.diff(np.r_[first_group, group_start.size])
    group_position = np.arange(group_start.size) - first_group[stratum_of_group]
    death_group = group[dead]
    new_event = np.r_[True, death_group[1:] != death_group[:-1]]
    event_start = np.flatnonzero(new_event)
    death_event = np.cumsum(new_event) - 1
    n_tied = np.diff(np.r_[event_start, death_group.size])
    return _RiskSets(
        order=order,
        stratum_start=stratum_start,
        stratum_rows=np.diff(np.r_[stratum_start, s.size]),
        group=group,
        group_start=group_start,
        group_position=group_position,
        group_position_back=groups_per_stratum[stratum_of_group] - 1 - group_position,
        dead=dead,
        death_group=death_group,
        death_event=death_event,
        event_start=event_start,
        n_tied=n_tied,
        frac=(np.arange(death_group.size) - event_start[death_event]) / n_tied[death_event],
    )


def _segment_scan(
    values: np.ndarray,
    position: np.ndarray,
    combine: np.ufunc = np.add,
    scale: np.ndarray | None = None,
) -> np.ndarray:
    """Running `combine` (sum or maximum) down the rows of `values` (m x q) within runs.

    `position` is each row's index in its run. With `scale` (m, non-decreasing within a
    run), row i of `values` and of the result is in units of exp(scale[i]): a term from
    row j < i is multiplied by exp(scale[j] - scale[i]) <= 1, so sums of exp() of a wide
    range cannot overflow. A log-step (Hillis-Steele) scan: ceil(log2(longest run))
    vectorised passes. Each result adds only values of its own run, unlike a global
    cumsum minus the run's offset, which loses the digits of all earlier runs.
    """
    out = np.array(values.T, order="C")  # q x m: long inner loops
    shift = 1
    while shift <= position.max(initial=0):
        earlier = out[:, :-shift]
        if scale is not None:
            earlier = earlier * np.exp(np.minimum(scale[:-shift] - scale[shift:], 0.0))
        later = out[:, shift:]
        out[:, shift:] = np.where(position[shift:] >= shift, combine(later, earlier), later)
        shift *= 2
    return out.T


def _center_by_stratum(x: np.ndarray, sets: _RiskSets) -> np.ndarray:
    """`x` (sorted rows x p) minus its stratum means: the model is unchanged, rounding smaller."""
    means = np.add.reduceat(x, sets.stratum_start) / sets.stratum_rows[:, None]
    return x - np.repeat(means, sets.stratum_rows, axis=0)


def _efron_deaths(
    sets: _RiskSets, x: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row lp - top and risk exp(lp - top); per death Efron's S0_k and xbar_k; top.

    `x` is in sorted row order. `top` (per group) is the largest linear predictor lp in
    the group's risk set (its stratum, times >= its own); risk-set sums S are in units of
    exp(top), so no exp() overflows or loses the risk set's largest terms on the way to
    an infinite coefficient. The k-th of d tied deaths has the sums S - k/d E (E = sums
    over the tied deaths): S0_k and xbar_k = S1_k / S0_k.
    """
    lp = x @ beta
    back = sets.group_position_back[::-1]
    top = _segment_scan(np.maximum.reduceat(lp, sets.group_start)[::-1, None], back, np.maximum)
    top = top[::-1, 0]
    eta = lp - top[sets.group]
    risk = np.exp(eta)
    weighted = np.column_stack([risk, risk[:, None] * x])
    in_group = np.add.reduceat(weighted, sets.group_start)[::-1]
    at_risk = _segment_scan(in_group, back, scale=top[::-1])[::-1]  # times >= t
    tied = np.add.reduceat(weighted[sets.dead], sets.event_start)
    sums = at_risk[sets.death_group] - sets.frac[:, None] * tied[sets.death_event]
    return eta, risk, sums[:, 0], sums[:, 1:] / sums[:, :1], top


def _sum_over_past_deaths(sets: _RiskSets, values: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Per row (n x q): the sum of `values` (deaths x q) over the deaths of its risk sets.

    Row i is at risk at the deaths of its stratum at times <= t_i; it counts fully,
    except at its own death time, where the k-th of d tied deaths counts 1 - k/d.
    A death's values and row i's sum are in units of exp(-top) of their groups.
    """
    full = np.zeros((sets.group_start.size, values.shape[1]))
    tied = np.zeros_like(full)
    where = sets.death_group[sets.event_start]
    full[where] = np.add.reduceat(values, sets.event_start)
    tied[where] = np.add.reduceat((1 - sets.frac)[:, None] * values, sets.event_start)
    past = _segment_scan(full, sets.group_position, scale=-top)[sets.group]
    return past - sets.dead[:, None] * (full - tied)[sets.group]


def _efron_log_likelihood(
    sets: _RiskSets, x: np.ndarray, beta: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Efron log partial likelihood, its gradient (p) and information (p x p).

    ll = sum over deaths of (lp - log S0_k); gradient = sum of (x - xbar_k); information =
    sum over deaths of (S2_k / S0_k - xbar_k xbar_k'), with sum S2_k / S0_k = X' diag(r A) X,
    A = `_sum_over_past_deaths` of 1 / S0_k: no per-row outer products.
    """
    eta, risk, s0, xbar, top = _efron_deaths(sets, x, beta)
    hazard = _sum_over_past_deaths(sets, 1 / s0[:, None], top)[:, 0]
    return (
        float(eta[sets.dead].sum() - np.log(s0).sum()),
        x[sets.dead].sum(axis=0) - xbar.sum(axis=0),
        (x * (risk * hazard)[:, None]).T @ x - xbar.T @ xbar,
    )


def _solve_information(information: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """I^-1 rhs (rhs p x q); LinAlgError when I is not finite and well-conditioned.

    Solved at unit diagonal, so covariates in large units (kronor) do not look singular.
    """
    diag = np.diag(information)
    if not (np.isfinite(information).all() and np.isfinite(rhs).all()):
        raise np.linalg.LinAlgError("non-finite log-likelihood derivatives")
    if not (diag > 0).all():
        raise np.linalg.LinAlgError("a term has no information (no variation in risk sets)")
    scale = np.sqrt(diag)
    unit = information / np.outer(scale, scale)
    if np.linalg.cond(unit) > MAX_CONDITION:
        raise np.linalg.LinAlgError("singular information matrix (collinear terms?)")
    return np.linalg.solve(unit, rhs / scale[:, None]) / scale[:, None]


def _newton_raphson(
    sets: _RiskSets, x: np.ndarray, terms: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Efron MLE of the log-HRs (p), the information there, and convergence warnings.

    Newton-Raphson from 0. A step is halved while it lowers the log-likelihood by more
    than float noise or leads where the derivatives are not finite (a huge step can
    overflow x b). Stops after the step whose Newton decrement g' I^-1 g was below
    `DECREMENT_TOL`. One loop, over the steps; each step is vectorised over strata.

    Raises:
        numpy.linalg.LinAlgError: singular information at a step, or no ascent.
    """
    beta = np.zeros(x.shape[1])
    with np.errstate(all="ignore"):  # x b overflowing on a huge step: see _acceptable
        loglik, gradient, information = _efron_log_likelihood(sets, x, beta)
        for _ in range(MAX_NEWTON_STEPS):
            step = _solve_information(information, gradient[:, None])[:, 0]
            decrement = float(gradient @ step)
            for _ in range(MAX_HALVINGS):
                trial = _efron_log_likelihood(sets, x, beta + step)
                if _acceptable(trial, loglik):
                    break
                step = step / 2
            else:
                raise np.linalg.LinAlgError("step-halving found no increase in log-likelihood")
            beta = beta + step
            loglik, gradient, information = trial
            if decrement < DECREMENT_TOL:
                break
        else:
            note = f"Newton-Raphson did not converge in {MAX_NEWTON_STEPS} steps"
            return beta, information, [note]
    infinite = np.abs(step) > INFINITE_STEP_TOL * np.maximum(1.0, np.abs(beta))
    names = [t for t, inf in zip(terms, infinite, strict=True) if inf]
    notes = [
        f"log-likelihood converged before {names}: coefficient may be infinite "
        "(monotone likelihood, separation)"
    ]
    return beta, information, notes if names else []


def _acceptable(trial: tuple[float, np.ndarray, np.ndarray], loglik: float) -> bool:
    """True when `trial` (ll, gradient, information) is finite and ll not below `loglik`."""
    value, gradient, information = trial
    finite = np.isfinite(gradient).all() and np.isfinite(information).all()
    return bool(finite and value >= loglik - LOGLIK_RTOL * abs(loglik))  # False for NaN


def _group_sums(values: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """Sums of the rows of `values` (m x p) by `index` (m, values in 0..size-1): size x p."""
    out = np.zeros((size, values.shape[1]))
    np.add.at(out, index, values)
    return out


def _sorted_score_residuals(sets: _RiskSets, x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Efron score residuals (sorted rows x p) of `_efron_score_residuals`."""
    _, risk, s0, xbar, top = _efron_deaths(sets, x, beta)
    hazard = 1 / s0
    past = _sum_over_past_deaths(sets, np.column_stack([hazard, xbar * hazard[:, None]]), top)
    resid = -risk[:, None] * (x * past[:, :1] - past[:, 1:])
    mean_xbar = np.add.reduceat(xbar, sets.event_start) / sets.n_tied[:, None]
    resid[sets.dead] += x[sets.dead] - mean_xbar[sets.death_event]
    return resid


def _efron_score_residuals(
    stratum: np.ndarray, time: np.ndarray, event: np.ndarray, x: np.ndarray, beta: np.ndarray
) -> np.ndarray:
    """Score residuals (n x p) of a stratified Cox model with Efron ties (R `type = "score"`).

    With d deaths at a time, the k-th (k = 0..d-1) of d "sub-deaths" has risk-set sums
    S0 - k/d E0 and S1 - k/d E1 (E = sums over the tied deaths), hazard increment
    1 / (S0 - k/d E0) and mean xbar_k. Row i (risk score r_i) gets
    delta_i (x_i - mean_k xbar_k) - r_i sum_{t_j <= t_i} sum_k w_ijk (x_i - xbar_jk) dH_jk,
    w = 1 - k/d for the deaths tied at t_j, else 1. Vectorised over all strata.
    """
    sets = _risk_sets(stratum, time, event)
    out = np.empty(x.shape)
    out[sets.order] = _sorted_score_residuals(sets, x[sets.order], beta)
    return out


def _robust_cov(resid: np.ndarray, naive_cov: np.ndarray, cluster: np.ndarray | None) -> np.ndarray:
    """Lin-Wei sandwich D'D, D = dfbeta residuals summed per cluster; no small-sample factor."""
    dfbeta = resid @ naive_cov
    if cluster is not None:
        dfbeta = _group_sums(dfbeta, cluster, int(cluster.max()) + 1)
    return dfbeta.T @ dfbeta


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
    rows, notes = _usable_rows(frame, roles + covariates, duration)
    for col in covariates:
        if not (rows.schema[col].is_numeric() or rows.schema[col] == pl.Boolean):
            raise TypeError(f"covariate {col!r} has unsupported dtype {rows.schema[col]}")
    _as_binary(rows[event], "event")
    _as_binary(rows[treatment], "treatment")
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
            params=np.full(k, np.nan),
            cov=nan,
            naive_cov=nan,
            cov_strata=nan,
            cov_two_way=nan,
            concordance=math.nan,
            converged=False,
            warnings=(*notes, *extra, f"not fitted: {why}"),
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
    sets = _risk_sets(data[strata].to_numpy(), data[duration].to_numpy(), data[event].to_numpy())
    x_sorted = x[sets.order]
    centered = _center_by_stratum(x_sorted, sets)
    try:
        params, information, fit_notes = _newton_raphson(sets, centered, terms)
        naive_cov = _solve_information(information, np.eye(k))
    except np.linalg.LinAlgError as err:
        return unfitted(f"Newton-Raphson failed: {err}")
    resid = _sorted_score_residuals(sets, centered, params)  # all in sorted row order now
    s_code = data[strata].to_numpy()[sets.order]
    person = data[cluster].to_numpy()[sets.order] if cluster else None
    cov = _robust_cov(resid, naive_cov, person)
    cov_strata = _robust_cov(resid, naive_cov, s_code)
    cov_two_way = cov_strata + cov - _robust_cov(resid, naive_cov, None)
    time = data[duration].to_numpy()[sets.order]
    concordance, c_notes = _concordance(s_code, time, sets.dead, x_sorted @ params)
    return CoxResult(
        **base,
        params=params,
        cov=cov,
        naive_cov=naive_cov,
        cov_strata=cov_strata,
        cov_two_way=cov_two_way,
        concordance=concordance,
        converged=not fit_notes,
        warnings=(*notes, *fit_notes, *c_notes),
    )
