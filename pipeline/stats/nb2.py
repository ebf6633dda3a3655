"""Negative binomial (NB2) model of sick days after the index date (analysis-spec.md §6.4-6.5).

`fit_nb2` fits `after_days ~ treated + prior_days + treated:prior_days + covariates` by
maximum likelihood with statsmodels' discrete `NegativeBinomial(loglike_method="nb2")`:
log link, Var(y) = mu + alpha mu^2, alpha estimated jointly with beta (R's
`MASS::glm.nb` reports theta = 1/alpha). It builds the design matrix itself (the
categorical reference rule of `pipeline.regression`: the most frequent level, ties by
the smallest name), checks it before fitting, never raises on data problems, and
returns a frozen `NB2Result` whose `summary` is the tidy `models/*.parquet` frame of
design.md: log-scale terms, `IRR(term)`, `alpha` and `extra_days(prior_days=v)` rows.

Optimiser: Newton (analytic Hessian) from statsmodels' Poisson start; if that fails
the check below, BFGS and then Nelder-Mead (both on log alpha). A fit counts as
converged when the parameters are finite, alpha > 0, the negative Hessian is positive
definite and the Newton decrement s' (-H)^-1 s is below `DECREMENT_TOL` (the
log-likelihood is within ~DECREMENT_TOL / 2 of the local maximum). `method` records
the optimiser used. Newton fails when alpha is near 0 (it steps to alpha < 0).

Standard-error conventions (reconciled with R in `tests/test_nb.py`; N rows, K
coefficients, G clusters):

- No cluster: model-based, the inverse of the observed information of the joint
  (beta, alpha) log-likelihood (statsmodels' default; Stata `nbreg` OIM). R's
  `vcov(glm.nb)` is instead the inverse *expected* information (X'WX)^-1 with
  W = mu / (1 + alpha mu) and theta held fixed: a different matrix (the observed
  beta-block and the beta-alpha cross-derivatives involve y - mu; they agree only in
  expectation): SEs up to ~1 % apart on the pinned test data.
- Cluster: statsmodels `cov_type="cluster"` with `use_correction=True` (computed by
  its `sandwich_covariance.cov_cluster` after the fit, the same matrix):
  V = G/(G-1) * (N-1)/(N-K-1) * H^-1 (sum_g s_g s_g') H^-1 over the K + 1 parameters
  (beta, alpha), H the observed joint Hessian, s_g the cluster sums of the joint
  scores. statsmodels counts alpha as a parameter, hence N-K-1. R
  `sandwich::vcovCL(glm.nb fit, cluster = ~id, type = "HC1")` differs in two known
  ways, so not by a constant factor: its bread is the expected-information (X'WX)^-1
  with theta fixed (no alpha row/column, no alpha uncertainty in the beta block), and
  its HC1 factor is G/(G-1) * (N-1)/(N-K). The meat's beta block (scores
  x (y - mu) / (1 + alpha mu)) is the same in both. SEs up to ~4 % apart on the
  pinned test data.
- alpha: SE from the same joint covariance; its 95 % CI is exp(log alpha +- z SE /
  alpha) (Wald on the log scale, so it stays positive); no p-value (alpha = 0 is on
  the boundary).
- IRR(term) = exp(b), SE exp(b) SE(b), CI = exp of the log-scale Wald CI.
- All CIs and p-values are Wald with normal quantiles.
- Extra days (g-computation): for each v, mean over all model rows of
  mu_i(treated = 1, col = v) - mu_i(treated = 0, col = v), other covariates as
  observed. With an offset, every row is predicted for the full window (offset =
  log(window_days) instead of its own log(observed days)), so the unit is days per
  full window. Delta-method SE
  sqrt(g' V_beta g), g = mean_i [mu_i1 x_i1 - mu_i0 x_i0] (alpha does not enter the
  mean), with V_beta the beta block of the covariance above (cluster-robust when
  clustered).
- `lr_test`: likelihood ratio on the model-based log-likelihoods; it treats rows as
  independent and ignores clustering (use the cluster-robust Wald p-value of the
  interaction term for that).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import stats
from statsmodels.discrete.discrete_model import NegativeBinomial
from statsmodels.stats.sandwich_covariance import cov_cluster
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from pipeline.stats.regression import (
    SUMMARY_COLUMNS,
    _aliased,
    _as_binary,
    _build_design,
    _sqrt,
    _wald,
    coefficient_table,
)

METHODS = ("newton", "bfgs", "nm")  # tried in this order (module docstring)
MAX_ITER = {"newton": 100, "bfgs": 2_000, "nm": 20_000}
DECREMENT_TOL = 1e-5  # Newton decrement s'(-H)^-1 s accepted as converged, log-lik units
ALPHA_BOUNDARY = 1e-4  # alpha below this in a failed fit: no overdispersion (Poisson)
EXTRA_AT = (0.0, 180.0)  # prior days of the report's +20 / +40 claim (§6.1)
FIT_ERRORS = (np.linalg.LinAlgError, ValueError, OverflowError, ZeroDivisionError)


@dataclass(frozen=True, eq=False)
class NB2Result:
    """A fitted NB2 model; coefficients on the log-rate scale, extra days in days.

    Attributes:
        name: value of the `model` column of `summary`.
        outcome, treatment: the column names fitted.
        interaction_with: the numeric column that `extra_days` sets (the interacted
            column, or the first `numeric` column in a main-effects model); None when
            there is none.
        interaction_term: design term of treatment x `interaction_with` (None when
            absent or dropped).
        offset: column added to the linear predictor, log(observed days) (None without).
        window_days: days of the full window `extra_days` predicts for with an offset.
        extra_at: values of `interaction_with` for the `extra_days` rows of `summary`.
        cov_type: "model" or "cluster" (module docstring).
        terms: design columns: intercept, treatment, numeric, interaction, covariates.
        params: coefficients (NaN when not fitted); alpha_: NB2 dispersion, unitless.
        cov: joint covariance of (params, alpha_), alpha last.
        design: the fitted design matrix, one row per model row (for `extra_days`).
        log_likelihood: maximised log-likelihood (full, with the log y! constant).
        n: rows fitted; n_dropped: rows dropped (nulls/NaN/inf, negative outcome);
            n_clusters: distinct clusters (None without `cluster`).
        converged: see module docstring; False when not fitted.
        method: optimiser whose fit was kept ("newton", "bfgs", "nm"; None if none).
        warnings: pre-fit and fit warnings, with counts; write them to the model JSON.
        reference: reference level per categorical covariate.
        dropped_covariates: columns dropped for one level / zero variance.
    """

    name: str
    outcome: str
    treatment: str
    interaction_with: str | None
    interaction_term: str | None
    offset: str | None
    window_days: float | None
    extra_at: tuple[float, ...]
    cov_type: str
    terms: tuple[str, ...]
    params: np.ndarray
    alpha_: float
    cov: np.ndarray = field(repr=False)
    design: np.ndarray = field(repr=False)
    log_likelihood: float
    n: int
    n_dropped: int
    n_clusters: int | None
    converged: bool
    method: str | None
    warnings: tuple[str, ...]
    reference: Mapping[str, str]
    dropped_covariates: tuple[str, ...]

    @property
    def std_err(self) -> np.ndarray:
        """Standard errors of `params`, log-rate scale."""
        return _sqrt(np.diag(self.cov)[: len(self.terms)])

    @property
    def alpha_se(self) -> float:
        """Standard error of `alpha_` from the joint covariance, unitless."""
        return float(_sqrt(self.cov[-1, -1]))

    @property
    def alpha_ci(self) -> tuple[float, float]:
        """95 % CI of alpha: exp(log alpha +- z SE/alpha), unitless."""
        with np.errstate(divide="ignore", invalid="ignore"):
            lo, hi, _ = _wald(
                math.log(self.alpha_) if self.alpha_ > 0 else math.nan, self.alpha_se / self.alpha_
            )
        return (float(np.exp(lo)), float(np.exp(hi)))

    @property
    def coefficients(self) -> pl.DataFrame:
        """One row per design term: estimate, std_err, 95 % CI, p_value (log-rate scale)."""
        return coefficient_table(self.terms, self.params, self.std_err)

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
        window_days = self.window_days if window_days is None else window_days
        if self.interaction_with is None:
            raise ValueError("the model has no numeric column to set")
        base = _base_offset(self.offset, window_days)
        idx = {term: j for j, term in enumerate(self.terms)}
        col_j, inter_j = idx.get(self.interaction_with), idx.get(self.interaction_term or "")
        if not (self.n and np.isfinite(self.params).all() and col_j is not None):
            rows = [(v, *[math.nan] * 6) for v in at]
        else:
            # Columns set per arm: treatment, the column, the interaction (when present);
            # the rest of each row's linear predictor is kept as observed.
            set_j = [1, col_j, *([inter_j] if inter_j is not None else [])]
            b_set = self.params[set_j]
            rest = self.design @ self.params - self.design[:, set_j] @ b_set + base
            k = len(self.terms)
            rows = []
            for v in at:
                mean_mu, grad = [], np.zeros(k)
                for arm, sign in ((1.0, 1.0), (0.0, -1.0)):
                    values = np.array([arm, v, arm * v][: len(set_j)])
                    mu = np.exp(rest + values @ b_set)
                    # d mean(mu) / d beta = mean(mu x) with x's set columns replaced
                    g = mu @ self.design / self.n
                    g[set_j] = mu.mean() * values
                    grad += sign * g
                    mean_mu.append(float(mu.mean()))
                est = mean_mu[0] - mean_mu[1]
                se = float(_sqrt(grad @ self.cov[:k, :k] @ grad))
                lo, hi, _ = _wald(est, se)
                rows.append((v, est, se, float(lo), float(hi), *mean_mu))
        names = [self.interaction_with, "extra_days", "std_err", "ci_low", "ci_high"]
        names += ["mean_treated", "mean_control"]
        return pl.DataFrame(
            rows, schema=dict.fromkeys(names, pl.Float64), orient="row"
        ).with_columns(pl.lit(self.n, pl.Int64).alias("n"))

    @property
    def summary(self) -> pl.DataFrame:
        """Tidy frame `model, term, estimate, std_err, ci_low, ci_high, p_value, n`.

        Rows: all design terms (log-rate scale), `IRR(term)` for each, `alpha` (p-value
        NaN) and `extra_days(<col>=<v>)` for each value of `extra_at` (days, Wald p).
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
        parts = [self.coefficients, self.irr, pl.DataFrame([alpha], schema=self.irr.schema)]
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
                    pl.Series("p_value", _wald(extra["extra_days"], extra["std_err"])[2]),
                )
            )
        return pl.concat(parts).select(
            pl.lit(self.name, pl.String).alias("model"),
            *SUMMARY_COLUMNS[1:7],
            pl.lit(self.n, pl.Int64).alias("n"),
        )

    def metadata(self) -> dict[str, Any]:
        """JSON-ready fit facts: counts, clusters, convergence, optimiser, alpha, warnings."""
        return {
            "model": self.name,
            "outcome": self.outcome,
            "treatment": self.treatment,
            "interaction_with": self.interaction_with,
            "interaction_term": self.interaction_term,
            "offset": self.offset,
            "window_days": self.window_days,
            "cov_type": self.cov_type,
            "n": self.n,
            "n_dropped": self.n_dropped,
            "n_clusters": self.n_clusters,
            "converged": self.converged,
            "method": self.method,
            "log_likelihood": _json_float(self.log_likelihood),
            "alpha": _json_float(self.alpha_),
            "warnings": list(self.warnings),
            "reference": dict(self.reference),
            "dropped_covariates": list(self.dropped_covariates),
        }


