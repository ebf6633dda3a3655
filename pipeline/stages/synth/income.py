"""Synthetic monthly employer declarations (`agi`) and the return-to-income truth.

Income is built on a person x month numpy grid (float32, never Python objects):
work status by insured type, a wage, less income during sick months, no income
after a spell until the person returns to work, and a new wage level after the
return. Whether a person returns is drawn per spell from a logistic model in
which treatment adds `return_log_odds_treated` (the planted effect); both
potential outcomes are kept in the truth table.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.stages.synth.params import SynthParams, draw_index, month_index
from pipeline.stages.synth.people import People
from pipeline.stages.synth.spells import Spells

# Monthly chance of having work income by insured type (spells.INSURED_TYPES order).
WORK_SHARE_BY_INSURED = np.array([0.985, 0.75, 0.12, 0.05, 0.35], dtype=np.float32)
RETURN_BASE_LOG_ODDS = 3.3  # P(return) ~ 0.96 after spells under two years
LONG_SPELL_LOG_ODDS = -2.0  # spells of 730 days or more: P(return) ~ 0.79
LONG_SPELL_DAYS = 730
RETURN_MONTH_P = 0.55  # months from the end month to the first paid month ~ geometric(p)
WAGE_RATIO_DROP_MEAN = 0.04  # after a return, wage x (1 - exponential(mean)), floored
WAGE_RATIO_FLOOR = 0.3
NO_INCOME_BEFORE_SHARE = 0.02  # spells of workers with no income in the 3 months before
MONTH_NOISE_SIGMA = 0.08
SECOND_EMPLOYER_SHARE = 0.08  # rows split between two employers
CORRECTION_SHARE = 0.003  # rows with a negative correction row beside them
NEGATIVE_MONTH_SHARE = 0.0002  # months without pay that hold only a negative correction
JOB_CHANGE_SHARE = 0.15


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def return_truth(rng: np.random.Generator, spells: Spells, params: SynthParams) -> pl.DataFrame:
    """One row per spell: potential return-to-work outcomes under control and treatment."""
    long = (spells.base_days + spells.extra_days) >= LONG_SPELL_DAYS
    log_odds = RETURN_BASE_LOG_ODDS + LONG_SPELL_LOG_ODDS * long
    u = rng.random(spells.n)
    if_control = u < _expit(log_odds)
    if_treated = u < _expit(log_odds + params.return_log_odds_treated)
    return pl.DataFrame(
        {
            "spell": np.arange(spells.n),
            "long_spell": long,
            "returns_if_control": if_control,
            "returns_if_treated": if_treated,
            "returns": np.where(spells.treated, if_treated, if_control),
            "return_month": rng.geometric(RETURN_MONTH_P, spells.n).astype(np.int64),
            "wage_ratio": np.maximum(
                1.0 - rng.exponential(WAGE_RATIO_DROP_MEAN, spells.n), WAGE_RATIO_FLOOR
            ),
            "no_income_before": rng.random(spells.n) < NO_INCOME_BEFORE_SHARE,
        }
    )


def income_grid(
    rng: np.random.Generator,
    people: People,
    spells: Spells,
    returns: pl.DataFrame,
    params: SynthParams,
) -> np.ndarray:
    """Person x month work income in SEK (float32, n_persons x agi_months)."""
    n, n_months = people.n, params.agi_months
    first_spell = np.r_[0, np.flatnonzero(spells.person[1:] != spells.person[:-1]) + 1]
    insured = np.zeros(n, dtype=np.int64)
    insured[spells.person[first_spell]] = spells.insured_type[first_spell]
    works = rng.random((n, n_months), dtype=np.float32) < WORK_SHARE_BY_INSURED[insured][:, None]
    level = np.ones((n, n_months), dtype=np.float32)

    end = np.minimum(spells.end, params.data_end)
    start_month = month_index(spells.start, params.agi_first_month)
    end_month = month_index(end, params.agi_first_month)
    extent = (
        np.array(list(params.extent_mix), dtype=np.float32)[
            draw_index(rng, params.extent_mix, spells.n)
        ]
        / 100
    )
    next_start_month = np.r_[start_month[1:], np.iinfo(np.int64).max]
    next_start_month[np.r_[spells.person[1:] != spells.person[:-1], True]] = np.iinfo(np.int64).max
    ret = returns
    back_month = np.where(
        ret["returns"].to_numpy(),
        end_month + ret["return_month"].to_numpy(),
        np.iinfo(np.int64).max,
    )
    ratio = ret["wage_ratio"].to_numpy().astype(np.float32)
    month_first_day = (
        (
            np.datetime64(f"{params.agi_first_month // 100}-{params.agi_first_month % 100:02d}")
            + np.arange(n_months + 1)
        )
        .astype("datetime64[D]")
        .astype(np.int64)
    )
    for m in range(n_months):  # 60 calendar months, each vectorised over spells
        lo, hi = month_first_day[m], month_first_day[m + 1] - 1
        overlap = np.minimum(end, hi) - np.maximum(spells.start, lo) + 1
        sick = overlap > 0
        factor = 1 - extent[sick] * overlap[sick] / (hi - lo + 1)
        np.minimum.at(level[:, m], spells.person[sick], factor.astype(np.float32))
        idle = (m > end_month) & (m < back_month) & (m < next_start_month)
        level[spells.person[idle], m] = 0
        back = m >= back_month
        np.multiply.at(level[:, m], spells.person[back], ratio[back])
    # Some workers start a spell without income in the three months before it.
    planted = np.flatnonzero(ret["no_income_before"].to_numpy())
    for k in (1, 2, 3):
        m = start_month[planted] - k
        ok = (m >= 0) & (m < n_months)
        level[spells.person[planted[ok]], m[ok]] = 0
    # In place, to hold one person x month float32 grid at a time (240 MB nationally).
    level *= works
    del works
    level *= np.exp(rng.normal(0.0, MONTH_NOISE_SIGMA, (n, n_months)).astype(np.float32))
    level *= people.wage_sek.astype(np.float32)[:, None]
    return level


def agi_rows(
    rng: np.random.Generator, people: People, grid: np.ndarray, params: SynthParams
) -> pl.DataFrame:
    """`agi` (typed, clean): one row per person, employer and month with pay."""
    n, n_months = grid.shape
    flat = grid.ravel()
    cell = np.flatnonzero(flat >= 0.5).astype(np.int32)  # cells that round to >= 1 SEK
    amount = np.rint(flat[cell]).astype(np.int64)
    person, month = cell // n_months, cell % n_months
    del cell

    # Main employers and second employers come from disjoint id ranges, so a
    # second-employer row never equals a main row (AGI is duplicate-free).
    employer_a = rng.integers(100_000, 600_000, n)
    employer_b = rng.integers(100_000, 600_000, n)  # after a job change
    employer_2 = rng.integers(600_000, 1_000_000, n)  # a second, smaller employer
    change_month = np.where(
        rng.random(n) < JOB_CHANGE_SHARE, rng.integers(1, n_months, n), n_months
    )
    employer = np.where(month < change_month[person], employer_a[person], employer_b[person])

    split = rng.random(len(amount)) < SECOND_EMPLOYER_SHARE
    share = rng.uniform(0.1, 0.4, int(split.sum()))
    second_amount = np.rint(amount[split] * share).astype(np.int64)
    amount[split] -= second_amount
    corrected = rng.random(len(amount)) < CORRECTION_SHARE
    correction = np.rint(amount[corrected] * rng.uniform(0.05, 0.3, int(corrected.sum())))
    amount[corrected] += correction.astype(np.int64)
    # Months without pay that hold only a negative correction (sum < 0 = no income).
    empty = np.flatnonzero(flat < 0.5).astype(np.int32)
    negative = rng.choice(empty, int(len(empty) * NEGATIVE_MONTH_SHARE), replace=False)
    neg_person, neg_month = negative // n_months, negative % n_months

    person_all = np.concatenate([person, person[split], person[corrected], neg_person])
    month_all = np.concatenate([month, month[split], month[corrected], neg_month])
    employer_all = np.concatenate(
        [employer, employer_2[person[split]], employer[corrected], employer_a[neg_person]]
    )
    amount_all = np.concatenate(
        [
            amount,
            second_amount,
            -correction.astype(np.int64),
            -rng.integers(500, 5_000, len(negative)),
        ]
    )
    first = params.agi_first_month
    months_since_0 = (first // 100) * 12 + first % 100 - 1 + month_all
    period = (months_since_0 // 12) * 100 + months_since_0 % 12 + 1
    order = np.lexsort((month_all, person_all))
    return pl.DataFrame(
        {
            "lopnr": people.lopnr[person_all[order]],
            "period": period[order].astype(np.int32),
            "arbetsgivare": employer_all[order].astype(np.int64),
            "kontant_bruttolon": amount_all[order].astype(np.int64),
        }
    )
