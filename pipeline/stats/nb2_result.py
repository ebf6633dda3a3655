"""The fitted NB2 model of `pipeline.stats.nb2`: estimates, IRRs, alpha and extra days.

Conventions (covariances, g-computation of the extra days) are in the docstring of
`pipeline.stats.nb2`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from pipeline.stats.base import COEFFICIENT_SCHEMA, FittedModel, json_float, safe_sqrt, wald


@dataclass(frozen=True, eq=False)
class NB2Result(FittedModel):
    """A fitted NB2 model; coefficients on the log-rate scale, extra days in days.

    Attributes (besides `FittedModel`'s; `params` on the log-rate scale, `cov` the
    joint covariance of (params, alpha_), alpha last; n_dropped counts nulls/NaN/inf
    and negative outcomes):
        outcome: the outcome column fitted.
        interaction_with: the numeric column that `extra_days` sets (the interacted
            column, or the first `numeric` column in a main-effects model); None when
            there is none.
        interaction_term: design term of treatment x `interaction_with` (None when
            absent or dropped).
        offset: column added to the linear predictor, log(observed days) (None without).
        window_days: days of the full window `extra_days` predicts for with an offset.
        extra_at: values of `interaction_with` for the `extra_days` rows of `summary`.
        cov_type: "model" or "cluster" (module docstring).
        alpha_: NB2 dispersion, unitless (NaN when not fitted).
        design: the fitted design matrix, one row per model row (for `extra_days`);
            its columns are `terms`: intercept, treatment, numeric, interaction, covariates.
        log_likelihood: maximised log-likelihood (full, with the log y! constant).
        method: optimiser whose fit was kept ("newton", "bfgs", "nm"; None if none).
        reference: reference level per categorical covariate.
        dropped_covariates: columns dropped for one level / zero variance.
    """

    outcome: str
    interaction_with: str | None
    interaction_term: str | None
    offset: str | None
    window_days: float | None
    extra_at: tuple[float, ...]
    cov_type: str
    alpha_: float
    design: np.ndarray = field(repr=False)
    log_likelihood: float
    method: str | None
    reference: Mapping[str, str]
    dropped_covariates: tuple[str, ...]

    @property
    def alpha_se(self) -> float:
        """Standard error of `alpha_` from the joint covariance, unitless."""
        return float(safe_sqrt(self.cov_[-1, -1]))

    @property
    def alpha_ci(self) -> tuple[float, float]:
        """95 % CI of alpha: exp(log alpha +- z SE/alpha), unitless."""
        with np.errstate(divide="ignore", invalid="ignore"):
            lo, hi, _ = wald(
                math.log(self.alpha_) if self.alpha_ > 0 else math.nan, self.alpha_se / self.alpha_
            )
        return (float(np.exp(lo)), float(np.exp(hi)))

    @property
    def irr(self) -> pl.DataFrame:
        """One row `IRR(term)` per term: exp(b), SE exp(b) SE(b), exp of the Wald CI, p."""
        coef = self.coefficients
        return coef.select(
            ("IRR(" + pl.col("term") + ")").alias("term"),
            pl.col("estimate").exp(),
            (pl.col("estimate").exp() * pl.col("std_err")).alias("std_err"),
            pl.col("ci_low").exp(),
            pl.col("ci_high").exp(),
            "p_value",
        )

    def extra_days(
        self, at: Sequence[float] | None = None, window_days: float | None = None
    ) -> pl.DataFrame:
        """One row per value of `interaction_with`: treated - control mean days, delta-method CI.

        g-computation over all model rows with `interaction_with` set to each value and
        the other covariates as observed (module docstring). Columns: the
        `interaction_with` name (the value set), `extra_days`, `std_err`, `ci_low`,
        `ci_high` (95 % Wald), `mean_treated`, `mean_control` (days), `n` (rows averaged).

        Args:
            at: values to set; default `extra_at` (the report's 0 and 180).
            window_days: full window to predict for when the model has an offset;
                default the `window_days` given to `fit_nb2`.

        Raises:
            ValueError: no numeric column to set, or `window_days` given without an
                offset / missing with one.
        """
        at = self.extra_at if at is None else tuple(float(v) for v in at)
        if self.interaction_with is None:
            raise ValueError("the model has no numeric column to set")
        col = self.interaction_with
        inter = self.interaction_term

        def setter(v: float) -> dict[str, float]:
            return {col: v}

        table = self.extra_days_by(
            at, setter, col, window_days, interactions={col: inter} if inter else {}
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
        window_days: float | None = None,
        interactions: Mapping[str, str] | None = None,
    ) -> pl.DataFrame:
        """One row per value v of `at`: treated - control mean days, delta-method CI (days).

        g-computation over all model rows: each arm sets the treatment term to 1 / 0,
        every term `basis(v)` names to its value and each interaction term
        (`interactions[term]`, default `<treatment>:<term>`) to arm x value; terms not
        in the model (dropped) are skipped; the rest of each row's linear predictor is
        kept as observed. Columns: `label` (v), `extra_days`, `std_err`, `ci_low`,
        `ci_high` (95 % Wald), `mean_treated`, `mean_control` (days), `n` (rows averaged).
        """
        window_days = self.window_days if window_days is None else window_days
        base = base_offset(self.offset, window_days)
        idx = {term: j for j, term in enumerate(self.terms)}
        inter_of = dict(interactions or {})
        rows = []
        fitted = self.n and np.isfinite(self.params_).all()
        for v in at:
            if not fitted:
                rows.append((v, *[math.nan] * 6))
                continue
            values = basis(v)
            set_j, per_arm = [1], [[1.0], [0.0]]
            for term, value in values.items():
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
            rest = self.design @ self.params_ - self.design[:, set_j] @ b_set + base
            mean_mu, grad = [], np.zeros(len(self.terms))
            for arm_values, sign in zip(per_arm, (1.0, -1.0), strict=True):
                arm = np.asarray(arm_values)
                mu = np.exp(rest + arm @ b_set)
                # d mean(mu) / d beta = mean(mu x) with x's set columns replaced
                g = mu @ self.design / self.n
                g[set_j] = mu.mean() * arm
                grad += sign * g
                mean_mu.append(float(mu.mean()))
            est = mean_mu[0] - mean_mu[1]
            k = len(self.terms)
            se = float(safe_sqrt(grad @ self.cov_[:k, :k] @ grad))
            lo, hi, _ = wald(est, se)
            rows.append((v, est, se, float(lo), float(hi), *mean_mu))
        names = [label, "extra_days", "std_err", "ci_low", "ci_high"]
        names += ["mean_treated", "mean_control"]
        return pl.DataFrame(
            rows, schema=dict.fromkeys(names, pl.Float64), orient="row"
        ).with_columns(pl.lit(self.n, pl.Int64).alias("n"))

    def _derived(self) -> list[pl.DataFrame]:
        """Summary rows `IRR(term)` per term, `alpha`, `extra_days(<col>=<v>)` per `extra_at`.

        alpha has a NaN p-value; extra days are in days with a Wald p-value.
        """
        a_lo, a_hi = self.alpha_ci
        alpha = {
            "term": "alpha",
            "estimate": self.alpha_,
            "std_err": self.alpha_se,
            "ci_low": a_lo,
            "ci_high": a_hi,
            "p_value": math.nan,
        }
        parts = [self.irr, pl.DataFrame([alpha], schema=COEFFICIENT_SCHEMA)]
        if self.interaction_with is not None and self.extra_at:
            col = self.interaction_with
            extra = self.extra_days()
            parts.append(
                extra.select(
                    pl.format(
                        "extra_days({}={})",
                        pl.lit(col),
                        pl.col(col).map_elements(_fmt, return_dtype=pl.String),
                    ).alias("term"),
                    pl.col("extra_days").alias("estimate"),
                    "std_err",
                    "ci_low",
                    "ci_high",
                    pl.Series("p_value", wald(extra["extra_days"], extra["std_err"])[2]),
                )
            )
        return parts

    def _metadata(self) -> dict[str, Any]:
        """Outcome, interaction, offset, covariance type, optimiser, alpha, reference levels."""
        return {
            "outcome": self.outcome,
            "interaction_with": self.interaction_with,
            "interaction_term": self.interaction_term,
            "offset": self.offset,
            "window_days": self.window_days,
            "cov_type": self.cov_type,
            "method": self.method,
            "log_likelihood": json_float(self.log_likelihood),
            "alpha": json_float(self.alpha_),
            "reference": dict(self.reference),
            "dropped_covariates": list(self.dropped_covariates),
        }


def _fmt(v: float) -> str:
    """`v` without a trailing ".0": 180.0 -> "180", 12.5 -> "12.5"."""
    return f"{v:g}"


def base_offset(offset: str | None, window_days: float | None) -> float:
    """Offset used for predictions: log(window_days) with an offset column, else 0."""
    if offset is None:
        if window_days is not None:
            raise ValueError("window_days applies only to a model with an offset")
        return 0.0
    if window_days is None or not window_days > 0:
        raise ValueError(f"a model with an offset needs window_days > 0, got {window_days}")
    return math.log(window_days)
