"""Counts an attacker reads back from the values printed beside them: a share with its
count gives n, a Wilson bound with its count gives n, a two-proportion p-value with the
other group and this group's n gives the count. Written with statsmodels, not with the
pipeline's own statistics; each returns the one value that fits, or None (none or several).
"""

from __future__ import annotations

import numpy as np
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

SEARCH = 20_000  # the largest n tried; the test runs hold fewer persons per cell
TOLERANCE = 1e-9  # relative: the tables print floats at full precision


def _one(candidates: list[int]) -> int | None:
    """The only candidate, or None."""
    return candidates[0] if len(candidates) == 1 else None


def _close(a: float, b: float) -> bool:
    """Whether two printed floats are the same number."""
    return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))


def n_from_share(count: float, percent: float) -> int | None:
    """n of a shown count and its percent (count / n x 100); None at 0 %."""
    return round(count * 100 / percent) if percent > 0 else None


def n_from_wilson(count: int, ci_low: float | None, ci_high: float | None) -> int | None:
    """The n whose 95 % Wilson interval of count / n has these bounds (percent)."""
    n = np.arange(max(count, 1), SEARCH)
    low, high = (100 * np.asarray(b) for b in proportion_confint(count, n, method="wilson"))
    low = np.where(count == 0, 0.0, low)
    high = np.where(count == n, 100.0, high)
    fits = np.ones(len(n), dtype=bool)
    for bound, printed in ((low, ci_low), (high, ci_high)):
        if printed is not None:
            fits &= np.abs(bound - printed) <= TOLERANCE * np.maximum(1.0, abs(printed))
    return _one(n[fits].tolist())


def count_from_z_test(p_value: float, n: int, other_count: int, other_n: int) -> int | None:
    """The count out of `n` whose pooled two-proportion z test against other_count /
    other_n has this two-sided p-value."""
    found = []
    for x in range(n + 1):
        pooled = (x + other_count) / (n + other_n)
        p = 1.0 if pooled in (0.0, 1.0) else proportions_ztest([x, other_count], [n, other_n])[1]
        if _close(float(p), p_value):
            found.append(x)
    return _one(found)
