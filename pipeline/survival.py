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
- `fit_stratified_cox`: lifelines `CoxPHFitter(strata=[set_id])`, Efron ties (R
  `coxph`'s default too), `robust=True, cluster_col=lopnr`.

Variance conventions (reconciled with R survival::coxph in `tests/test_survival.py`):

- naive: the inverse information at the Efron MLE = R `fit$naive.var`.
- robust (the reported `std_err`): the Lin-Wei (1989) sandwich V = D'D, D = per-cluster
  sums of the dfbeta residuals U I^-1 (U = score residuals), without a small-sample
  factor (no G/(G-1)) = R `coxph(Surv(t, e) ~ case + strata(set_id), cluster = lopnr)`
  `fit$var`. lifelines computes the same sandwich, but its score residuals ignore tied
  times (its docstring says so): with day-resolution durations its robust SEs are off
  by a fraction of a per cent. We therefore compute the score residuals ourselves with
  the Efron weighting R uses (`_efron_score_residuals`), vectorised over all strata;
  without ties they equal lifelines' exactly. lifelines' own value is kept in
  `CoxResult.lifelines_std_err`.
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
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.exceptions import ConvergenceError
from matplotlib.figure import Figure
from scipy import stats

from pipeline.io import atomic_path
from pipeline.regression import SUMMARY_COLUMNS

log = logging.getLogger(__name__)

LEVEL = 0.95
# lifelines' Newton defaults stop when the relative change in log-likelihood is < 1e-9
# or the Newton decrement is < 1e-7, up to ~1e-6 (relative) short of the MLE here. These
# stop on a decrement < 1e-16, one or two more steps, and match R's coxph to ~1e-11.
FIT_OPTIONS: Mapping[str, float] = {"precision": 1e-16, "r_precision": 1e-14}
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
        lifelines_std_err: lifelines' own robust SEs (tied times ignored), for reference.
        cov_strata: the same sandwich with the matched sets as clusters.
        cov_two_way: cov_strata + cov - (sandwich per row): clustered by set and person.
        n: rows fitted; n_dropped: rows of the input not fitted (nulls/NaN, negative
            durations, dropped strata), with reasons and counts in `warnings`.
        n_strata, n_strata_dropped: strata fitted / dropped as uninformative.
        n_events: events in the rows fitted; n_clusters: distinct clusters fitted.
        concordance: Harrell's C over pairs within strata (= R `concordance(fit)`).
        converged: False when lifelines did not converge or nothing was fitted.
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
    lifelines_std_err: np.ndarray = field(repr=False)
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
        se = self.std_err
        lo, hi, p = _wald(self.params, se)
        return pl.DataFrame(
            {
                "term": list(self.terms),
                "estimate": self.params,
                "std_err": se,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": p,
            },
            schema={"term": pl.String, **dict.fromkeys(SUMMARY_COLUMNS[2:7], pl.Float64)},
        )

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
    (whatever the covariates do): the Cox analogue of separation. lifelines stops
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


def _segment_cumsum(values: np.ndarray, segment: np.ndarray, reverse: bool = False) -> np.ndarray:
    """Cumulative sums of the columns of `values` (m x p) within runs of `segment` (m)."""
    cols = [f"c{j}" for j in range(values.shape[1])]
    frame = pl.DataFrame({"segment": segment, **dict(zip(cols, values.T, strict=True))})
    return frame.select(pl.col(c).cum_sum(reverse=reverse).over("segment") for c in cols).to_numpy()


def _group_sums(values: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """Sums of the rows of `values` (m x p) by `index` (m, values in 0..size-1): size x p."""
    out = np.zeros((size, values.shape[1]))
    np.add.at(out, index, values)
    return out


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
    order = np.lexsort((time, stratum))
    s, t, dead, x = stratum[order], time[order], event[order].astype(bool), x[order]
    n = len(s)
    new_stratum = np.r_[True, s[1:] != s[:-1]]
    new_group = new_stratum | np.r_[True, t[1:] != t[:-1]]
    gid = np.cumsum(new_group) - 1  # (stratum, time) group of each row
    n_groups = int(gid[-1]) + 1
    group_stratum = s[new_group]
    lp = x @ beta
    starts = np.flatnonzero(new_stratum)
    # Risk scores relative to the stratum maximum: the residuals are invariant to it.
    risk = np.exp(lp - np.repeat(np.maximum.reduceat(lp, starts), np.diff(np.r_[starts, n])))
    rx = risk[:, None] * x
    s0 = _segment_cumsum(_group_sums(risk[:, None], gid, n_groups), group_stratum, True)[:, 0]
    s1 = _segment_cumsum(_group_sums(rx, gid, n_groups), group_stratum, True)
    n_dead = np.bincount(gid, dead, minlength=n_groups)
    e0 = np.bincount(gid, dead * risk, minlength=n_groups)
    e1 = _group_sums(rx[dead], gid[dead], n_groups)
    # One entry per death: its sub-death index k within its tied group.
    gd = gid[dead]
    first = np.unique(gd, return_index=True)[1]
    k = np.arange(gd.size) - np.repeat(first, np.diff(np.r_[first, gd.size]))
    frac = k / n_dead[gd]
    d_hazard = 1.0 / (s0[gd] - frac * e0[gd])
    xbar = (s1[gd] - frac[:, None] * e1[gd]) * d_hazard[:, None]
    full_a = np.bincount(gd, d_hazard, minlength=n_groups)
    full_b = _group_sums(xbar * d_hazard[:, None], gd, n_groups)
    tied_a = np.bincount(gd, (1 - frac) * d_hazard, minlength=n_groups)
    tied_b = _group_sums(xbar * ((1 - frac) * d_hazard)[:, None], gd, n_groups)
    mean_xbar = _group_sums(xbar, gd, n_groups)[gd[first]] / n_dead[gd[first], None]
    cum_a = _segment_cumsum(full_a[:, None], group_stratum)[:, 0]
    cum_b = _segment_cumsum(full_b, group_stratum)
    own_a = cum_a[gid] - dead * (full_a[gid] - tied_a[gid])
    own_b = cum_b[gid] - dead[:, None] * (full_b[gid] - tied_b[gid])
    resid = -risk[:, None] * (x * own_a[:, None] - own_b)
    at_death = np.zeros((n_groups, x.shape[1]))
    at_death[gd[first]] = mean_xbar
    resid[dead] += x[dead] - at_death[gid[dead]]
    out = np.empty_like(resid)
    out[order] = resid
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
        counts; a model that cannot be fitted (no strata left, < 2 clusters, lifelines
        failure) has NaN estimates and says why in `warnings`.

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
            lifelines_std_err=np.full(k, np.nan),
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cph = CoxPHFitter(strata=[strata], alpha=1 - LEVEL).fit(
                data.to_pandas(),
                duration,
                event,
                cluster_col=cluster,
                robust=True,
                fit_options=dict(FIT_OPTIONS),
            )
        except (ConvergenceError, np.linalg.LinAlgError) as err:
            failed = f"lifelines failed: {type(err).__name__}: {str(err).splitlines()[0]}"
            return unfitted(failed, _lifelines_notes(caught))
    fit_notes = _lifelines_notes(caught)
    params = cph.params_.loc[list(terms)].to_numpy(dtype=float)
    naive_cov = cph.variance_matrix_.loc[list(terms), list(terms)].to_numpy(dtype=float)
    x = data.select(terms).to_numpy()
    s_code = data[strata].to_numpy()
    time, dead = data[duration].to_numpy(), data[event].to_numpy()
    resid = _efron_score_residuals(s_code, time, dead, x, params)
    cov = _robust_cov(resid, naive_cov, data[cluster].to_numpy() if cluster else None)
    cov_strata = _robust_cov(resid, naive_cov, s_code)
    cov_two_way = cov_strata + cov - _robust_cov(resid, naive_cov, None)
    concordance, c_notes = _concordance(s_code, time, dead, x @ params)
    return CoxResult(
        **base,
        params=params,
        cov=cov,
        naive_cov=naive_cov,
        lifelines_std_err=cph.standard_errors_.loc[list(terms)].to_numpy(dtype=float),
        cov_strata=cov_strata,
        cov_two_way=cov_two_way,
        concordance=concordance,
        converged=not any(
            "failed to converge" in note or "still high" in note for note in fit_notes
        ),
        warnings=(*notes, *fit_notes, *c_notes),
    )


def _lifelines_notes(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    """First lines of lifelines' runtime warnings (convergence, separation), deduplicated."""
    return list(
        dict.fromkeys(
            f"lifelines {w.category.__name__}: {str(w.message).strip().splitlines()[0]}"
            for w in caught
            if issubclass(w.category, RuntimeWarning)
        )
    )
