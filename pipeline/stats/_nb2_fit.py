"""The NB2 optimiser and covariances of `pipeline.stats.nb2`.

Optimiser: our own Newton-Raphson on the joint (beta, log alpha) log-likelihood with
the analytic score and Hessian and step halving, from a Poisson IRLS start and a
moment estimate of alpha (`newton`); if that is not an accepted maximum, statsmodels'
discrete `NegativeBinomial(loglike_method="nb2")` with its Newton (it converges where
ours meets an indefinite Hessian on the way, e.g. the report design's spline fit),
then BFGS and then Nelder-Mead, from its Poisson start. Every optimiser sees the
design's columns scaled to a largest absolute value of 1 (`best_fit`).
A fit counts as converged when the parameters are finite, alpha >
0, the negative Hessian in (beta, alpha) is positive definite and the Newton decrement
s' (-H)^-1 s is below `DECREMENT_TOL` (the log-likelihood is within ~DECREMENT_TOL / 2
of the local maximum). Newton on log alpha fails when alpha is near 0 (no
overdispersion: the maximum is on the boundary).

Covariances (whatever the optimiser) from the analytic observed information of the
joint (beta, alpha) log-likelihood; clustered: G/(G-1) (N-1)/(N-K-1) H^-1 M H^-1 per
clustering (K + 1 parameters counted, statsmodels' `use_correction`), two-way
V_a + V_b - V_ab (Cameron, Gelbach & Miller 2011; ab = the intersection clusters);
see `pipeline.stats.nb2`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.special import digamma, gammaln, polygamma
from statsmodels.discrete.discrete_model import NegativeBinomial
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from pipeline.stats.design import cluster_meat

METHODS = ("newton", "statsmodels_newton", "bfgs", "nm")  # tried in this order (module docstring)
MAX_ITER = {"newton": 100, "statsmodels_newton": 100, "bfgs": 2_000, "nm": 20_000}
DECREMENT_TOL = 1e-5  # Newton decrement s'(-H)^-1 s accepted as converged, log-lik units
NEWTON_TOL = 1e-14  # our Newton stops below this decrement (float noise of the log-lik)
POISSON_ITER = 2  # IRLS steps of the Poisson start (a start, not a fit; more did not help)
ALPHA_BOUNDARY = 1e-4  # alpha below this in a failed fit: no overdispersion (Poisson)
LOG_ALPHA_MIN = math.log(1e-8)  # Newton on log alpha gives up below this (boundary)
MAX_ETA = 700.0  # exp() overflow guard on the linear predictor
FIT_ERRORS = (np.linalg.LinAlgError, ValueError, OverflowError, ZeroDivisionError)


@dataclass(frozen=True)
class Parts:
    """Joint NB2 log-likelihood (full constant), score and Hessian in (beta, alpha).

    `score_beta`, `score_alpha`: per-row score factors; the row scores are
    x * score_beta (beta) and score_alpha (alpha).
    """

    llf: float
    score: np.ndarray
    hessian: np.ndarray
    score_beta: np.ndarray
    score_alpha: np.ndarray


def _mu(x: np.ndarray, off: np.ndarray | None, beta: np.ndarray) -> np.ndarray:
    """Mean per row, exp(x b + offset), same unit as y."""
    eta = x @ beta
    if off is not None:
        eta = eta + off
    return np.exp(np.minimum(eta, MAX_ETA))


class Counts:
    """The outcome y (counts, >= 0) and its distinct values, for per-value special functions."""

    def __init__(self, y: np.ndarray) -> None:
        self.y = y
        values, inverse = np.unique(y, return_inverse=True)
        self.values, self.inverse = values, inverse.ravel()

    def by_value(self, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """fn(y) per row, evaluated once per distinct y (a few hundred values of days)."""
        return fn(self.values)[self.inverse]


def loglike(counts: Counts, mu: np.ndarray, a: float) -> float:
    """NB2 log-likelihood sum with the log y! constant (R's logLik(glm.nb)), log units."""
    r, y = 1 / a, counts.y
    log_amu1 = np.log1p(a * mu)
    gamma_terms = counts.by_value(lambda v: gammaln(v + r) - gammaln(r) - gammaln(v + 1))
    return float(np.sum(gamma_terms - r * log_amu1 + y * (np.log(a * mu) - log_amu1)))


def parts(counts: Counts, x: np.ndarray, off: np.ndarray | None, params: np.ndarray) -> Parts:
    """Log-likelihood, score, Hessian and per-row score factors at (beta, alpha) = `params`."""
    beta, a, y = params[:-1], float(params[-1]), counts.y
    mu = _mu(x, off, beta)
    r = 1 / a
    amu1 = 1 + a * mu
    log_amu1 = np.log1p(a * mu)
    dig = counts.by_value(lambda v: digamma(v + r) - digamma(r))
    trig = counts.by_value(lambda v: polygamma(1, v + r) - polygamma(1, r))
    s_b = (y - mu) / amu1
    s_a = (y - mu) / (a * amu1) + log_amu1 / a**2 - dig / a**2
    w_bb = mu * (1 + a * y) / amu1**2
    h_bb = -(x.T @ (x * w_bb[:, None]))
    h_ba = -(x.T @ (mu * (y - mu) / amu1**2))
    h_aa = np.sum(
        -(y - mu) * (1 + 2 * a * mu) / (a**2 * amu1**2)
        + mu / (a**2 * amu1)
        - 2 * log_amu1 / a**3
        + 2 * dig / a**3
        + trig / a**4
    )
    k = x.shape[1]
    hess = np.empty((k + 1, k + 1))
    hess[:k, :k], hess[:k, k], hess[k, :k], hess[k, k] = h_bb, h_ba, h_ba, h_aa
    score = np.append(x.T @ s_b, s_a.sum())
    return Parts(loglike(counts, mu, a), score, hess, s_b, s_a)


def check_optimum(p: Parts, params: np.ndarray) -> str | None:
    """Why `params` is not an accepted maximum (module docstring), or None if it is."""
    if not np.isfinite(params).all():
        return "non-finite estimates"
    if params[-1] <= 0:
        return f"alpha = {params[-1]:.3g} <= 0"
    try:
        chol = np.linalg.cholesky(-p.hessian)
    except np.linalg.LinAlgError:
        return "Hessian not negative definite"
    step = np.linalg.solve(chol, p.score)
    decrement = float(step @ step)
    if not decrement < DECREMENT_TOL:
        return f"Newton decrement {decrement:.3g} >= {DECREMENT_TOL:g}"
    return None


def sandwich(
    bread: np.ndarray, scores: np.ndarray, groups: Sequence[np.ndarray], n_beta: int
) -> np.ndarray:
    """Cluster-robust covariance (module docstring): one-way, or two-way with the intersection.

    `scores`: one row per model row, one column per parameter. `groups`: one code
    array (one-way) or two (two-way), clusters coded 0..G-1.
    """
    n = len(scores)
    return (n - 1) / (n - n_beta - 1) * bread @ cluster_meat(scores, groups) @ bread


@dataclass(frozen=True)
class Fit:
    """One optimiser's outcome."""

    method: str
    params: np.ndarray
    cov: np.ndarray
    llf: float
    failure: str | None
    notes: tuple[str, ...]


def poisson_start(y: np.ndarray, x: np.ndarray, off: np.ndarray | None) -> np.ndarray:
    """Poisson IRLS estimates after `POISSON_ITER` steps (log-rate scale), a Newton start."""
    eta = np.log(y + 0.5) - (0 if off is None else off)
    beta = np.linalg.solve(x.T @ x, x.T @ eta)
    for _ in range(POISSON_ITER):
        mu = _mu(x, off, beta)
        # Newton step of the Poisson log-likelihood: (X' mu X)^-1 X'(y - mu)
        beta = beta + np.linalg.solve(x.T @ (x * mu[:, None]), x.T @ (y - mu))
    return beta


def _ascent_step(neg_hess: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, bool]:
    """The Newton step solve(-H, s) when -H is positive definite; else the step of
    -H + lambda I with lambda doubled until it is (Levenberg-Marquardt), an ascent
    direction. Returns the step and whether -H itself was positive definite."""
    eye = np.eye(len(score))
    lam = 0.0
    floor = 1e-8 * max(float(np.abs(np.diag(neg_hess)).max()), 1.0)
    for _ in range(80):
        try:
            factor = cho_factor(neg_hess + lam * eye)
        except np.linalg.LinAlgError:
            lam = max(2.0 * lam, floor)
            continue
        return cho_solve(factor, score), lam == 0.0
    raise np.linalg.LinAlgError("no positive definite regularisation of -H")


def _newton(
    counts: Counts, x: np.ndarray, off: np.ndarray | None
) -> tuple[np.ndarray, str | None, Parts | None]:
    """Our Newton on (beta, log alpha) with step halving; where -H is not positive
    definite (far from the maximum) a regularised step (`_ascent_step`) keeps climbing.

    Returns the estimates (beta, alpha), why it stopped short (None if it did not), and
    the `parts` at the estimates when the last iteration computed them.
    """
    y = counts.y
    beta = poisson_start(y, x, off)
    mu = _mu(x, off, beta)
    alpha = max(float(np.sum((y - mu) ** 2 - y) / np.sum(mu**2)), 0.05)
    theta = np.append(beta, math.log(alpha))
    k = x.shape[1]

    def llf_at(t: np.ndarray) -> float:
        return loglike(counts, _mu(x, off, t[:k]), math.exp(t[k]))

    current = llf_at(theta)
    for _ in range(MAX_ITER["newton"]):
        a = math.exp(theta[k])
        p = parts(counts, x, off, np.append(theta[:k], a))
        # chain rule to log alpha: s_l = a s_a, H_ll = a^2 H_aa + a s_a, H_bl = a H_ba
        score = p.score.copy()
        score[k] *= a
        hess = p.hessian.copy()
        hess[k, :k] *= a
        hess[:k, k] *= a
        hess[k, k] = a * a * p.hessian[k, k] + a * p.score[k]
        try:
            step, definite = _ascent_step(-hess, score)
        except np.linalg.LinAlgError:
            return np.append(theta[:k], a), "singular Hessian", None
        decrement = float(score @ step)
        if not np.isfinite(decrement):
            return np.append(theta[:k], a), "non-finite Newton step", None
        if definite and not decrement > NEWTON_TOL:
            return np.append(theta[:k], a), None, p
        for _ in range(30):  # step halving until the log-likelihood does not drop
            trial = theta + step
            value = llf_at(trial)
            if np.isfinite(value) and value >= current - 1e-12 * abs(current):
                break
            step = step / 2
        else:
            return np.append(theta[:k], a), "step halving failed", None
        theta, current = trial, value
        if theta[k] < LOG_ALPHA_MIN:
            return np.append(theta[:k], math.exp(theta[k])), "alpha runs to 0", None
    return np.append(theta[:k], math.exp(theta[k])), None, None


def _statsmodels_fit(
    y: np.ndarray, x: np.ndarray, off: np.ndarray | None, method: str
) -> tuple[np.ndarray, list[str]]:
    """statsmodels NB2 estimates with BFGS / Nelder-Mead and its warnings (module docstring)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = NegativeBinomial(y, x, loglike_method="nb2", offset=off)
        res = model.fit(
            method=method.removeprefix("statsmodels_"), maxiter=MAX_ITER[method], disp=False
        )
    notes = [
        f"statsmodels {w.category.__name__}: {w.message}"
        for w in caught
        if not issubclass(w.category, ConvergenceWarning)
    ]
    return np.asarray(res.params, dtype=float), notes


def _fit_once(
    counts: Counts,
    x: np.ndarray,
    off: np.ndarray | None,
    groups: Sequence[np.ndarray] | None,
    method: str,
) -> Fit:
    """One optimiser's estimates and covariance (module docstring)."""
    k = x.shape[1] + 1
    notes: list[str] = []
    with np.errstate(all="ignore"):
        try:
            p = None
            if method == "newton":
                params, failure, p = _newton(counts, x, off)
            else:
                params, notes = _statsmodels_fit(counts.y, x, off, method)
                failure = None
            p = p or parts(counts, x, off, params)
            llf = p.llf
            failure = check_optimum(p, params) if failure is None else failure
        except FIT_ERRORS as err:
            params, llf, p = np.full(k, np.nan), math.nan, None
            failure = f"{method} failed: {type(err).__name__}: {err}"
        cov = np.full((k, k), np.nan)
        if p is not None and np.isfinite(params).all():
            try:  # singular at alpha ~ 0: keep the estimates, NaN covariance
                bread = np.linalg.inv(-p.hessian)
                if groups is None:
                    cov = bread
                else:
                    scores = np.column_stack([x * p.score_beta[:, None], p.score_alpha])
                    cov = sandwich(bread, scores, groups, k - 1)
            except FIT_ERRORS as err:
                failure = failure or f"no covariance: {type(err).__name__}: {err}"
    if p is not None and not (np.isfinite(cov).all() and np.isfinite(llf)):
        failure = failure or "non-finite covariance or log-likelihood"
    return Fit(method, params, cov, llf, failure, tuple(dict.fromkeys(notes)))


def best_fit(
    y: np.ndarray,
    x: np.ndarray,
    off: np.ndarray | None,
    groups: Sequence[np.ndarray] | None,
) -> tuple[Fit, bool, list[str]]:
    """The first accepted fit over `METHODS` (else the best finite one), converged, notes.

    The optimisers see every column of `x` divided by its largest absolute value (a
    spline basis or a day count can be many orders of magnitude from a dummy, which
    leaves the Hessian numerically indefinite); estimates and covariance are mapped
    back to the scale of `x`.
    """
    scale = np.abs(x).max(axis=0) if x.size else np.ones(x.shape[1])
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    fit, converged, notes = _best_scaled_fit(y, x / scale, off, groups)
    back = np.append(1.0 / scale, 1.0)  # alpha is not rescaled
    return (
        replace(fit, params=fit.params * back, cov=fit.cov * np.outer(back, back)),
        converged,
        notes,
    )


def _best_scaled_fit(
    y: np.ndarray,
    x: np.ndarray,
    off: np.ndarray | None,
    groups: Sequence[np.ndarray] | None,
) -> tuple[Fit, bool, list[str]]:
    """`best_fit` on an already scaled design (same returns, on the scale of `x`)."""
    tried: list[Fit] = []
    counts = Counts(y)
    for method in METHODS:
        attempt = _fit_once(counts, x, off, groups, method)
        if attempt.failure is None:
            notes = [f"optimiser {f.method!r} failed ({f.failure}); used {method!r}" for f in tried]
            return attempt, True, [*notes, *attempt.notes]
        tried.append(attempt)
    finite = [f for f in tried if np.isfinite(f.params).all() and np.isfinite(f.llf)]
    best = max(finite, key=lambda f: f.llf) if finite else tried[0]
    why = "; ".join(f"{f.method}: {f.failure}" for f in tried)
    notes = [f"did not converge ({why}); estimates from {best.method!r}", *best.notes]
    if np.isfinite(best.params[-1]) and best.params[-1] < ALPHA_BOUNDARY:
        notes.append(
            f"alpha at the boundary ({best.params[-1]:.3g}): no overdispersion; "
            "NB2 reduces to Poisson; no standard errors (no interior maximum)"
        )
        best = replace(best, cov=np.full_like(best.cov, np.nan))
    return best, False, notes
