"""Calendar months as integers: the month index the income windows count in."""

from __future__ import annotations


def month_index(period: int) -> int:
    """Months since year 0 of a YYYYMM period (year * 12 + month - 1).

    >>> month_index(202001) - month_index(201912)
    1
    """
    return (period // 100) * 12 + period % 100 - 1