@dataclass(frozen=True)
class LRTest:
    """Likelihood-ratio test of a restricted NB2 model against a fuller one (chi-square).

    Attributes:
        statistic: 2 (llf_full - llf_restricted); df: extra parameters in the full model;
        p_value: chi-square(df) upper tail; n: rows of both fits; note: the caveat that
        the test is model-based and ignores clustering; warnings: why it is NaN, if so.
    """

    statistic: float
    df: int
    p_value: float
    log_likelihood_restricted: float
    log_likelihood_full: float
    n: int
    note: str
    warnings: tuple[str, ...]


def _fmt(v: float) -> str:
    """`v` without a trailing ".0": 180.0 -> "180", 12.5 -> "12.5"."""
    return f"{v:g}"


def _json_float(v: float) -> float | None:
    """`v`, or None for NaN (JSON has no NaN)."""
    return None if math.isnan(v) else float(v)


def _base_offset(offset: str | None, window_days: float | None) -> float:
    """Offset used for predictions: log(window_days) with an offset column, else 0."""
    if offset is None:
        if window_days is not None:
            raise ValueError("window_days applies only to a model with an offset")
        return 0.0
    if window_days is None or not window_days > 0:
        raise ValueError(f"a model with an offset needs window_days > 0, got {window_days}")
    return math.log(window_days)


