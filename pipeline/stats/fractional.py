"""Fractional logit of the share of a window on sick leave (issue 15 item 4; analysis-spec.md §6).

A bounded-outcome model beside the NB2 (`pipeline.stats.nb2`), as a sensitivity: the
outcome is y / W, the sick days in the window out of its W days, in [0, 1]; its mean is
modelled as E[y / W | x] = expit(x b) with the NB2's design (`pipeline.stats.design.
treatment_design`: intercept, treatment, prior days, their interaction, covariates).
Fitted by the binomial quasi-likelihood (Papke & Wooldridge 1996): IRLS of the
logit-link binomial GLM on the share (R `glm(share ~ ..., family = quasibinomial)`),
consistent for b whenever the mean is right, whatever the distribution of the share.
Predictions stay inside [0, W] by construction, so extra days lie in [-W, W].

Covariances (N rows, K coefficients, G clusters; reconciled with R in
tests/test_fractional.py):
- No cluster: the quasi-binomial model-based phi (X'WX)^-1, W = mu (1 - mu),
  phi = Pearson chi-square / (N - K) (R `vcov(glm(family = quasibinomial))`).
- Cluster (one column): G/(G-1) (N-1)/(N-K) (X'WX)^-1 (sum_g s_g s_g') (X'WX)^-1 with
  s_g the cluster sums of the scores x (y/W - mu) (R `sandwich::vcovCL(fit, cluster =
  ~id, type = "HC1")`: phi cancels).
- Two-way (a pair of columns a, b): Cameron-Gelbach-Miller, the meats of a, b and their
  intersection (subtracted) each with its own G/(G-1), then (N-1)/(N-K) (R `vcovCL(fit,
  cluster = ~ a + b, multi0 = FALSE, type = "HC1")`).
- Extra days (g-computation): for each v, W x [mean_i expit(x_i1 b) - mean_i expit(x_i0 b)]
  with the treatment and the interacted column set to (1, v) / (0, v) for every row,
  the other covariates as observed; delta-method SE sqrt(g' V g),
  g = W mean_i [mu_i1 (1 - mu_i1) x_i1 - mu_i0 (1 - mu_i0) x_i0]. CIs Wald, normal.

Rows: complete windows only (no offset; the `nb_model` stage passes only rows whose
after-window is complete); rows with y outside [0, W] are dropped with a warning.
`extra_days_by` sets a whole basis (the `nb_model` prior-days form and its
`treated:` columns) as `NB2Result.extra_days_by` does, with expit for exp; the two
could share one function of (design, params, cov, inverse link) later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy.special import expit

from pipeline.stats.base import (
    FittedModel,
    as_binary,
    drop_missing,
    json_float,
    require_columns,
    safe_sqrt,
    wald,
)
from pipeline.stats.design import aliased, cluster_codes, cluster_meat, treatment_design

EXTRA_AT = (0.0, 180.0)  # prior days of the report's +20 / +40 claim (§6.1)
MAX_ITER = 100
DEVIANCE_TOL = 1e-12  # IRLS stops when the relative deviance change is below this


@dataclass(frozen=True, eq=False)
class FractionalResult(FittedModel):
    """A fitted fractional logit; coefficients: log-odds of the share; extra days in days.

    Attributes (besides `FittedModel`'s; `cov_` as in the module docstring; n_dropped
    counts nulls/NaN/inf and outcomes outside [0, window_days]):
        outcome: the outcome column (days in the window).
        window_days: W, the window's days (the share's denominator), days.
        interaction_with, interaction_term: as `NB2Result`.
        extra_at: values of `interaction_with` for the `extra_days` rows of `summary`.
        cov_type: "model", "cluster" or "cluster_two_way".
        dispersion: Pearson chi-square / (N - K), unitless (< 1: less spread than binomial).
        design: the fitted design matrix, columns `terms`.
        iterations: IRLS iterations.
        reference, dropped_covariates: as `NB2Result`.
    """

    outcome: str
    window_days: float
    interaction_with: str | None
    interaction_term: str | None
    extra_at: tuple[float, ...]
    cov_type: str
    dispersion: float
    design: np.ndarray = field(repr=False)
    iterations: int
    reference: Mapping[str, str]
    dropped_covariates: tuple[str, ...]

    def extra_days(self, at: Sequence[float] | None = None) -> pl.DataFrame:
        """One row per value of `interaction_with`: treated - control mean days, delta-method CI.

        Columns as `NB2Result.extra_days`: the `interaction_with` name (the value set),
        `extra_days`, `std_err`, `ci_low`, `ci_high` (95 % Wald), `mean_treated`,
        `mean_control` (days per window), `n` (rows averaged).

        Raises:
            ValueError: the model has no numeric column to set.
        """
        at = self.extra_at if at is None else tuple(float(v) for v in at)
        if self.interaction_with is None:
            raise ValueError("the model has no numeric column to set")
        col, inter = self.interaction_with, self.interaction_term
        table = self.extra_days_by(
            at, lambda v: {col: v}, col, interactions={col: inter} if inter else {}
        )
        if col in self.terms:
            return table
        # the column was dropped (zero variance): nothing to set, so no extra days
        return table.with_columns(
            pl.lit(math.nan, pl.Float64).alias(c) for c in table.columns if c not in (col, "n")
        )

    def extra_days_by(
        self,
        at: Sequence[float],
        basis: Callable[[float], Mapping[str, float]],
        label: str,
        interactions: Mapping[str, str] | None = None,
    ) -> pl.DataFrame:
        """One row per value v of `at`: treated - control mean days, delta-method CI (days).

        As `NB2Result.extra_days_by` with expit for exp: each arm sets the treatment term
        to 1 / 0, every term `basis(v)` names to its value and each interaction term
        (`interactions[term]`, default `<treatment>:<term>`) to arm x value; terms not in
        the model (dropped) are skipped; the rest of each row's linear predictor is kept
        as observed; means are W x mean share. Columns: `label` (v), `extra_days`,
        `std_err`, `ci_low`, `ci_high` (95 % Wald), `mean_treated`, `mean_control`
        (days per window), `n` (rows averaged).
        """
        idx = {term: j for j, term in enumerate(self.terms)}
        inter_of = dict(interactions or {})
        fitted = self.n and np.isfinite(self.params_).all()
        w = self.window_days
        rows = []
        for v in at:
            if not fitted:
                rows.append((v, *[math.nan] * 6))
                continue
            set_j, per_arm = [1], [[1.0], [0.0]]
            for term, value in basis(v).items():
                if term in idx:
                    set_j.append(idx[term])
                    per_arm[0].append(value)
                    per_arm[1].append(value)
                name = inter_of.get(term, f"{self.treatment}:{term}")
                if name in idx:
                    set_j.append(idx[name])
                    per_arm[0].append(value)
                    per_arm[1].append(0.0)
            b_set = self.params_[set_j]
            rest = self.design @ self.params_ - self.design[:, set_j] @ b_set
            means, grad = [], np.zeros(len(self.terms))
            for arm_values, sign in zip(per_arm, (1.0, -1.0), strict=True):
                arm = np.asarray(arm_values)
                mu = expit(rest + arm @ b_set)
                slope = mu * (1 - mu)
                # d mean(mu) / d beta = mean(mu (1 - mu) x) with x's set columns replaced
                g = slope @ self.design / self.n
                g[set_j] = slope.mean() * arm
                grad += sign * w * g
                means.append(w * float(mu.mean()))
            est = means[0] - means[1]
            se = float(safe_sqrt(grad @ self.cov_ @ grad))
            lo, hi, _ = wald(est, se)
            rows.append((v, est, se, float(lo), float(hi), *means))
        names = [label, "extra_days", "std_err", "ci_low", "ci_high", "mean_treated"]
        return pl.DataFrame(
            rows, schema=dict.fromkeys([*names, "mean_control"], pl.Float64), orient="row"
        ).with_columns(pl.lit(self.n, pl.Int64).alias("n"))

    def _derived(self) -> list[pl.DataFrame]:
        """Summary rows `extra_days(<col>=<v>)` per `extra_at` (days, Wald p)."""
        if self.interaction_with is None or not self.extra_at:
            return []
        extra = self.extra_days()
        col = self.interaction_with
        return [
            pl.DataFrame(
                {
                    "term": [f"extra_days({col}={v:g})" for v in extra[col]],
                    "estimate": extra["extra_days"],
                    "std_err": extra["std_err"],
                    "ci_low": extra["ci_low"],
                    "ci_high": extra["ci_high"],
                    "p_value": wald(extra["extra_days"], extra["std_err"])[2],
                }
            )
        ]

    def _metadata(self) -> dict[str, Any]:
        """Outcome, window, interaction, covariance type, dispersion, reference levels."""
        return {
            "outcome": self.outcome,
            "window_days": self.window_days,
            "interaction_with": self.interaction_with,
            "interaction_term": self.interaction_term,
            "cov_type": self.cov_type,
            "dispersion": json_float(self.dispersion),
            "iterations": self.iterations,
            "reference": dict(self.reference),
            "dropped_covariates": list(self.dropped_covariates),
        }


def _irls(share: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """Logit-link binomial IRLS on `share`: estimates (log-odds), iterations, converged."""
    mu = (share + 0.5) / 2  # R binomial()$initialize for weights 1: (y + 0.5) / 2
    eta = np.log(mu / (1 - mu))
    beta = np.zeros(x.shape[1])
    deviance = math.inf
    for it in range(1, MAX_ITER + 1):
        w = mu * (1 - mu)
        z = eta + (share - mu) / w
        beta = np.linalg.solve(x.T @ (x * w[:, None]), x.T @ (w * z))
        eta = x @ beta
        mu = expit(eta)
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = 2 * np.sum(
                np.where(share > 0, share * np.log(share / mu), 0.0)
                + np.where(share < 1, (1 - share) * np.log((1 - share) / (1 - mu)), 0.0)
            )
        if abs(dev - deviance) / (abs(dev) + 0.1) < DEVIANCE_TOL:
            return beta, it, True
        deviance = dev
    return beta, MAX_ITER, False


def _covariance(
    share: np.ndarray, x: np.ndarray, beta: np.ndarray, groups: Sequence[np.ndarray] | None
) -> tuple[np.ndarray, float]:
    """The covariance of the module docstring and the Pearson dispersion."""
    n, k = x.shape
    mu = expit(x @ beta)
    w = mu * (1 - mu)
    bread = np.linalg.inv(x.T @ (x * w[:, None]))
    dispersion = float(np.sum((share - mu) ** 2 / w) / (n - k))
    if groups is None:
        return dispersion * bread, dispersion
    meat = cluster_meat(x * (share - mu)[:, None], groups)
    return (n - 1) / (n - k) * bread @ meat @ bread, dispersion


def fit_fractional(
    frame: pl.DataFrame,
    outcome: str,
    treatment: str,
    covariates: Sequence[str],
    window_days: float,
    interaction_with: str | None = "prior_days",
    numeric: Sequence[str] = ("prior_days",),
    cluster: str | Sequence[str] | None = None,
    reference: Mapping[str, str] | None = None,
    name: str | None = None,
    *,
    extra_at: Sequence[float] = EXTRA_AT,
) -> FractionalResult:
    """Fitted fractional logit of `outcome` / `window_days`; extra days in days (module docstring).

    Arguments as `fit_nb2` (without an offset); `window_days`: W, the window's days.
    Data problems never raise: null rows and outcomes outside [0, W] are dropped and
    counted, one-level/zero-variance columns and aliased terms dropped with a warning;
    an unfittable model (no rows, all 0 or all W, constant or aliased treatment, < 2
    clusters, too few rows) has NaN estimates and says why.

    Raises:
        ValueError: missing column, non-binary treatment, window_days <= 0, bad cluster.
        TypeError: non-numeric outcome or `numeric` column.
    """
    if not window_days > 0:
        raise ValueError(f"window_days must be > 0, got {window_days}")
    numeric = list(dict.fromkeys([*numeric, *([interaction_with] if interaction_with else [])]))
    covariates = [c for c in covariates if c not in (treatment, *numeric)]
    clusters = [] if cluster is None else [cluster] if isinstance(cluster, str) else list(cluster)
    if len(clusters) > 2 or len(set(clusters)) < len(clusters):
        raise ValueError(f"cluster must be one column or two distinct ones, got {cluster!r}")
    used = list(dict.fromkeys([outcome, treatment, *numeric, *covariates, *clusters]))
    require_columns(frame, used)
    for col in (outcome, *numeric):
        if not (frame.schema[col].is_numeric() or frame.schema[col] == pl.Boolean):
            raise TypeError(f"column {col!r} must be numeric, got {frame.schema[col]}")
    rows, notes = drop_missing(frame, used, inf=True)
    outside = ~pl.col(outcome).is_between(0, window_days)
    n_outside = int(rows.select(outside.sum()).item())
    if n_outside:
        notes.append(f"{n_outside} rows dropped: outcome {outcome!r} outside [0, {window_days:g}]")
        rows = rows.filter(~outside)
    share = rows[outcome].cast(pl.Float64).to_numpy() / window_days
    t = as_binary(rows[treatment], "treatment")
    x, terms, inter_term, ref, _, dropped = treatment_design(
        rows, t, treatment, numeric, interaction_with, covariates, reference or {}, notes
    )
    groups, n_clusters = cluster_codes(rows, cluster)
    common: dict[str, Any] = {
        "name": name or f"fractional_{outcome}",
        "outcome": outcome,
        "treatment": treatment,
        "window_days": float(window_days),
        "interaction_with": interaction_with or (numeric[0] if numeric else None),
        "extra_at": tuple(float(v) for v in extra_at),
        "cov_type": {0: "model", 1: "cluster", 2: "cluster_two_way"}[len(clusters)],
        "n": rows.height,
        "n_dropped": frame.height - rows.height,
        "n_clusters": n_clusters,
        "reference": ref,
        "dropped_covariates": dropped,
    }

    def unfitted(why: str) -> FractionalResult:
        k = len(terms)
        return FractionalResult(
            **common,
            interaction_term=inter_term,
            terms=tuple(terms),
            params_=np.full(k, np.nan),
            cov_=np.full((k, k), np.nan),
            dispersion=math.nan,
            design=x,
            iterations=0,
            converged=False,
            warnings_=(*notes, f"not fitted: {why}"),
        )

    if rows.height == 0:
        return unfitted("no rows left")
    if not share.any() or (share == 1).all():
        return unfitted(f"outcome {outcome!r} is {share[0] * window_days:g} in all rows")
    if np.ptp(t) == 0:
        return unfitted(f"treatment {treatment!r} is constant ({t[0]:g} in all {rows.height} rows)")
    if n_clusters is not None and n_clusters < 2:
        return unfitted("fewer than 2 clusters")
    alias = aliased(x)
    if 1 in alias:
        return unfitted(f"treatment {treatment!r} is collinear with the intercept/covariates")
    if alias:
        notes.append(f"aliased terms dropped: {[terms[j] for j in alias]}")
        if inter_term is not None and terms.index(inter_term) in alias:
            inter_term = None
        terms = [term for j, term in enumerate(terms) if j not in alias]
        x = np.delete(x, alias, axis=1)
    if rows.height <= x.shape[1]:
        return unfitted(f"{rows.height} rows for {x.shape[1]} coefficients")
    with np.errstate(over="ignore"):
        beta, iterations, converged = _irls(share, x)
    if not converged:
        notes.append(f"IRLS did not converge in {MAX_ITER} iterations")
    cov, dispersion = _covariance(share, x, beta, groups)
    return FractionalResult(
        **common,
        interaction_term=inter_term,
        terms=tuple(terms),
        params_=beta,
        cov_=cov,
        dispersion=dispersion,
        design=x,
        iterations=iterations,
        converged=converged,
        warnings_=tuple(notes),
    )
