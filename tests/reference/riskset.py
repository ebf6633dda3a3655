"""Risk-set eligibility by the definition, case by case and candidate by candidate (the
plain second implementation of analysis-spec.md §6.2, for tests).

Calendar dates and a double loop, no sorting, no binary search, no day numbers
shared with the sampler: slow (cases x candidates) and obviously right.
"""

from __future__ import annotations

import datetime as dt


def on_sick_leave(spell: dict, day: dt.date) -> bool:
    """Whether `spell` (start, end dates) covers the calendar date `day`."""
    return spell["start"] <= day <= spell["end"]


def plain_eligible(
    case: dict,
    candidates: list[dict],
    mode: str,
    match_on: tuple[str, ...] = (),
    data_end: dt.date | None = None,
) -> set[int]:
    """Spell ids of `candidates` eligible as controls of `case` (dicts with spell_id, lopnr,
    start, end, treated, first_gc001 and the match_on columns).

    The case's index is its first GC001, t days from its start (t < 0 when the GC001
    precedes the spell). A candidate is eligible when it: starts in the case's calendar
    month and matches on `match_on`; belongs to another person; has its index date
    (its start + t) on or before `data_end`; is on sick leave on its day max(t, 0) (no
    spell is on sick leave before its day 0, the case's neither); and has no GC001 at
    all (`never_treated`) or none on or before its index date (`not_yet_treated`).
    """
    t = (case["first_gc001"] - case["start"]).days
    month = (case["start"].year, case["start"].month)
    out = set()
    for c in candidates:
        index = c["start"] + dt.timedelta(days=t)
        if (c["start"].year, c["start"].month) != month or c["lopnr"] == case["lopnr"]:
            continue
        if any(c[m] != case[m] for m in match_on):
            continue
        if data_end is not None and index > data_end:
            continue
        if not on_sick_leave(c, c["start"] + dt.timedelta(days=max(t, 0))):
            continue
        if mode == "never_treated":
            untreated = not c["treated"]
        else:
            untreated = c["first_gc001"] is None or c["first_gc001"] > index
        if untreated:
            out.add(c["spell_id"])
    return out
