"""Efron-tie internals of the stratified Cox model of `pipeline.stats.cox`.

Risk sets of all strata as index arrays (`RiskSets`), the Efron log partial
likelihood with its gradient and information, Newton-Raphson on it, score residuals
and the Lin-Wei sandwich, each vectorised over strata (no Python loop over strata).
The conventions and their reconciliation with R are in `pipeline.stats.cox`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Newton-Raphson on the Efron partial likelihood (newton_raphson). It stops after the step
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


@dataclass(frozen=True)
class RiskSets:
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


def risk_sets(stratum: np.ndarray, time: np.ndarray, event: np.ndarray) -> RiskSets:
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
    return RiskSets(
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


def center_by_stratum(x: np.ndarray, sets: RiskSets) -> np.ndarray:
    """`x` (sorted rows x p) minus its stratum means: the model is unchanged, rounding smaller."""
    means = np.add.reduceat(x, sets.stratum_start) / sets.stratum_rows[:, None]
    return x - np.repeat(means, sets.stratum_rows, axis=0)


def _efron_deaths(
    sets: RiskSets, x: np.ndarray, beta: np.ndarray
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


def _sum_over_past_deaths(sets: RiskSets, values: np.ndarray, top: np.ndarray) -> np.ndarray:
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
    sets: RiskSets, x: np.ndarray, beta: np.ndarray
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


def solve_information(information: np.ndarray, rhs: np.ndarray) -> np.ndarray:
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


def newton_raphson(
    sets: RiskSets, x: np.ndarray, terms: Sequence[str]
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
            step = solve_information(information, gradient[:, None])[:, 0]
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


def sorted_score_residuals(sets: RiskSets, x: np.ndarray, beta: np.ndarray) -> np.ndarray:
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
    sets = risk_sets(stratum, time, event)
    out = np.empty(x.shape)
    out[sets.order] = sorted_score_residuals(sets, x[sets.order], beta)
    return out


def robust_cov(resid: np.ndarray, naive_cov: np.ndarray, cluster: np.ndarray | None) -> np.ndarray:
    """Lin-Wei sandwich D'D, D = dfbeta residuals summed per cluster; no small-sample factor."""
    dfbeta = resid @ naive_cov
    if cluster is not None:
        dfbeta = _group_sums(dfbeta, cluster, int(cluster.max()) + 1)
    return dfbeta.T @ dfbeta
