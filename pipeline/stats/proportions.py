"""Proportions: Wilson and Newcombe score intervals and the two-proportion z test.

Counts in, proportions (0-1) or p-values out; used by the published tables' cells.
"""

from __future__ import annotations

import math

from scipy import stats

from pipeline.stats.base import LEVEL


def _check_counts(x: int, n: int) -> None:
    """None; ValueError unless 0 <= x <= n and n > 0."""
    if n <= 0 or not 0 <= x <= n:
        raise ValueError(f"need 0 <= x <= n and n > 0, got x={x}, n={n}")


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z test of x1/n1 = x2/n2, unitless.

    z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2)) with pooled p = (x1 + x2) / (n1 + n2);
    1.0 when the pooled proportion is 0 or 1 (no variation, no difference).

    >>> round(two_proportion_z(56, 70, 48, 80), 5)
    0.00805
    """
    _check_counts(x1, n1)
    _check_counts(x2, n2)
    pooled = (x1 + x2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / math.sqrt(var)
    return float(2 * stats.norm.sf(abs(z)))


def wilson_ci(x: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of the proportion x/n, in proportions (0-1).

    >>> [round(b, 4) for b in wilson_ci(81, 263)]
    [0.2553, 0.3662]
    """
    _check_counts(x, n)
    z = float(stats.norm.ppf(0.5 + level / 2))
    centre = (x + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(x * (n - x) / n + z * z / 4)
    # the bounds at x = 0 and x = n are exactly 0 and 1 (not float noise around them)
    low = 0.0 if x == 0 else max(0.0, centre - half)
    high = 1.0 if x == n else min(1.0, centre + half)
    return (low, high)


def newcombe_diff_ci(
    x1: int, n1: int, x2: int, n2: int, level: float = LEVEL
) -> tuple[float, float]:
    """Newcombe's hybrid score interval of p1 - p2 (method 10, 1998), in proportions.

    From the Wilson intervals (l1, u1), (l2, u2): d - sqrt((p1 - l1)^2 + (u2 - p2)^2),
    d + sqrt((u1 - p1)^2 + (p2 - l2)^2) with d = p1 - p2.

    >>> [round(b, 4) for b in newcombe_diff_ci(56, 70, 48, 80)]
    [0.0524, 0.3339]
    """
    l1, u1 = wilson_ci(x1, n1, level)
    l2, u2 = wilson_ci(x2, n2, level)
    p1, p2 = x1 / n1, x2 / n2
    d = p1 - p2
    return (d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2))
