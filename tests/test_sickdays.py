"""Sick days in a window: against a day-by-day count, and the NB analysis rows."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.rules.sickdays import window_days
from tests.reference.sickdays import plain_window_days

D0 = dt.date(2020, 1, 1)


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


@settings(max_examples=80, deadline=None)
@given(
    periods=st.lists(
        st.tuples(
            st.integers(1, 3),
            st.integers(0, 200),
            st.integers(0, 60),
            st.sampled_from([25, 50, 75, 100]),
        ),
        max_size=20,
    ),
    windows=st.lists(
        st.tuples(st.integers(1, 4), st.integers(0, 250), st.integers(0, 120)),
        min_size=1,
        max_size=6,
    ),
)
def test_window_days_agree_with_a_day_by_day_count(periods, windows):
    rows = [(p, day(f), day(f + n), e) for p, f, n, e in periods]
    frame = pl.DataFrame(
        rows, schema=["lopnr", "from_datum", "tom_datum", "omfattning"], orient="row"
    )
    frame = frame.with_columns(pl.col("omfattning").cast(pl.Int16), pl.col("lopnr").cast(pl.Int64))
    members = pl.DataFrame(
        [(i, p, day(s), day(s + n)) for i, (p, s, n) in enumerate(windows)],
        schema=["member_id", "lopnr", "window_start", "window_end"],
        orient="row",
    ).with_columns(pl.col("member_id", "lopnr").cast(pl.Int64))
    out = window_days(members, frame).sort("member_id")
    for (i, p, s, n), row in zip(
        [(i, p, s, n) for i, (p, s, n) in enumerate(windows)],
        out.iter_rows(named=True),
        strict=True,
    ):
        net, gross = plain_window_days(rows, p, day(s), day(s + n))
        assert row["member_id"] == i
        assert row["net_days"] == pytest.approx(net)
        assert row["gross_days"] == gross
