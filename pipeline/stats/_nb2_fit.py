"""The NB2 optimiser of `pipeline.stats.nb2`: Newton, then BFGS, then Nelder-Mead.

Each is statsmodels' discrete `NegativeBinomial(loglike_method="nb2")` fit from its
Poisson start (BFGS and Nelder-Mead on log alpha). A fit counts as converged when the
parameters are finite, alpha > 0, the negative Hessian is positive definite and the
Newton decrement s' (-H)^-1 s is below `DECREMENT_TOL` (the log-likelihood is within
~DECREMENT_TOL / 2 of the local maximum). Newton fails when alpha is near 0 (it steps
to alpha < 0). The covariance follows the conventions of `pipeline.stats.nb2`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from statsmodels.discrete.discrete_model import NegativeBinomial
from statsmodels.stats.sandwich_covariance import cov_cluster
from statsmodels.tools.sm_exceptions import ConvergenceWarning

METHODS = ("newton", "bfgs", "nm")  # tried in this order (module docstring)
MAX_ITER = {"newton": 100, "bfgs": 2_000, "nm": 20_000}
DECREMENT_TOL = 1e-5  # Newton decrement s'(-H)^-1 s accepted as converged, log-lik units
ALPHA_BOUNDARY = 1e-4  # alpha below this in a failed fit: no overdispersion (Poisson)
FIT_ERRORS = (np.linalg.LinAlgError, ValueError, OverflowError, ZeroDivisionError)


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
class Fit:
    """One optimiser's outcome."""

    method: str
    params: np.ndarray
    cov: np.ndarray
    llf: float
    failure: str | None
    notes: tuple[str, ...]


def _fit_once(
    y: np.ndarray, x: np.ndarray, off: np.ndarray | None, groups: np.ndarray | None, method: str
) -> Fit:
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
    return Fit(method, params, cov, llf, failure, tuple(notes))


def best_fit(
    y: np.ndarray, x: np.ndarray, off: np.ndarray | None, groups: np.ndarray | None
) -> tuple[Fit, bool, list[str]]:
    """The first accepted fit over `METHODS` (else the best finite one), converged, notes."""
    tried: list[Fit] = []
    for method in METHODS:
        attempt = _fit_once(y, x, off, groups, method)
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
            "NB2 reduces to Poisson"
        )
    return best, False, notes
