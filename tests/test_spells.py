"""Spell chaining against a plain second implementation, hand-built edges and properties."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core import config
from pipeline.stages.spells import build_spells, cut_counts
from tests.reference.spells import reference_spells

CODES = config.compose().codes
GROUPS = [dict(g) for g in CODES.diagnosis_groups]
END = dt.date(2025, 5, 31)
D0 = dt.date(2020, 1, 1)


def _periods(rows: list[tuple]) -> pl.LazyFrame:
    return pl.LazyFrame(
        rows,
        schema={
            "lopnr": pl.Int64,
            "from_datum": pl.Date,
            "tom_datum": pl.Date,
            "omfattning": pl.Int16,
            "diagnos": pl.String,
            "forsakradtyp": pl.String,
        },
        orient="row",
    )


def _spells(rows: list[tuple], gap: int = 5, end: dt.date = END) -> list[dict]:
    out = build_spells(_periods(rows), gap, end, GROUPS, "saknas").collect()
    return out.drop("spell_id", "diagnosis_group").to_dicts()


def d(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def test_gap_of_exactly_the_limit_chains_and_one_more_day_does_not():
    # tom day 9; next from day 15 leaves days 10-14 uncovered: a gap of 5.
    chained = _spells(
        [(1, d(0), d(9), 100, "F438", "anstalld"), (1, d(15), d(20), 100, "F438", "anstalld")]
    )
    split = _spells(
        [(1, d(0), d(9), 100, "F438", "anstalld"), (1, d(16), d(20), 100, "F438", "anstalld")]
    )
    assert len(chained) == 1 and chained[0]["gross_days"] == 21 and chained[0]["net_days"] == 16
    assert len(split) == 2


def test_same_day_duplicates_and_nested_periods_count_each_day_once_at_its_highest_extent():
    rows = [
        (1, d(0), d(9), 50, "M545", "anstalld"),
        (1, d(0), d(9), 50, "M545", "anstalld"),  # same days again
        (1, d(3), d(4), 100, "M545", "anstalld"),  # nested, higher extent
        (1, d(0), d(0), 25, "F32", "arbetslos"),  # same first day, lower extent
    ]
    [spell] = _spells(rows)
    assert spell["gross_days"] == 10
    assert spell["net_days"] == pytest.approx(8 * 0.5 + 2 * 1.0)
    assert spell["n_periods"] == 4
    # earliest period, ties broken by the highest extent
    assert (spell["diagnos"], spell["forsakradtyp"]) == ("M545", "anstalld")


def test_a_spell_reaching_the_data_end_is_censored():
    rows = [
        (1, d(0), END, 100, None, "anstalld"),
        (2, d(0), END - dt.timedelta(days=1), 100, None, "ovrig"),
    ]
    spells = _spells(rows)
    assert [s["censored"] for s in spells] == [True, False]


def test_the_extract_date_cuts_periods_and_sets_aside_those_starting_after_it():
    end = d(100)
    rows = [
        (1, d(90), d(120), 50, "F438", "anstalld"),  # runs past the end: cut to day 100
        (1, d(101), d(110), 100, "F438", "anstalld"),  # starts the day after: set aside
        (2, d(100), d(100), 100, "M545", "ovrig"),  # starts and ends on the end date
        (3, d(50), d(99), 100, "M545", "ovrig"),  # ends the day before: not censored
        (4, d(101), d(130), 100, "M545", "ovrig"),  # only after the end: no spell at all
    ]
    spells = {s["lopnr"]: s for s in _spells(rows, end=end)}
    assert sorted(spells) == [1, 2, 3]
    one = spells[1]
    assert (one["end"], one["gross_days"], one["n_periods"]) == (end, 11, 1)
    assert one["net_days"] == pytest.approx(11 * 0.5)  # the later full-time days are gone
    assert one["censored"] and spells[2]["censored"] and not spells[3]["censored"]
    assert (spells[2]["gross_days"], spells[3]["gross_days"]) == (1, 50)
    counts = cut_counts(_periods(rows), end)
    assert counts == {
        "end_date": end.isoformat(),
        "periods_in": 5,
        "set_aside_starting_after_end_date": 2,
        "cut_at_end_date": 1,
        "calendar_days_removed": 20 + 10 + 30,
    }


def test_overlapping_periods_always_join_even_with_gap_zero():
    rows = [
        (1, d(0), d(10), 100, None, "ovrig"),
        (1, d(5), d(7), 100, None, "ovrig"),
        (1, d(11), d(12), 100, None, "ovrig"),
    ]
    assert len(_spells(rows, gap=0)) == 1
    assert len(_spells([*rows, (1, d(14), d(15), 100, None, "ovrig")], gap=0)) == 2


def test_first_period_ties_are_broken_by_value_not_row_order():
    """Two periods on the same days at the same extent: the smallest diagnos, then the
    smallest insured type, whichever row comes first (found by hypothesis)."""
    a = (1, d(0), d(9), 100, "F43", "arbetslos")
    b = (1, d(0), d(9), 100, "F43", "anstalld")
    c = (1, d(0), d(9), 100, None, "anstalld")
    for rows in ([a, b], [b, a]):
        assert _spells(rows)[0]["forsakradtyp"] == "anstalld"
    for rows in ([a, c], [c, a]):
        assert (_spells(rows)[0]["diagnos"], _spells(rows)[0]["forsakradtyp"]) == (
            "F43",
            "arbetslos",
        )


def test_diagnosis_groups_follow_the_code_list():
    rows = [
        (i, d(0), d(40), 100, code, "anstalld")
        for i, code in enumerate(["F430", "F329", "M545", "J449", None, "XYZ"], start=1)
    ]
    out = build_spells(_periods(rows), 5, END, GROUPS, "saknas").collect()
    assert out["diagnosis_group"].to_list() == [
        "f43", "other_psych", "musculoskeletal", "other", "saknas", "saknas"
    ]  # fmt: skip


periods_strategy = st.lists(
    st.tuples(
        st.integers(1, 4),  # lopnr
        st.integers(0, 120),  # from (day)
        st.integers(0, 25),  # length - 1
        st.sampled_from([25, 50, 75, 100]),
        st.sampled_from(["F438", "M545", None]),
        st.sampled_from(["anstalld", "arbetslos"]),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(rows=periods_strategy, gap=st.sampled_from([0, 1, 5, 14]))
def test_stage_agrees_exactly_with_the_plain_implementation(rows, gap):
    periods = [(p, d(f), d(f + n), e, icd, t) for p, f, n, e, icd, t in rows]
    end = d(130)
    ours = _spells(periods, gap=gap, end=end)
    theirs = reference_spells(periods, gap, end)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a == pytest.approx(b)


@settings(max_examples=150, deadline=None)
@given(rows=periods_strategy, gap=st.sampled_from([0, 5, 30]))
def test_spells_are_disjoint_separated_by_more_than_the_gap_and_never_count_a_day_twice(rows, gap):
    periods = [(p, d(f), d(f + n), e, None, "ovrig") for p, f, n, e, _, _ in rows]
    out = build_spells(_periods(periods), gap, END, GROUPS, "saknas").collect()
    assert (out["net_days"] <= out["gross_days"]).all()
    assert out["n_periods"].sum() == len(periods)
    for _, person in out.group_by("lopnr"):
        starts, ends = person["start"].to_list(), person["end"].to_list()
        for prev_end, next_start in zip(ends, starts[1:], strict=False):
            assert (next_start - prev_end).days - 1 > gap
    # shuffling the input changes nothing
    shuffled = _periods(periods).collect().sample(fraction=1.0, shuffle=True, seed=1).lazy()
    again = build_spells(shuffled, gap, END, GROUPS, "saknas").collect()
    assert again.drop("diagnos", "forsakradtyp").equals(out.drop("diagnos", "forsakradtyp"))


def test_synthetic_periods_chain_into_the_planted_spells(tiny):
    clean = tiny.clean["sjukpenning"].with_columns(
        pl.col("diagnos").str.replace_all(".", "", literal=True).str.to_uppercase()
    )
    out = build_spells(clean.lazy(), 5, END, GROUPS, "saknas").collect()
    truth = tiny.truth_spells.select("lopnr", "start", "end", "censored").sort("lopnr", "start")
    assert out.select("lopnr", "start", "end", "censored").equals(truth)
