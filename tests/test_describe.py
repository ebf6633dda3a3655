"""Table 2/B3 counts and percent bases by hand, the gate's protection of B3, Figure 8."""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipeline.core import config
from pipeline.report.labels import TOTAL
from pipeline.report.table2 import (
    b3_columns,
    printed_layout,
    with_percent,
)
from pipeline.stages.describe import figure8_data
from tests.helpers import b3_counts, gated, leaking_cells

CODES = config.compose().codes


def person_rows() -> pl.DataFrame:
    """8 treated (6 public, 2 private) and 10 control person rows with known categories."""
    rows = []
    for i in range(18):
        treated = i < 8
        rows.append(
            {
                "treated": treated,
                "ownership": ("offentlig" if i < 6 else "privat")
                if treated
                else ("okand" if i == 17 else "offentlig"),
                "sex": "Kvinnor" if i % 3 else "Män",
                "age_band": "18–39" if i < 4 else "40–59",
                "birth_country_group": "Sverige och Norden",
                "civil_status_group": "Gift",
                "education_group": "saknas" if i in (0, 9) else "Gymnasial",
                "diagnosis_group": "f43" if treated else "other",
                "insured_type_group": "Anställd",
                "age": 30 + i,
            }
        )
    return pl.DataFrame(rows)


def test_counts_and_percent_bases_match_a_hand_count():
    tidy = with_percent(
        b3_counts(person_rows(), CODES),
        "ownership",
    )

    def cell(block, category, group, ownership=TOTAL):
        row = tidy.filter(
            (pl.col("block") == block) & (pl.col("category") == category)
            & (pl.col("group") == group) & (pl.col("ownership") == ownership)
        )  # fmt: skip
        return row["n"].item(), row["percent"].item()

    # treated i = 0..7: Män at i = 0, 3, 6 -> 3 of 8
    assert cell("Kön", "Män", "Insats") == (3, 37.5)
    assert cell("Kön", "Kvinnor", "Insats", "Privat") == (1, 50.0)  # private: i = 6 (Män), 7
    # education: one missing in each group, left out of the percent base
    assert cell("Utbildningsnivå", "Gymnasial", "Insats") == (7, 100.0)
    assert cell("Utbildningsnivå", TOTAL, "Kontroll")[0] == 9
    assert cell("Huvuddiagnos (MiDAS)", "Stressreaktioner (F43)", "Insats") == (8, 100.0)
    assert cell("Kön", TOTAL, "Kontroll", "Okänd")[0] == 1


def test_published_b3_hides_small_cells_none_can_be_recomputed_and_they_print_as_dots():
    whole = with_percent(
        b3_counts(person_rows(), CODES),
        "ownership",
    )
    long = gated(whole, "table_b3_long.csv", min_count=5)
    tidy = whole.with_columns((long["n"] == "..").alias("suppressed"))
    assert tidy["suppressed"].any()
    assert (long.filter(pl.col("n") == "..")["percent"] == "..").all()
    for (_block, _group), part in tidy.with_row_index("i").group_by("block", "group"):
        cells = part.with_row_index("j")
        index = {(r["category"], r["ownership"]): r["j"] for r in cells.iter_rows(named=True)}
        constraints = []
        for (cat, own), j in index.items():
            if cat == TOTAL:
                constraints.append(
                    (j, [k for (c, o), k in index.items() if o == own and c != TOTAL])
                )
            if own == TOTAL:
                constraints.append(
                    (j, [k for (c, o), k in index.items() if c == cat and o != TOTAL])
                )
        leaks = leaking_cells(cells["n"].to_list(), constraints, cells["suppressed"].to_list())
        assert [i for i in leaks if cells["n"][i] < 5] == []
    printed = gated(
        printed_layout(whole, b3_columns(CODES)),
        "table_b3.csv",
        published={"table_b3_long.csv": long},
    )
    men_private = printed.filter((pl.col("block") == "Kön") & (pl.col("category") == "Män"))
    assert men_private["Insats Privat"].item() == ".."


def test_figure8_groups_by_year_of_first_gc001_and_care_level():
    d = dt.date
    cohort = pl.DataFrame(
        {
            "treated": [True, True, True, False],
            "care_level_group": ["primary_care", "primary_care", "specialised", None],
            "first_gc001": [d(2020, 3, 1), d(2020, 9, 1), d(2021, 1, 1), None],
            "start": [d(2019, 12, 1), d(2020, 1, 1), d(2020, 6, 1), d(2020, 1, 1)],
            "day_first_gc001": [10, 30, 200, None],
            "left_truncated": [False, False, False, False],
        }
    )
    main = figure8_data(cohort, "first_gc001", 180).filter(pl.col("variant") == "main")
    primary = main.filter(pl.col("care_level_group") == "primary_care").row(0, named=True)
    assert (primary["year"], primary["n"], primary["mean_days"], primary["median_days"]) == (
        2020,
        2,
        20.0,
        20.0,
    )
    by_start = figure8_data(cohort, "first_gc001", 180).filter(
        pl.col("variant") == "spell_start_year"
    )
    assert sorted(by_start["year"].to_list()) == [2019, 2020, 2020]


def test_printed_percents_round_half_up_as_the_report_does():
    # analysis-spec.md §0: 21 of 40 = 52.5 % prints as 53, 19 of 40 = 47.5 % as 48
    tidy = pl.DataFrame(
        {
            "block": ["Kön"] * 3,
            "category": ["Kvinnor", "Män", "Totalt"],
            "group": ["Insats"] * 3,
            "ownership": ["Totalt"] * 3,
            "n": [21, 19, 40],
            "percent": [52.5, 47.5, 100.0],
            "suppressed": [False, False, False],
        }
    )
    printed = printed_layout(tidy, [("Insats", "Totalt")])
    assert printed["Insats Totalt"].to_list() == ["21 (53)", "19 (48)", "40"]
