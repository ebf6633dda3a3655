"""A plain, independent implementation of the income outcomes (analysis-spec.md §4.4), for tests.

Loops over AGI rows and months with dictionaries: the stage must agree exactly.
Defaults only: windows start the month after the end month, one qualifying month
suffices, regained needs income before and a complete reference, unobserved
months are missing, the durable window is the 12 months from f + 12.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict


def months_since_0(d: dt.date) -> int:
    return d.year * 12 + d.month - 1


def reference_outcomes(
    agi: list[tuple[int, int, int]],  # lopnr, period YYYYMM, amount SEK
    spells: list[tuple[int, int, dt.date, dt.date]],  # spell_id, lopnr, start, end
    first_period: int = 201901,
    last_period: int = 202312,
    windows: tuple[int, ...] = (3, 6, 12),
    share: float = 0.9,
) -> dict[int, dict]:
    """Per spell_id: income_before, ref_income_sek, any_income_X, regained_X, durable_*."""
    income: dict[tuple[int, int], int] = defaultdict(int)
    for lopnr, period, amount in agi:
        if first_period <= period <= last_period:
            income[(lopnr, (period // 100) * 12 + period % 100 - 1)] += amount
    first = (first_period // 100) * 12 + first_period % 100 - 1
    last = (last_period // 100) * 12 + last_period % 100 - 1

    def inc(lopnr: int, m: int) -> int | None:
        return income.get((lopnr, m), 0) if first <= m <= last else None

    out = {}
    for spell_id, lopnr, start, end in spells:
        s, f = months_since_0(start), months_since_0(end) + 1
        ref = [inc(lopnr, m) for m in range(s - 3, s)]
        observed = [v for v in ref if v is not None]
        ref_income = sum(observed) / len(observed) if observed else None
        if any(v >= 1 for v in observed):
            before = True
        elif len(observed) == 3:
            before = False
        else:
            before = None
        complete = len(observed) == 3
        row = {"income_before": before, "ref_income_sek": ref_income}
        for x in windows:
            window = list(range(f, f + x))
            seen = window[-1] <= last
            row[f"any_income_{x}"] = any(inc(lopnr, m) >= 1 for m in window) if seen else None
            applies = seen and bool(before) and complete and ref_income > 0
            row[f"regained_{x}"] = (
                any(inc(lopnr, m) >= share * ref_income for m in window) if applies else None
            )
        durable = [inc(lopnr, m) for m in range(f + 12, f + 24)]
        seen = None not in durable
        row["durable_any"] = _longest_run(durable, 1) >= 3 if seen else None
        applies = seen and bool(before) and complete and ref_income > 0
        row["durable_regained"] = (
            _longest_run(durable, share * ref_income) >= 3 if applies else None
        )
        out[spell_id] = row
    return out


def _longest_run(values: list[int], threshold: float) -> int:
    """Longest run of consecutive values at or above `threshold`."""
    best = run = 0
    for value in values:
        run = run + 1 if value >= threshold else 0
        best = max(best, run)
    return best
