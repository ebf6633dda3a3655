"""Negative binomial (NB2) model of sick days after the index date (analysis-spec.md §6.4-6.5).

`fit_nb2` fits `after_days ~ treated + prior_days + treated:prior_days + covariates` by
maximum likelihood (the NB2 likelihood of statsmodels' discrete
`NegativeBinomial(loglike_method="nb2")`): log link, Var(y) = mu + alpha mu^2, alpha
estimated jointly with beta (R's `MASS::glm.nb` reports theta = 1/alpha). It builds
the design matrix itself (the categorical reference rule of `pipeline.stats.design`:
the most frequent level, ties by the smallest name), checks it before fitting, never
raises on data problems, and returns a frozen `NB2Result` (`pipeline.stats.nb2_result`)
whose `summary` is the tidy `models/*.parquet` frame of design.md: log-scale terms,
`IRR(term)`, `alpha` and `extra_days(prior_days=v)` rows.

Optimiser (`pipeline.stats._nb2_fit`): our Newton on (beta, log alpha) with the
analytic score and Hessian and step halving, from a Poisson IRLS start (2 steps) and a
moment estimate of alpha; if that is not an accepted maximum, statsmodels' BFGS and
then Nelder-Mead. `method` records the optimiser used. ~2 s for 220 000 rows and 31
terms with two-way clustering, against ~5 s for R's `MASS::glm.nb` alone
(benchmarks/nb.py, docs/performance.md).

Standard-error conventions (reconciled with R in `tests/test_nb.py`; N rows, K
coefficients, G clusters):

- No cluster: model-based, the inverse of the observed information of the joint
  (beta, alpha) log-likelihood (statsmodels' default; Stata `nbreg` OIM). R's
  `vcov(glm.nb)` is instead the inverse *expected* information (X'WX)^-1 with
  W = mu / (1 + alpha mu) and theta held fixed: a different matrix (the observed
  beta-block and the beta-alpha cross-derivatives involve y - mu; they agree only in
  expectation): SEs up to ~1 % apart on the pinned test data.
- Cluster (one column): statsmodels `cov_type="cluster"` with `use_correction=True`
  (= its `sandwich_covariance.cov_cluster`; computed here from the analytic scores):
  V = G/(G-1) * (N-1)/(N-K-1) * H^-1 (sum_g s_g s_g') H^-1 over the K + 1 parameters
  (beta, alpha), H the observed joint Hessian, s_g the cluster sums of the joint
  scores. statsmodels counts alpha as a parameter, hence N-K-1.
- Two-way (a pair of columns a, b; e.g. matched set and person: controls recur across
  sets, and a set's members share its index day): Cameron, Gelbach & Miller (2011),
  V = V_a + V_b - V_ab, each with its own G/(G-1) and the one (N-1)/(N-K-1), ab = the
  intersection clusters (= statsmodels `cov_cluster_2groups`; = R `vcovCL(cluster =
  ~ a + b, multi0 = FALSE, type = "HC1")` up to the bread and K as below).
  `n_clusters` is then the smaller of G_a, G_b; `cov_type` "cluster_two_way". V can in
  principle fail to be positive semi-definite (then a NaN SE; not seen in practice). R
  `sandwich::vcovCL(glm.nb fit, cluster = ~id, type = "HC1")` differs in two known
  ways, so not by a constant factor: its bread is the expected-information (X'WX)^-1
  with theta fixed (glm.nb's vcovCL treats theta as known: no alpha row/column, no
  alpha uncertainty in the beta block; ours propagates it through the joint bread), and
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from pipeline.stats._nb2_fit import best_fit
from pipeline.stats.base import as_binary, drop_missing, drop_negative, require_columns
from pipeline.stats.design import aliased, cluster_codes, outcome_groups, treatment_design
from pipeline.stats.nb2_result import NB2Result, base_offset

EXTRA_AT = (0.0, 180.0)  # prior days of the report's +20 / +40 claim (§6.1)


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


def _zero_groups(
    y: np.ndarray, t: np.ndarray, treatment: str, levels_of: Mapping[str, np.ndarray]
) -> list[str]:
    """Warnings for a treatment arm or covariate level whose outcomes are all 0."""
    return [
        f"all {int(mask.sum())} rows with {label} have outcome 0; its log-rate runs to -inf "
        "(estimates and SEs involving it are unreliable)"
        for label, mask in outcome_groups(t, treatment, levels_of)
        if mask.any() and not y[mask].any()
    ]


def fit_nb2(
    frame: pl.DataFrame,
    outcome: str,
    treatment: str,
    covariates: Sequence[str],
    interaction_with: str | None = "prior_days",
    numeric: Sequence[str] = ("prior_days",),
    cluster: str | Sequence[str] | None = None,
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
        cluster: column of cluster ids (person `lopnr` or matched set `set_id`) for
            cluster-robust SEs, or a pair of columns for two-way clustering
            (Cameron-Gelbach-Miller: V_a + V_b - V_ab; module docstring).
        offset: column added to the linear predictor as is (statsmodels' and R's
            `offset`): log of the observed days of the outcome window, for rows whose
            window is cut short (log(window_days) for complete rows).
        reference: reference level per categorical covariate; default (or when the
            given level is absent, with a warning) the most frequent level, ties broken
            by the smallest name in code-point order (as `pipeline.stats.design`).
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
    base_offset(offset, window_days)
    numeric = list(dict.fromkeys([*numeric, *([interaction_with] if interaction_with else [])]))
    covariates = [c for c in covariates if c not in (treatment, *numeric)]
    clusters = [] if cluster is None else [cluster] if isinstance(cluster, str) else list(cluster)
    if len(clusters) > 2 or len(set(clusters)) < len(clusters):
        raise ValueError(f"cluster must be one column or two distinct ones, got {cluster!r}")
    extras = [c for c in (*clusters, offset) if c]
    used = list(dict.fromkeys([outcome, treatment, *numeric, *covariates, *extras]))
    require_columns(frame, used)
    for col in (outcome, *numeric):
        if not (frame.schema[col].is_numeric() or frame.schema[col] == pl.Boolean):
            raise TypeError(f"column {col!r} must be numeric, got {frame.schema[col]}")
    rows, notes = drop_missing(frame, used, inf=True)
    rows, negative = drop_negative(rows, outcome, f"outcome {outcome!r} < 0")
    notes += negative
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
    t = as_binary(rows[treatment], "treatment")
    x, terms, inter_term, ref, levels_of, dropped = treatment_design(
        rows, t, treatment, numeric, interaction_with, covariates, reference or {}, notes
    )
    groups, n_clusters = cluster_codes(rows, cluster)
    common: dict[str, Any] = {
        "name": name or f"nb2_{outcome}",
        "outcome": outcome,
        "treatment": treatment,
        "interaction_with": interaction_with or (numeric[0] if numeric else None),
        "offset": offset,
        "window_days": window_days,
        "extra_at": tuple(float(v) for v in extra_at),
        "cov_type": {0: "model", 1: "cluster", 2: "cluster_two_way"}[len(clusters)],
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
            params_=np.full(k, np.nan),
            alpha_=math.nan,
            cov_=np.full((k + 1, k + 1), np.nan),
            design=x,
            log_likelihood=math.nan,
            converged=False,
            method=None,
            warnings_=(*notes, f"not fitted: {why}"),
        )

    if rows.height == 0:
        return unfitted("no rows left")
    if not y.any():
        return unfitted(f"outcome {outcome!r} is 0 in all {rows.height} rows")
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
    if rows.height <= x.shape[1] + 1:
        return unfitted(f"{rows.height} rows for {x.shape[1] + 1} parameters")
    notes += _zero_groups(y, t, treatment, levels_of)
    fit, converged, fit_notes = best_fit(y, x, off, groups)
    notes += fit_notes
    if not np.isfinite(fit.params).all():
        return unfitted("no optimiser gave finite estimates")
    return NB2Result(
        **common,
        interaction_term=inter_term,
        terms=tuple(terms),
        params_=fit.params[:-1],
        alpha_=float(fit.params[-1]),
        cov_=fit.cov,
        design=x,
        log_likelihood=fit.llf,
        converged=converged,
        method=fit.method,
        warnings_=tuple(notes),
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
    cluster: str | Sequence[str] | None = None,
    offset: str | None = None,
    reference: Mapping[str, str] | None = None,
    *,
    window_days: float | None = None,
    full: NB2Result | None = None,
) -> LRTest:
    """LR test of the treatment x `interaction_with` term: main-effects vs interaction fit.

    Both models are fitted by `fit_nb2` with the same arguments (so on the same rows;
    `cluster` only changes which rows have a null id). See `lr_test`. `full`: the
    interaction fit already made with these arguments, reused instead of refitted
    (its log-likelihood does not depend on `cluster`).

    Raises:
        ValueError: `full` is not an interaction fit of `outcome` on the same rows.
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
    if full is None:
        full = fit_nb2(**args, interaction_with=interaction_with)
    elif full.interaction_with != interaction_with or set(full.terms) != {
        *main.terms,
        full.interaction_term,
    }:
        raise ValueError("`full` is not the interaction fit of these arguments")
    return lr_test(main, full)
