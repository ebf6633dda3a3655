"""Sick days in a window, counted day by day (the plain second implementation)."""

from __future__ import annotations

import datetime as dt


def plain_window_days(periods, lopnr, start, end) -> tuple[float, int]:
    """Net and gross days of `lopnr` in [start, end], counting day by day."""
    best: dict[dt.date, int] = {}
    for p, f, t, extent in periods:
        if p != lopnr:
            continue
        d = max(f, start)
        while d <= min(t, end):
            best[d] = max(best.get(d, 0), extent)
            d += dt.timedelta(days=1)
    return sum(best.values()) / 100, len(best)
