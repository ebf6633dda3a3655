"""A plain, independent implementation of spell chaining (analysis-spec.md §2), for tests.

Dictionaries and loops over days, no polars: slow and obviously right. The
stage (`pipeline.stages.spells`) must agree with it exactly.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

Period = tuple[int, dt.date, dt.date, int, str | None, str]  # lopnr, from, tom, extent, icd, type


def reference_spells(periods: list[Period], max_gap_days: int, end_date: dt.date) -> list[dict]:
    """One dict per spell: lopnr, start, end, gross_days, net_days, n_periods, diagnos,
    forsakradtyp, censored; sorted by lopnr and start. Periods are seen as of `end_date`:
    one starting after it is left out, one running past it ends there."""
    by_person: dict[int, list[Period]] = defaultdict(list)
    for lopnr, start, end, *rest in periods:
        if start > end_date:  # after the extract date: not observed
            continue
        by_person[lopnr].append((lopnr, start, min(end, end_date), *rest))
    out = []
    for lopnr in sorted(by_person):
        rows = sorted(by_person[lopnr], key=lambda p: (p[1], p[2]))
        groups: list[list[Period]] = []
        latest_end = None
        for row in rows:
            if latest_end is None or (row[1] - latest_end).days - 1 > max_gap_days:
                groups.append([])
                latest_end = row[2]
            groups[-1].append(row)
            latest_end = max(latest_end, row[2])
        for group in groups:
            extent_of_day: dict[dt.date, int] = {}
            for _, start, end, extent, _, _ in group:
                day = start
                while day <= end:
                    extent_of_day[day] = max(extent_of_day.get(day, 0), extent)
                    day += dt.timedelta(days=1)
            first = min(  # earliest, highest extent, then smallest diagnos, type (nulls last)
                group,
                key=lambda p: (p[1], -p[3], p[4] is None, p[4] or "", p[5] is None, p[5] or ""),
            )
            start = min(p[1] for p in group)
            end = max(p[2] for p in group)
            out.append(
                {
                    "lopnr": lopnr,
                    "start": start,
                    "end": end,
                    "gross_days": (end - start).days + 1,
                    "net_days": sum(extent_of_day.values()) / 100,
                    "n_periods": len(group),
                    "diagnos": first[4],
                    "forsakradtyp": first[5],
                    "censored": end >= end_date,
                }
            )
    return out