def _check_optimum(model: NegativeBinomial, params: np.ndarray) -> str | None:
    """Why `params` is not an accepted maximum (module docstring), or None if it is."""
    if not np.isfinite(params).all():
        return "non-finite estimates"
    if params[-1] <= 0:
        return f"alpha = {params[-1]:.3g} <= 0"
    with np.errstate(all="ignore"):
        neg_hessian = -model.hessian(params)
        score = model.score(params)
    try:
        chol = np.linalg.cholesky(neg_hessian)
    except np.linalg.LinAlgError:
        return "Hessian not negative definite"
    step = np.linalg.solve(chol, score)
    decrement = float(step @ step)
    if not decrement < DECREMENT_TOL:
        return f"Newton decrement {decrement:.3g} >= {DECREMENT_TOL:g}"
    return None


@dataclass(frozen=True)
class _Fit:
    """One optimiser's outcome."""

    method: str
    params: np.ndarray
    cov: np.ndarray
    llf: float
    failure: str | None
    notes: tuple[str, ...]


def _fit_once(
    y: np.ndarray, x: np.ndarray, off: np.ndarray | None, groups: np.ndarray | None, method: str
) -> _Fit:
    """statsmodels NB2 fit with one optimiser; covariance per the module docstring."""
    k = x.shape[1] + 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = NegativeBinomial(y, x, loglike_method="nb2", offset=off)
            res = model.fit(method=method, maxiter=MAX_ITER[method], disp=False)
            params = np.asarray(res.params, dtype=float)
            llf = float(res.llf)
            failure = _check_optimum(model, params)
        except FIT_ERRORS as err:
            params, llf = np.full(k, np.nan), math.nan
            failure = f"statsmodels failed: {type(err).__name__}: {err}"
        cov = np.full((k, k), np.nan)
        if np.isfinite(params).all():
            try:  # singular at alpha ~ 0: keep the estimates, NaN covariance
                # = fit(cov_type="cluster", cov_kwds={"groups": groups,
                # "use_correction": True}), computed after the fit so that a failing
                # covariance does not lose the estimates.
                cov = np.asarray(
                    res.cov_params()
                    if groups is None
                    else cov_cluster(res, groups, use_correction=True),
                    dtype=float,
                )
            except FIT_ERRORS as err:
                failure = failure or f"no covariance: {type(err).__name__}: {err}"
    notes = dict.fromkeys(
        f"statsmodels {w.category.__name__}: {w.message}"
        for w in caught
        # statsmodels' own flag (BFGS gradient norm) is superseded by _check_optimum
        if not (failure is None and issubclass(w.category, ConvergenceWarning))
    )
    return _Fit(method, params, cov, llf, failure, tuple(notes))


