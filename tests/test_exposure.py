"""GC001 exposure: hand-built edges of the range join and recovery of the planted exposure."""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipeline.core import config
from pipeline.stages.exposure import ExposureConfig, exposure_of_spells, intervention_locations
from pipeline.stages.spells import build_spells

CFG = config.compose()
CONF = ExposureConfig.from_config(CFG)
GROUPS = [dict(g) for g in CFG.codes.diagnosis_groups]


def d(iso: str) -> dt.date:
    return dt.date.fromisoformat(iso)


SPELLS = pl.DataFrame(
    {
        "spell_id": [0, 1, 2],
        "lopnr": [1, 1, 2],
        "start": [d("2020-01-01"), d("2020-03-01"), d("2018-06-01")],
        "end": [d("2020-01-31"), d("2020-03-31"), d("2019-06-30")],
    }
)


def contacts(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "lopnr": pl.Int64,
            "datum": pl.Date,
            "kva": pl.String,
            "region": pl.String,
            "vardniva": pl.String,
            "regi": pl.String,
        },
        orient="row",
    )


def test_first_and_last_day_of_a_spell_count_and_a_contact_between_spells_does_not():
    rows = [
        (1, d("2020-01-01"), "GC001", "12", "primarvard", "offentlig"),  # first day of spell 0
        (1, d("2020-02-15"), "GC001", "12", "primarvard", "offentlig"),  # between spells
        (1, d("2020-03-31"), "DV077 GC001", "14", "primarvard", "privat"),  # last day of spell 1
    ]
    out = exposure_of_spells(SPELLS, contacts(rows), CONF).sort("spell_id")
    assert out["treated"].to_list() == [True, True, False]
    assert out["day_first_gc001"].to_list() == [0, 30, None]
    assert out["n_gc001"].to_list() == [1, 1, 0]
    assert out["has_dv077"].to_list() == [False, True, False]
    assert out["regi_first"].to_list() == ["offentlig", "privat", None]
    located = intervention_locations(SPELLS, contacts(rows), CONF)
    assert located["n_inside_spell"].sum() == 2 and located["n_outside_spell"].sum() == 1


def test_contacts_before_2019_do_not_count_and_day_origin_one_shifts_day_numbers():
    rows = [
        (2, d("2018-12-31"), "GC001", "12", "primarvard", "offentlig"),  # outside the window
        (2, d("2019-01-10"), "GC001", "12", "primarvard", "offentlig"),
    ]
    out = exposure_of_spells(SPELLS, contacts(rows), CONF).filter(pl.col("spell_id") == 2)
    assert out["first_gc001"].item() == d("2019-01-10")
    assert out["n_gc001"].item() == 1
    origin_1 = ExposureConfig.from_config(config.compose(["spells.day_origin=1"]))
    shifted = exposure_of_spells(SPELLS, contacts(rows), origin_1).filter(pl.col("spell_id") == 2)
    assert shifted["day_first_gc001"].item() == out["day_first_gc001"].item() + 1


def test_first_and_latest_provider_and_same_day_ties():
    rows = [
        (1, d("2020-01-05"), "GC001", "14", "sluten", "offentlig"),
        (1, d("2020-01-05"), "GC001", "12", "primarvard", "privat"),  # same day: primary care first
        (1, d("2020-01-20"), "GC001 AW026", "13", "specialiserad_oppen", "offentlig"),
    ]
    out = (
        exposure_of_spells(SPELLS, contacts(rows), CONF)
        .filter(pl.col("spell_id") == 0)
        .row(0, named=True)
    )
    assert (out["vardniva_first"], out["region_first"], out["regi_first"]) == (
        "primarvard",
        "12",
        "privat",
    )
    assert (out["vardniva_latest"], out["region_latest"]) == ("specialiserad_oppen", "13")
    assert out["n_gc001"] == 3 and out["has_aw026"]


def test_dv077_as_exposure_code_in_the_sensitivity_run():
    rows = [(1, d("2020-01-03"), "DV077", "12", "primarvard", "offentlig")]
    wide = ExposureConfig.from_config(config.compose(["exposure.codes=[GC001,DV077,AW026]"]))
    assert exposure_of_spells(SPELLS, contacts(rows), CONF)["treated"].sum() == 0
    assert exposure_of_spells(SPELLS, contacts(rows), wide)["treated"].sum() == 1


def test_planted_exposure_is_recovered_from_the_synthetic_delivery(tiny):
    clean = tiny.clean["sjukpenning"].with_columns(
        pl.col("diagnos").str.replace_all(".", "", literal=True).str.to_uppercase()
    )
    spells = build_spells(clean.lazy(), 5, d("2025-05-31"), GROUPS, "saknas").collect()
    staged_like = tiny.clean["vardkontakter"].with_columns(
        pl.col("kva").str.strip_chars().str.to_uppercase()
    )
    out = spells.join(exposure_of_spells(spells, staged_like, CONF), on="spell_id")
    truth = tiny.truth_spells.join(out, on=["lopnr", "start"], how="inner")
    assert truth.height == tiny.truth_spells.height
    assert truth.filter(pl.col("treated") != pl.col("treated_right")).height == 0
    treated = truth.filter("treated")
    assert (treated["day_first_gc001"] == treated["gc001_day"]).all()
    assert (treated["vardniva_first"] != "primarvard").sum() == treated["gc001_specialised"].sum()
