"""Income outcomes: hand-built persons, a plain second implementation, and the planted effect."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core import config
from pipeline.stages.income import write_income_monthly
from pipeline.stages.outcomes import OutcomeConfig, income_measures, outcome_flags
from tests.reference.income import reference_outcomes

CONF = OutcomeConfig.from_config(config.compose())
OUTCOMES = [
    "income_before", "ref_income_sek", "any_income_3", "any_income_6", "any_income_12",
    "regained_3", "regained_6", "regained_12", "durable_any", "durable_regained",
]  # fmt: skip


def d(iso: str) -> dt.date:
    return dt.date.fromisoformat(iso)


def run_stage(agi_rows, spells, tmp_path, conf=CONF) -> dict[int, dict]:
    agi = pl.DataFrame(
        agi_rows,
        schema={
            "lopnr": pl.Int64,
            "period": pl.Int32,
            "arbetsgivare": pl.Int64,
            "kontant_bruttolon": pl.Int64,
        },
        orient="row",
    )
    path = write_income_monthly(agi, 201901, 202312, tmp_path / "income.parquet")
    frame = pl.DataFrame(spells, schema=["spell_id", "lopnr", "start", "end"], orient="row")
    out = outcome_flags(income_measures(frame, path, conf), conf)
    return {r["spell_id"]: {k: r[k] for k in OUTCOMES} for r in out.iter_rows(named=True)}


def monthly(lopnr, first, last, amount, employer=1):
    """AGI rows for every month from period `first` to `last` (YYYYMM)."""
    rows, p = [], first
    while p <= last:
        rows.append((lopnr, p, employer, amount))
        p = p + 1 if p % 100 < 12 else (p // 100 + 1) * 100 + 1
    return rows


def test_two_employers_and_a_negative_correction_sum_within_the_month(tmp_path):
    # Reference months 2020-01..03: 20 000 + 10 000 (two employers), and a correction.
    agi = [
        (1, 202001, 1, 20_000), (1, 202001, 2, 10_000),
        (1, 202002, 1, 30_000), (1, 202003, 1, 35_000), (1, 202003, 1, -5_000),
        (1, 202007, 1, 27_000),  # 90 % of 30 000 in the first month after the spell
    ]  # fmt: skip
    out = run_stage(agi, [(1, 1, d("2020-04-10"), d("2020-06-20"))], tmp_path)[1]
    assert out["ref_income_sek"] == 30_000
    assert out["income_before"] is True
    assert out["regained_3"] is True and out["any_income_3"] is True


def test_regained_in_exactly_month_3_counts_for_3_and_month_4_does_not(tmp_path):
    agi = [*monthly(1, 202001, 202003, 30_000), (1, 202009, 1, 29_000)]  # end 2020-06: month 3
    agi += [*monthly(2, 202001, 202003, 30_000), (2, 202010, 1, 29_000)]  # month 4
    spells = [(1, 1, d("2020-04-01"), d("2020-06-15")), (2, 2, d("2020-04-01"), d("2020-06-15"))]
    out = run_stage(agi, spells, tmp_path)
    assert (out[1]["regained_3"], out[1]["regained_6"]) == (True, True)
    assert (out[2]["regained_3"], out[2]["regained_6"]) == (False, True)
    assert out[2]["any_income_3"] is False


def test_no_income_before_and_unobserved_reference(tmp_path):
    agi = [(1, 202008, 1, 15_000)]
    spells = [
        (1, 1, d("2020-04-01"), d("2020-06-30")),  # no rows in 2020-01..03: no income before
        (2, 1, d("2019-01-20"), d("2019-03-01")),  # reference 2018-10..12: unobserved
    ]
    out = run_stage(agi, spells, tmp_path)
    assert out[1]["income_before"] is False and out[1]["regained_12"] is None
    assert out[1]["any_income_3"] is True
    assert out[2]["income_before"] is None
    zero = OutcomeConfig.from_config(config.compose(["income.unobserved=zero"]))
    assert run_stage(agi, spells, tmp_path, zero)[2]["income_before"] is False


def test_a_durable_run_that_breaks_after_two_months_is_not_durable(tmp_path):
    # end 2020-06: f = 2020-07, durable window 2021-07 .. 2022-06
    broken = monthly(1, 202001, 202003, 30_000) + monthly(1, 202107, 202108, 30_000)
    broken += monthly(1, 202110, 202111, 30_000)
    durable = monthly(2, 202001, 202003, 30_000) + monthly(2, 202204, 202206, 30_000)
    spells = [(1, 1, d("2020-04-01"), d("2020-06-30")), (2, 2, d("2020-04-01"), d("2020-06-30"))]
    out = run_stage(broken + durable, spells, tmp_path)
    assert out[1]["durable_any"] is False
    assert out[2]["durable_any"] is True and out[2]["durable_regained"] is True


def test_windows_reaching_past_agi_coverage_are_missing_not_no_income(tmp_path):
    out = run_stage(
        monthly(1, 201901, 202312, 30_000), [(1, 1, d("2023-02-01"), d("2023-08-31"))], tmp_path
    )[1]
    assert out["any_income_3"] is True
    assert out["any_income_6"] is None and out["any_income_12"] is None
    assert out["durable_any"] is None


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.integers(1, 3),  # lopnr
            st.integers(0, 59),  # month offset from 2019-01
            st.sampled_from([0, 1, 3, -500, 8_000, 27_000, 30_000, 31_000]),
        ),
        max_size=60,
    ),
    spell_months=st.lists(
        st.tuples(st.integers(1, 3), st.integers(0, 50), st.integers(0, 20)), min_size=1, max_size=6
    ),
)
def test_stage_agrees_with_the_plain_implementation(data, spell_months, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("outcomes")
    agi = [(p, 201901 + (m // 12) * 100 + m % 12, i % 2, v) for i, (p, m, v) in enumerate(data)]
    spells = []
    for i, (p, start, length) in enumerate(spell_months):
        s = d("2019-01-01") + dt.timedelta(days=30.5 * start + 3)
        spells.append((i, p, s, s + dt.timedelta(days=30.5 * length)))
    ours = run_stage(agi, spells, tmp_path)
    theirs = reference_outcomes([(p, per, v) for p, per, _, v in agi], spells)
    for spell_id, expected in theirs.items():
        for key, value in expected.items():
            got = ours[spell_id][key]
            if isinstance(value, float):
                assert got == pytest.approx(value), (spell_id, key)
            else:
                assert got == value, (spell_id, key)