def _fit(
    y: np.ndarray, x: np.ndarray, off: np.ndarray | None, groups: np.ndarray | None
) -> tuple[_Fit, bool, list[str]]:
    """The first accepted fit over `METHODS` (else the best finite one), converged, notes."""
    tried: list[_Fit] = []
    for method in METHODS:
        fit = _fit_once(y, x, off, groups, method)
        if fit.failure is None:
            notes = [f"optimiser {f.method!r} failed ({f.failure}); used {method!r}" for f in tried]
            return fit, True, [*notes, *fit.notes]
        tried.append(fit)
    finite = [f for f in tried if np.isfinite(f.params).all() and np.isfinite(f.llf)]
    best = max(finite, key=lambda f: f.llf) if finite else tried[0]
    why = "; ".join(f"{f.method}: {f.failure}" for f in tried)
    notes = [f"did not converge ({why}); estimates from {best.method!r}", *best.notes]
    if np.isfinite(best.params[-1]) and best.params[-1] < ALPHA_BOUNDARY:
        notes.append(
            f"alpha at the boundary ({best.params[-1]:.3g}): no overdispersion; "
            "NB2 reduces to Poisson"
        )
    return best, False, notes


def _zero_groups(
    y: np.ndarray, t: np.ndarray, treatment: str, levels_of: Mapping[str, np.ndarray]
) -> list[str]:
    """Warnings for a treatment arm or covariate level whose outcomes are all 0."""
    groups = [(f"{treatment}={arm}", t == arm) for arm in (1, 0)]
    groups += [
        (f"{col}={level}", values == level)
        for col, values in levels_of.items()
        for level in np.unique(values)
    ]
    return [
        f"all {int(mask.sum())} rows with {label} have outcome 0; its log-rate runs to -inf "
        "(estimates and SEs involving it are unreliable)"
        for label, mask in groups
        if mask.any() and not y[mask].any()
    ]


