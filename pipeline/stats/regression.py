"""Adjusted regressions for the binary income outcomes (analysis-spec.md §7, §4.11).

`fit_logit` fits one model per outcome x cell: the outcome on the treatment plus
categorical (string) and numeric covariates, by logistic MLE (`model="logit"`) or as
an OLS linear probability model (`model="lpm"`). It builds the design matrix itself,
checks it before fitting (nulls, one-level covariates, separation, aliased terms),
never raises on data problems, and returns a frozen `BinaryModelResult` whose
`summary` is the tidy `models/*.parquet` frame of design.md.

Standard-error conventions (reconciled with R in `tests/test_regression.py`):

- logit, no cluster: model-based, the inverse Hessian at the MLE (= R `vcov(glm)`).
- logit, cluster: statsmodels `cov_type="cluster"` with `use_correction=True`,
  V = c * H^-1 (sum_g s_g s_g') H^-1 with c = G/(G-1) * (N-1)/(N-K); this is
  R `sandwich::vcovCL(fit, cluster = ~id, type = "HC1")` (cadjust = TRUE). Stata's
  `logit ..., vce(cluster id)` uses only G/(G-1) (= vcovCL type "HC0"); its SEs are
  ours times sqrt((N-K)/(N-1)).
- lpm: HC1, V = N/(N-K) * HC0 (R `vcovHC(type = "HC1")`, Stata `regress, vce(robust)`);
  with a cluster the same c as above (R `vcovCL(type = "HC1")`, Stata `regress,
  vce(cluster id)`).
- CIs and p-values are Wald with normal quantiles for both families (Stata uses
  t(G-1) for `regress` with clusters; with thousands of rows the difference is in
  the fourth decimal).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import statsmodels.api as sm
from scipy import special, stats
from statsmodels.tools.sm_exceptions import PerfectSeparationError

INTERCEPT = "intercept"
SUMMARY_COLUMNS = ("model", "term", "estimate", "std_err", "ci_low", "ci_high", "p_value", "n")
FAMILIES = ("logit", "lpm")
MAX_ITER = 100  # Newton steps; an identified logit converges in under 10
ALIAS_TOL = 1e-10  # smallest eigenvalue of the unit-diagonal Gram matrix below = aliased
LEVEL = 0.95
CATEGORICAL = (pl.String, pl.Categorical, pl.Enum)


@dataclass(frozen=True, eq=False)
class BinaryModelResult:
    """A fitted binary-outcome model; estimates on the log-odds (logit) or risk (lpm) scale.

    Attributes:
        name: model name written to the `model` column of `summary`.
        outcome, treatment: the column names fitted.
        family: "logit" or "lpm".
        cov_type: "model" (inverse Hessian), "hc1" or "cluster" (see module docstring).
        terms: design columns in order: intercept, treatment, covariate terms.
        params, cov: estimates and their covariance (NaN when the model was not fitted).
        n: rows fitted; n_dropped: rows dropped for a null outcome/treatment/covariate/
            cluster; n_clusters: distinct clusters (None without `cluster`).
        converged: False when the optimiser did not converge or nothing was fitted.
        warnings: pre-fit and fit warnings, with counts; write them to the model JSON.
        reference: reference level per categorical covariate.
        dropped_covariates: covariates dropped for having one level / zero variance.
        ame_pp, ame_pp_se: average marginal effect of the treatment and its delta-method
            SE, percentage points.
    """

    name: str
    outcome: str
    treatment: str
    family: str
    cov_type: str
    terms: tuple[str, ...]
    params: np.ndarray
    cov: np.ndarray = field(repr=False)
    n: int
    n_dropped: int
    n_clusters: int | None
    converged: bool
    warnings: tuple[str, ...]
    reference: Mapping[str, str]
    dropped_covariates: tuple[str, ...]
    ame_pp: float
    ame_pp_se: float

    @property
    def std_err(self) -> np.ndarray:
        """Standard errors of `params`, same scale as `params`."""
        return _sqrt(np.diag(self.cov))

    @property
    def p_value(self) -> float:
        """Two-sided Wald p-value of the treatment term (the stars of §4.11)."""
        return float(_wald(self.params[1], self.std_err[1])[2])

    @property
    def odds_ratio(self) -> float:
        """Treatment odds ratio exp(b) (logit only, NaN for lpm), unitless."""
        return math.exp(self.params[1]) if self.family == "logit" else math.nan

    @property
    def odds_ratio_ci(self) -> tuple[float, float]:
        """95 % CI of the odds ratio: exp of the Wald CI of the log-odds ratio."""
        if self.family != "logit":
            return (math.nan, math.nan)
        lo, hi, _ = _wald(self.params[1], self.std_err[1])
        return (math.exp(lo), math.exp(hi))

    @property
    def ame_pp_ci(self) -> tuple[float, float]:
        """95 % Wald CI of the average marginal effect, percentage points."""
        lo, hi, _ = _wald(self.ame_pp, self.ame_pp_se)
        return (float(lo), float(hi))

    @property
    def coefficients(self) -> pl.DataFrame:
        """One row per design term: estimate, std_err, 95 % CI, p_value (scale of `params`)."""
        return coefficient_table(self.terms, self.params, self.std_err)

    @property
    def summary(self) -> pl.DataFrame:
        """Tidy frame `model, term, estimate, std_err, ci_low, ci_high, p_value, n`.

        All design terms, then `OR(treated)` (logit only: exp(b), delta-method SE
        OR * se(b), CI = exp of the log-scale Wald CI, p of the treatment term) and
        `AME_pp(treated)` (percentage points, delta-method SE, Wald CI and p), where
        `treated` is the treatment column's name.
        """
        rows = self.coefficients
        treat = self.treatment
        extra: list[dict[str, Any]] = []
        if self.family == "logit":
            or_lo, or_hi = self.odds_ratio_ci
            extra.append(
                {
                    "term": f"OR({treat})",
                    "estimate": self.odds_ratio,
                    "std_err": self.odds_ratio * self.std_err[1],
                    "ci_low": or_lo,
                    "ci_high": or_hi,
                    "p_value": self.p_value,
                }
            )
        lo, hi, p = _wald(self.ame_pp, self.ame_pp_se)
        extra.append(
            {
                "term": f"AME_pp({treat})",
                "estimate": self.ame_pp,
                "std_err": self.ame_pp_se,
                "ci_low": float(lo),
                "ci_high": float(hi),
                "p_value": float(p),
            }
        )
        rows = pl.concat([rows, pl.DataFrame(extra, schema=rows.schema)])
        return rows.select(
            pl.lit(self.name, pl.String).alias("model"),
            *SUMMARY_COLUMNS[1:7],
            pl.lit(self.n, pl.Int64).alias("n"),
        )

    def metadata(self) -> dict[str, Any]:
        """JSON-ready fit facts: counts, clusters, convergence, warnings, reference levels."""
        return {
            "model": self.name,
            "outcome": self.outcome,
            "treatment": self.treatment,
            "family": self.family,
            "cov_type": self.cov_type,
            "n": self.n,
            "n_dropped": self.n_dropped,
            "n_clusters": self.n_clusters,
            "converged": self.converged,
            "warnings": list(self.warnings),
            "reference": dict(self.reference),
            "dropped_covariates": list(self.dropped_covariates),
        }


def coefficient_table(
    terms: Sequence[str], params: np.ndarray, std_err: np.ndarray
) -> pl.DataFrame:
    """One row per term: estimate, std_err, 95 % Wald CI and p (on the scale of `params`)."""
    lo, hi, p = _wald(params, std_err)
    return pl.DataFrame(
        {
            "term": list(terms),
            "estimate": params,
            "std_err": std_err,
            "ci_low": lo,
            "ci_high": hi,
            "p_value": p,
        },
        schema={"term": pl.String, **dict.fromkeys(SUMMARY_COLUMNS[2:7], pl.Float64)},
    )


def _wald(est: Any, se: Any, level: float = LEVEL) -> tuple[Any, Any, Any]:
    """Wald CI bounds and two-sided normal p-value for `est` with standard error `se`."""
    z = stats.norm.ppf(0.5 + level / 2)
    est, se = np.asarray(est, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.norm.sf(np.abs(est / se))
    return est - z * se, est + z * se, p


def _as_binary(values: pl.Series, role: str) -> np.ndarray:
    """`values` (bool or 0/1 numeric, no nulls) as a float 0/1 array; ValueError otherwise."""
    arr = values.cast(pl.Float64).to_numpy()
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{role} {values.name!r} must be bool or 0/1, got other values")
    return arr


def _reference_level(levels: np.ndarray, counts: np.ndarray, wanted: str | None) -> str:
    """`wanted` if present, else the most frequent level, ties broken by the sorted name."""
    if wanted is not None and wanted in levels:
        return wanted
    best = counts.max()
    return str(min(lv for lv, c in zip(levels, counts, strict=True) if c == best))


def _build_design(
    rows: pl.DataFrame,
    treatment: np.ndarray,
    covariates: Sequence[str],
    wanted: Mapping[str, str],
    notes: list[str],
) -> tuple[list[np.ndarray], list[str], dict[str, str], dict[str, np.ndarray], tuple[str, ...]]:
    """Design columns, term names, reference levels, categorical levels, dropped covariates.

    Appends a warning to `notes` for each dropped covariate and absent reference level.
    """
    cols, terms = [np.ones(len(treatment)), treatment], [INTERCEPT, ""]
    reference: dict[str, str] = {}
    levels_of: dict[str, np.ndarray] = {}
    dropped: list[str] = []
    for col in covariates:
        series = rows[col]
        if isinstance(series.dtype, CATEGORICAL):
            values = series.cast(pl.String).to_numpy().astype(str)
            levels, counts = np.unique(values, return_counts=True)
            if len(levels) < 2:
                notes.append(
                    f"covariate {col!r} dropped: one level {str(levels[0])!r} (n={counts[0]})"
                )
                dropped.append(col)
                continue
            ref = _reference_level(levels, counts, wanted.get(col))
            if col in wanted and wanted[col] != ref:
                notes.append(f"reference {wanted[col]!r} of {col!r} absent; used {ref!r}")
            reference[col] = ref
            levels_of[col] = values
            for level in levels:
                if level != ref:
                    cols.append((values == level).astype(float))
                    terms.append(f"{col}[{level}]")
        elif series.dtype.is_numeric() or series.dtype == pl.Boolean:
            values = series.cast(pl.Float64).to_numpy()
            if np.ptp(values) == 0:
                notes.append(f"covariate {col!r} dropped: zero variance (all {values[0]:g})")
                dropped.append(col)
                continue
            cols.append(values)
            terms.append(col)
        else:
            raise TypeError(f"covariate {col!r} has unsupported dtype {series.dtype}")
    return cols, terms, reference, levels_of, tuple(dropped)


def _aliased(x: np.ndarray) -> list[int]:
    """Indices of columns that are linear combinations of earlier columns (as R's glm).

    Greedy: a column is kept if the Gram matrix of the kept columns plus it, scaled to
    unit diagonal (so SEK-sized and 0/1 columns compare), stays positive definite.
    """
    gram = x.T @ x
    norm = np.sqrt(np.diag(gram))
    scaled = gram / np.outer(np.where(norm > 0, norm, 1.0), np.where(norm > 0, norm, 1.0))
    kept: list[int] = []
    out: list[int] = []
    for j in range(x.shape[1]):
        trial = [*kept, j]
        smallest = np.linalg.eigvalsh(scaled[np.ix_(trial, trial)]).min()
        (kept if norm[j] > 0 and smallest > ALIAS_TOL else out).append(j)
    return out


def _separation(
    y: np.ndarray, t: np.ndarray, treatment: str, levels_of: Mapping[str, np.ndarray]
) -> list[str]:
    """Warnings for a treatment arm or covariate level whose outcomes are all 0 or all 1."""
    notes = []
    advice = "; the treatment effect is not identified (unbounded log-OR)"
    groups = [(f"{treatment}={arm}", t == arm, advice) for arm in (1, 0)]
    advice = "; estimates and SEs involving it are unreliable (merge the level or drop it)"
    groups += [
        (f"{col}={level}", values == level, advice)
        for col, values in levels_of.items()
        for level in np.unique(values)
    ]
    for label, mask, advice in groups:
        share = y[mask].mean()
        if share in (0.0, 1.0):
            notes.append(
                f"quasi-complete separation: all {int(mask.sum())} rows with {label} have "
                f"outcome {int(share)}{advice}"
            )
    return notes


def _sqrt(values: Any) -> Any:
    """Square root with NaN for negative variances (singular fits), no warning."""
    values = np.asarray(values, dtype=float)
    return np.sqrt(np.where(values >= 0, values, np.nan))


def _ame_pp(x: np.ndarray, beta: np.ndarray, cov: np.ndarray, family: str) -> tuple[float, float]:
    """Discrete-change AME of column 1 (treatment) and its delta-method SE, percentage points.

    AME = mean_i [F(x_i1 b) - F(x_i0 b)] with x_i1/x_i0 = row i with treatment 1/0,
    F = expit (logit) or identity (lpm); gradient mean_i [f(x_i1 b) x_i1 - f(x_i0 b) x_i0]
    with f = F(1 - F) (logit) or 1; variance g' V g.
    """
    if family == "lpm":
        return 100 * float(beta[1]), 100 * float(_sqrt(cov[1, 1]))
    x1, x0 = x.copy(), x.copy()
    x1[:, 1], x0[:, 1] = 1.0, 0.0
    p1, p0 = special.expit(x1 @ beta), special.expit(x0 @ beta)
    grad = ((p1 * (1 - p1))[:, None] * x1 - (p0 * (1 - p0))[:, None] * x0).mean(axis=0)
    return 100 * float((p1 - p0).mean()), 100 * float(_sqrt(grad @ cov @ grad))


def _fit(
    y: np.ndarray, x: np.ndarray, family: str, groups: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, bool, list[str]]:
    """statsmodels fit: params, covariance (module-docstring conventions), converged, warnings."""
    if groups is not None:
        cov_args: dict[str, Any] = {
            "cov_type": "cluster",
            "cov_kwds": {"groups": groups, "use_correction": True},
        }
    else:
        cov_args = {"cov_type": "HC1"} if family == "lpm" else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if family == "logit":
            res = sm.Logit(y, x).fit(method="newton", maxiter=MAX_ITER, disp=False, **cov_args)
            converged = bool(res.mle_retvals["converged"])
        else:
            res = sm.OLS(y, x).fit(**cov_args)
            converged = True
        cov = np.asarray(res.cov_params(), dtype=float)
    notes = dict.fromkeys(f"statsmodels {w.category.__name__}: {w.message}" for w in caught)
    return np.asarray(res.params, dtype=float), cov, converged, list(notes)


def fit_logit(
    frame: pl.DataFrame,
    outcome: str,
    treatment: str,
    covariates: Sequence[str],
    cluster: str | None = None,
    model: str = "logit",
    reference: Mapping[str, str] | None = None,
    name: str | None = None,
) -> BinaryModelResult:
    """Fitted model of `outcome` on `treatment` + `covariates`; AME in percentage points.

    Args:
        frame: one row per person (or person x spell when `cluster` is given).
        outcome: bool or 0/1 column.
        treatment: bool or 0/1 column; its term is named after the column.
        covariates: string/categorical columns (one dummy `col[level]` per non-reference
            level) and numeric/bool columns (entered as is). Missing education should
            arrive as its own level ("saknas"), not null: null rows are dropped.
        cluster: column of cluster ids (person `lopnr`) for cluster-robust SEs.
        model: "logit" (MLE) or "lpm" (OLS linear probability model, HC1 SEs).
        reference: reference level per categorical column; default (or when the given
            level is absent, with a warning) the most frequent level, ties broken by
            the smallest name in code-point order.
        name: value of the `model` column of `summary`; default f"{model}_{outcome}".

    Returns:
        A `BinaryModelResult`. Data problems never raise: one-level covariates are
        dropped, separation and aliased terms are warned about, and a model that cannot
        be fitted (no rows, constant outcome or treatment, aliased treatment, one
        cluster, too few rows) has NaN estimates and says why in `warnings`.

    Raises:
        ValueError: unknown `model`, missing column, or a non-binary outcome/treatment.
    """
    if model not in FAMILIES:
        raise ValueError(f"model must be one of {FAMILIES}, got {model!r}")
    used = [outcome, treatment, *covariates, *([cluster] if cluster else [])]
    missing = [c for c in used if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in frame: {missing}")
    is_missing = {
        c: pl.col(c).is_null() | pl.col(c).is_nan()
        if frame.schema[c].is_float()
        else pl.col(c).is_null()
        for c in used
    }
    rows = frame.filter(~pl.any_horizontal(is_missing.values()))
    n_dropped = frame.height - rows.height
    notes: list[str] = []
    if n_dropped:
        per_col = frame.select(e.sum().alias(c) for c, e in is_missing.items()).row(0, named=True)
        detail = ", ".join(f"{c}: {k}" for c, k in per_col.items() if k)
        notes.append(f"{n_dropped} of {frame.height} rows dropped for nulls/NaN ({detail})")
    y = _as_binary(rows[outcome], "outcome")
    t = _as_binary(rows[treatment], "treatment")
    cols, terms, ref, levels_of, dropped = _build_design(
        rows, t, [c for c in covariates if c != treatment and rows.height], reference or {}, notes
    )
    terms[1] = treatment
    x = np.column_stack(cols)
    groups = None
    n_clusters = None
    if cluster is not None:
        groups = np.unique(rows[cluster].to_numpy(), return_inverse=True)[1]
        n_clusters = int(groups.max()) + 1 if rows.height else 0
    result_args: dict[str, Any] = {
        "name": name or f"{model}_{outcome}",
        "outcome": outcome,
        "treatment": treatment,
        "family": model,
        "cov_type": "cluster" if cluster else ("hc1" if model == "lpm" else "model"),
        "n": rows.height,
        "n_dropped": n_dropped,
        "n_clusters": n_clusters,
        "reference": ref,
        "dropped_covariates": dropped,
    }

    def unfitted(why: str) -> BinaryModelResult:
        k = len(terms)
        return BinaryModelResult(
            **result_args,
            terms=tuple(terms),
            params=np.full(k, np.nan),
            cov=np.full((k, k), np.nan),
            converged=False,
            warnings=(*notes, f"not fitted: {why}"),
            ame_pp=math.nan,
            ame_pp_se=math.nan,
        )

    if rows.height == 0:
        return unfitted("no rows left")
    for label, values in ((f"outcome {outcome!r}", y), (f"treatment {treatment!r}", t)):
        if np.ptp(values) == 0:
            return unfitted(f"{label} is constant ({values[0]:g} in all {rows.height} rows)")
    if n_clusters is not None and n_clusters < 2:
        return unfitted("fewer than 2 clusters")
    aliased = _aliased(x)
    if 1 in aliased:
        return unfitted(f"treatment {treatment!r} is collinear with the intercept/covariates")
    if aliased:
        notes.append(f"aliased terms dropped: {[terms[j] for j in aliased]}")
        terms = [term for j, term in enumerate(terms) if j not in aliased]
        x = np.delete(x, aliased, axis=1)
    if rows.height <= x.shape[1]:
        return unfitted(f"{rows.height} rows for {x.shape[1]} parameters")
    if model == "logit":
        notes += _separation(y, t, treatment, levels_of)
    try:
        params, cov, converged, fit_notes = _fit(y, x, model, groups)
    except (np.linalg.LinAlgError, PerfectSeparationError) as err:
        return unfitted(f"statsmodels failed: {type(err).__name__}: {err}")
    notes += fit_notes
    if not converged:
        notes.append(f"did not converge in {MAX_ITER} Newton steps")
    ame, ame_se = _ame_pp(x, params, cov, model)
    return BinaryModelResult(
        **result_args,
        terms=tuple(terms),
        params=params,
        cov=cov,
        converged=converged,
        warnings=tuple(notes),
        ame_pp=ame,
        ame_pp_se=ame_se,
    )


def stars(p: float) -> str:
    """Significance stars of the report (L1532): "***" p < 0.001, "**" p < 0.01, else "".

    The report has no "*" level (analysis-spec.md §4.9, §5.5); NaN gives "".

    >>> [stars(p) for p in (0.0005, 0.001, 0.005, 0.01, 0.04, float("nan"))]
    ['***', '**', '**', '', '', '']
    """
    if p < 0.001:
        return "***"
    if p < 0.01:
        return "**"
    return ""


def _check_counts(x: int, n: int) -> None:
    if n <= 0 or not 0 <= x <= n:
        raise ValueError(f"need 0 <= x <= n and n > 0, got x={x}, n={n}")


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z test of x1/n1 = x2/n2, unitless.

    z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2)) with pooled p = (x1 + x2) / (n1 + n2);
    1.0 when the pooled proportion is 0 or 1 (no variation, no difference).

    >>> round(two_proportion_z(56, 70, 48, 80), 5)
    0.00805
    """
    _check_counts(x1, n1)
    _check_counts(x2, n2)
    pooled = (x1 + x2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / math.sqrt(var)
    return float(2 * stats.norm.sf(abs(z)))


def wilson_ci(x: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of the proportion x/n, in proportions (0-1).

    >>> [round(b, 4) for b in wilson_ci(81, 263)]
    [0.2553, 0.3662]
    """
    _check_counts(x, n)
    z = float(stats.norm.ppf(0.5 + level / 2))
    centre = (x + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(x * (n - x) / n + z * z / 4)
    # the bounds at x = 0 and x = n are exactly 0 and 1 (not float noise around them)
    low = 0.0 if x == 0 else max(0.0, centre - half)
    high = 1.0 if x == n else min(1.0, centre + half)
    return (low, high)


def newcombe_diff_ci(
    x1: int, n1: int, x2: int, n2: int, level: float = LEVEL
) -> tuple[float, float]:
    """Newcombe's hybrid score interval of p1 - p2 (method 10, 1998), in proportions.

    From the Wilson intervals (l1, u1), (l2, u2): d - sqrt((p1 - l1)^2 + (u2 - p2)^2),
    d + sqrt((u1 - p1)^2 + (p2 - l2)^2) with d = p1 - p2.

    >>> [round(b, 4) for b in newcombe_diff_ci(56, 70, 48, 80)]
    [0.0524, 0.3339]
    """
    l1, u1 = wilson_ci(x1, n1, level)
    l2, u2 = wilson_ci(x2, n2, level)
    p1, p2 = x1 / n1, x2 / n2
    d = p1 - p2
    return (d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2))
