"""Adjusted regressions for the binary income outcomes (analysis-spec.md §7, §4.11).

`fit_logit` fits one model per outcome x cell: the outcome on the treatment plus
categorical (string) and numeric covariates, by logistic MLE (`model="logit"`) or as
an OLS linear probability model (`model="lpm"`). It builds the design matrix itself,
checks it before fitting (nulls, one-level covariates, separation, aliased terms),
never raises on data problems, and returns a frozen `BinaryModelResult` whose
`summary` is the tidy `models/*.parquet` frame of design.md (`pipeline.stats.base`).
The design matrix rules are `pipeline.stats.design`'s.

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
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import statsmodels.api as sm
from scipy import special
from statsmodels.tools.sm_exceptions import PerfectSeparationError

from pipeline.stats.base import (
    COEFFICIENT_SCHEMA,
    FittedModel,
    as_binary,
    drop_missing,
    require_columns,
    safe_sqrt,
    wald,
)
from pipeline.stats.design import aliased, build_design, cluster_groups, outcome_groups

FAMILIES = ("logit", "lpm")
MAX_ITER = 100  # Newton steps; an identified logit converges in under 10
TREATMENT_ADVICE = "; the treatment effect is not identified (unbounded log-OR)"
LEVEL_ADVICE = "; estimates and SEs involving it are unreliable (merge the level or drop it)"


@dataclass(frozen=True, eq=False)
class BinaryModelResult(FittedModel):
    """A fitted binary-outcome model; estimates on the log-odds (logit) or risk (lpm) scale.

    Attributes (besides `FittedModel`'s; the treatment is term 1, after the intercept):
        outcome: the outcome column fitted.
        family: "logit" or "lpm".
        cov_type: "model" (inverse Hessian), "hc1" or "cluster" (see module docstring).
        reference: reference level per categorical covariate.
        dropped_covariates: covariates dropped for having one level / zero variance.
        ame_pp, ame_pp_se: average marginal effect of the treatment and its delta-method
            SE, percentage points.
    """

    outcome: str
    family: str
    cov_type: str
    reference: Mapping[str, str]
    dropped_covariates: tuple[str, ...]
    ame_pp: float
    ame_pp_se: float

    @property
    def odds_ratio(self) -> float:
        """Treatment odds ratio exp(b) (logit only, NaN for lpm), unitless."""
        return self._treatment_ratio()[0] if self.family == "logit" else math.nan

    @property
    def odds_ratio_ci(self) -> tuple[float, float]:
        """95 % CI of the odds ratio: exp of the Wald CI of the log-odds ratio."""
        if self.family != "logit":
            return (math.nan, math.nan)
        return self._treatment_ratio()[1:]

    @property
    def ame_pp_ci(self) -> tuple[float, float]:
        """95 % Wald CI of the average marginal effect, percentage points."""
        lo, hi, _ = wald(self.ame_pp, self.ame_pp_se)
        return (float(lo), float(hi))

    def _derived(self) -> list[pl.DataFrame]:
        """Summary rows `OR(treated)` (logit only) and `AME_pp(treated)`; `treated` = treatment.

        OR: exp(b), delta-method SE OR * se(b), CI = exp of the log-scale Wald CI, p of
        the treatment term. AME_pp: percentage points, delta-method SE, Wald CI and p.
        """
        rows = [self._ratio_row("OR")] if self.family == "logit" else []
        lo, hi, p = wald(self.ame_pp, self.ame_pp_se)
        rows.append(
            {
                "term": f"AME_pp({self.treatment})",
                "estimate": self.ame_pp,
                "std_err": self.ame_pp_se,
                "ci_low": float(lo),
                "ci_high": float(hi),
                "p_value": float(p),
            }
        )
        return [pl.DataFrame(rows, schema=COEFFICIENT_SCHEMA)]

    def _metadata(self) -> dict[str, Any]:
        """Outcome, family, covariance type, reference levels, dropped covariates."""
        return {
            "outcome": self.outcome,
            "family": self.family,
            "cov_type": self.cov_type,
            "reference": dict(self.reference),
            "dropped_covariates": list(self.dropped_covariates),
        }


def _separation(
    y: np.ndarray, t: np.ndarray, treatment: str, levels_of: Mapping[str, np.ndarray]
) -> list[str]:
    """Warnings for a treatment arm or covariate level whose outcomes are all 0 or all 1."""
    notes = []
    for i, (label, mask) in enumerate(outcome_groups(t, treatment, levels_of)):
        share = y[mask].mean()
        if share in (0.0, 1.0):
            advice = TREATMENT_ADVICE if i < 2 else LEVEL_ADVICE  # the two arms come first
            notes.append(
                f"quasi-complete separation: all {int(mask.sum())} rows with {label} have "
                f"outcome {int(share)}{advice}"
            )
    return notes


def _ame_pp(x: np.ndarray, beta: np.ndarray, cov: np.ndarray, family: str) -> tuple[float, float]:
    """Discrete-change AME of column 1 (treatment) and its delta-method SE, percentage points.

    AME = mean_i [F(x_i1 b) - F(x_i0 b)] with x_i1/x_i0 = row i with treatment 1/0,
    F = expit (logit) or identity (lpm); gradient mean_i [f(x_i1 b) x_i1 - f(x_i0 b) x_i0]
    with f = F(1 - F) (logit) or 1; variance g' V g.
    """
    if family == "lpm":
        return 100 * float(beta[1]), 100 * float(safe_sqrt(cov[1, 1]))
    x1, x0 = x.copy(), x.copy()
    x1[:, 1], x0[:, 1] = 1.0, 0.0
    p1, p0 = special.expit(x1 @ beta), special.expit(x0 @ beta)
    grad = ((p1 * (1 - p1))[:, None] * x1 - (p0 * (1 - p0))[:, None] * x0).mean(axis=0)
    return 100 * float((p1 - p0).mean()), 100 * float(safe_sqrt(grad @ cov @ grad))


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
    require_columns(frame, used)
    rows, notes = drop_missing(frame, used)
    n_dropped = frame.height - rows.height
    y = as_binary(rows[outcome], "outcome")
    t = as_binary(rows[treatment], "treatment")
    cols, terms, ref, levels_of, dropped = build_design(
        rows, t, [c for c in covariates if c != treatment and rows.height], reference or {}, notes
    )
    terms[1] = treatment
    x = np.column_stack(cols)
    groups, n_clusters = cluster_groups(rows, cluster)
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
            params_=np.full(k, np.nan),
            cov_=np.full((k, k), np.nan),
            converged=False,
            warnings_=(*notes, f"not fitted: {why}"),
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
    alias = aliased(x)
    if 1 in alias:
        return unfitted(f"treatment {treatment!r} is collinear with the intercept/covariates")
    if alias:
        notes.append(f"aliased terms dropped: {[terms[j] for j in alias]}")
        terms = [term for j, term in enumerate(terms) if j not in alias]
        x = np.delete(x, alias, axis=1)
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
        params_=params,
        cov_=cov,
        converged=converged,
        warnings_=tuple(notes),
        ame_pp=ame,
        ame_pp_se=ame_se,
    )