def _missing(frame: pl.DataFrame, column: str) -> pl.Expr:
    """Null, or NaN/inf in a float column."""
    expr = pl.col(column).is_null()
    return expr | ~pl.col(column).is_finite() if frame.schema[column].is_float() else expr


def _usable_rows(
    frame: pl.DataFrame, used: Sequence[str], outcome: str, notes: list[str]
) -> pl.DataFrame:
    """`frame` minus rows with a null/NaN/inf in `used` or a negative outcome.

    Appends one warning with counts per reason to `notes`.
    """
    is_missing = {c: _missing(frame, c) for c in used}
    rows = frame.filter(~pl.any_horizontal(is_missing.values()))
    if rows.height < frame.height:
        per_col = frame.select(e.sum().alias(c) for c, e in is_missing.items()).row(0, named=True)
        detail = ", ".join(f"{c}: {k}" for c, k in per_col.items() if k)
        notes.append(
            f"{frame.height - rows.height} of {frame.height} rows dropped "
            f"for nulls/NaN/inf ({detail})"
        )
    negative = rows.select((pl.col(outcome) < 0).sum()).item()
    if negative:
        notes.append(f"{negative} rows dropped: outcome {outcome!r} < 0")
        rows = rows.filter(pl.col(outcome) >= 0)
    return rows


def _nb2_design(
    rows: pl.DataFrame,
    t: np.ndarray,
    treatment: str,
    numeric: Sequence[str],
    interaction_with: str | None,
    covariates: Sequence[str],
    wanted: Mapping[str, str],
    notes: list[str],
) -> tuple[
    np.ndarray, list[str], str | None, dict[str, str], Mapping[str, np.ndarray], tuple[str, ...]
]:
    """Design matrix, terms, interaction term, reference levels, categorical levels, dropped.

    Columns: intercept, treatment, `numeric` (zero-variance ones dropped with a warning),
    treatment x `interaction_with` (if kept), covariate terms (`pipeline.regression`'s
    rule: dummies per non-reference level, numeric as is, one-level ones dropped).
    """
    cols, terms, ref, levels_of, dropped = _build_design(
        rows, t, covariates if rows.height else [], wanted, notes
    )
    terms[1] = treatment
    main_cols, main_terms = [], []
    for col in numeric:
        values = rows[col].cast(pl.Float64).to_numpy()
        if rows.height and np.ptp(values) == 0:
            notes.append(f"numeric column {col!r} dropped: zero variance (all {values[0]:g})")
            dropped = (*dropped, col)
            continue
        main_cols.append(values)
        main_terms.append(col)
    inter_term = None
    if interaction_with in main_terms:
        inter_term = f"{treatment}:{interaction_with}"
        main_cols.append(t * main_cols[main_terms.index(interaction_with)])
        main_terms.append(inter_term)
    x = np.column_stack([*cols[:2], *main_cols, *cols[2:]])
    return x, [*terms[:2], *main_terms, *terms[2:]], inter_term, ref, levels_of, dropped


def fit_nb2(
    frame: pl.DataFrame,
    outcome: str,
    treatment: str,
    covariates: Sequence[str],
    interaction_with: str | None = "prior_days",
    numeric: Sequence[str] = ("prior_days",),
    cluster: str | None = None,
    offset: str | None = None,
    reference: Mapping[str, str] | None = None,
    name: str | None = None,
    *,
    window_days: float | None = None,
    extra_at: Sequence[float] = EXTRA_AT,
) -> NB2Result:
    """Fitted NB2 model of the count `outcome` (days); extra days in days (module docstring).

    Args:
        frame: one row per person, or per matched-set member / spell with `cluster`.
        outcome: count column (days), >= 0; rows with a negative value are dropped.
        treatment: bool or 0/1 column; its term is named after the column.
        covariates: string/categorical columns (one dummy `col[level]` per non-reference
            level) and numeric/bool columns (entered as is).
        interaction_with: numeric column interacted with the treatment (term
            `treated:prior_days`); None for the main-effects model. It is added to
            `numeric` if absent, so its main effect is always in the model.
        numeric: numeric columns entered as is (main effects), before the covariates.
        cluster: column of cluster ids (person `lopnr`) for cluster-robust SEs.
        offset: column added to the linear predictor as is (statsmodels' and R's
            `offset`): log of the observed days of the outcome window, for rows whose
            window is cut short (log(window_days) for complete rows).
        reference: reference level per categorical covariate; default (or when the
            given level is absent, with a warning) the most frequent level, ties broken
            by the smallest name in code-point order (as `pipeline.regression`).
        name: value of the `model` column of `summary`; default f"nb2_{outcome}".
        window_days: full window length (days), required with `offset`: `extra_days`
            predicts every row for the full window.
        extra_at: values of the interaction column for the `extra_days` summary rows.

    Returns:
        An `NB2Result`. Data problems never raise: null rows are dropped and counted,
        one-level/zero-variance columns and aliased terms are dropped with a warning,
        and a model that cannot be fitted (no rows, all-zero outcome, constant or
        aliased treatment, one cluster, too few rows) has NaN estimates and says why.

    Raises:
        ValueError: missing column, non-binary treatment, or window_days inconsistent
            with `offset`. TypeError: non-numeric outcome or `numeric` column.
    """
    _base_offset(offset, window_days)
    numeric = list(dict.fromkeys([*numeric, *([interaction_with] if interaction_with else [])]))
    covariates = [c for c in covariates if c not in (treatment, *numeric)]
    extras = [c for c in (cluster, offset) if c]
    used = list(dict.fromkeys([outcome, treatment, *numeric, *covariates, *extras]))
    missing = [c for c in used if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in frame: {missing}")
    for col in (outcome, *numeric):
        if not (frame.schema[col].is_numeric() or frame.schema[col] == pl.Boolean):
            raise TypeError(f"column {col!r} must be numeric, got {frame.schema[col]}")
    notes: list[str] = []
    rows = _usable_rows(frame, used, outcome, notes)
    n_dropped = frame.height - rows.height
    y = rows[outcome].cast(pl.Float64).to_numpy()
    if (y != np.round(y)).any():
        notes.append(f"outcome {outcome!r} has {int((y != np.round(y)).sum())} non-integer values")
    off = None
    if offset:
        off = rows[offset].cast(pl.Float64).to_numpy()
        over = int((off > math.log(window_days) + 1e-9).sum())
        if over:
            notes.append(
                f"{over} rows have {offset!r} > log(window_days) = log({window_days:g}): "
                "is the offset on the log scale?"
            )
    t = _as_binary(rows[treatment], "treatment")
    x, terms, inter_term, ref, levels_of, dropped = _nb2_design(
        rows, t, treatment, numeric, interaction_with, covariates, reference or {}, notes
    )
    groups, n_clusters = None, None
    if cluster is not None:
        groups = np.unique(rows[cluster].to_numpy(), return_inverse=True)[1]
        n_clusters = int(groups.max()) + 1 if rows.height else 0
    common: dict[str, Any] = {
        "name": name or f"nb2_{outcome}",
        "outcome": outcome,
        "treatment": treatment,
        "interaction_with": interaction_with or (numeric[0] if numeric else None),
        "offset": offset,
        "window_days": window_days,
        "extra_at": tuple(float(v) for v in extra_at),
        "cov_type": "cluster" if cluster else "model",
        "n": rows.height,
        "n_dropped": n_dropped,
        "n_clusters": n_clusters,
        "reference": ref,
        "dropped_covariates": dropped,
    }

    def unfitted(why: str) -> NB2Result:
        k = len(terms)
        return NB2Result(
            **common,
            interaction_term=inter_term,
            terms=tuple(terms),
            params=np.full(k, np.nan),
            alpha_=math.nan,
            cov=np.full((k + 1, k + 1), np.nan),
            design=x,
            log_likelihood=math.nan,
            converged=False,
            method=None,
            warnings=(*notes, f"not fitted: {why}"),
        )

    if rows.height == 0:
        return unfitted("no rows left")
    if not y.any():
        return unfitted(f"outcome {outcome!r} is 0 in all {rows.height} rows")
    if np.ptp(t) == 0:
        return unfitted(f"treatment {treatment!r} is constant ({t[0]:g} in all {rows.height} rows)")
    if n_clusters is not None and n_clusters < 2:
        return unfitted("fewer than 2 clusters")
    aliased = _aliased(x)
    if 1 in aliased:
        return unfitted(f"treatment {treatment!r} is collinear with the intercept/covariates")
    if aliased:
        notes.append(f"aliased terms dropped: {[terms[j] for j in aliased]}")
        if inter_term is not None and terms.index(inter_term) in aliased:
            inter_term = None
        terms = [term for j, term in enumerate(terms) if j not in aliased]
        x = np.delete(x, aliased, axis=1)
    if rows.height <= x.shape[1] + 1:
        return unfitted(f"{rows.height} rows for {x.shape[1] + 1} parameters")
    notes += _zero_groups(y, t, treatment, levels_of)
    fit, converged, fit_notes = _fit(y, x, off, groups)
    notes += fit_notes
    if not np.isfinite(fit.params).all():
        return unfitted("no optimiser gave finite estimates")
    return NB2Result(
        **common,
        interaction_term=inter_term,
        terms=tuple(terms),
        params=fit.params[:-1],
        alpha_=float(fit.params[-1]),
        cov=fit.cov,
        design=x,
        log_likelihood=fit.llf,
        converged=converged,
        method=fit.method,
        warnings=tuple(notes),
    )


def lr_test(restricted: NB2Result, full: NB2Result) -> LRTest:
    """Likelihood-ratio test of `restricted` nested in `full` (same rows); chi-square p.

    Model-based: it assumes independent rows and ignores clustering (module docstring).
    NaN statistic and p, with a warning, when either model did not converge.

    Raises:
        ValueError: the models are not nested on the same outcome and rows.
    """
    if (restricted.outcome, restricted.n) != (full.outcome, full.n) or not set(
        restricted.terms
    ) <= set(full.terms):
        raise ValueError("lr_test needs nested models of the same outcome on the same rows")
    df = len(full.terms) - len(restricted.terms)
    notes = [
        f"{label} model did not converge"
        for label, res in (("restricted", restricted), ("full", full))
        if not res.converged
    ]
    stat = math.nan if notes else 2 * (full.log_likelihood - restricted.log_likelihood)
    return LRTest(
        statistic=stat,
        df=df,
        p_value=float(stats.chi2.sf(max(stat, 0.0), df)) if not notes and df else math.nan,
        log_likelihood_restricted=restricted.log_likelihood,
        log_likelihood_full=full.log_likelihood,
        n=full.n,
        note="model-based likelihood ratio; ignores clustering of rows within persons",
        warnings=tuple(notes),
    )


def lr_test_interaction(
    frame: pl.DataFrame,
    outcome: str,
    treatment: str,
    covariates: Sequence[str],
    interaction_with: str = "prior_days",
    numeric: Sequence[str] = ("prior_days",),
    cluster: str | None = None,
    offset: str | None = None,
    reference: Mapping[str, str] | None = None,
    *,
    window_days: float | None = None,
) -> LRTest:
    """LR test of the treatment x `interaction_with` term: main-effects vs interaction fit.

    Both models are fitted by `fit_nb2` with the same arguments (so on the same rows;
    `cluster` only changes which rows have a null id). See `lr_test`.
    """
    args: dict[str, Any] = {
        "frame": frame,
        "outcome": outcome,
        "treatment": treatment,
        "covariates": covariates,
        "numeric": [*numeric, *([] if interaction_with in numeric else [interaction_with])],
        "cluster": cluster,
        "offset": offset,
        "reference": reference,
        "window_days": window_days,
    }
    main = fit_nb2(**args, interaction_with=None)
    full = fit_nb2(**args, interaction_with=interaction_with)
    return lr_test(main, full)
