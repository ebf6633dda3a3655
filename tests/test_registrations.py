"""§5.3 FK registrations and §3.5 register-vs-survey, on hand-built rows."""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipeline.stages.registrations import (
    registered_vs_reported,
    registrations_in_spells,
    share_rows,
)

d = dt.date
KINDS = ["avstamningsmote", "sassam", "plan_fk", "plan_arbetsgivare"]
ANY = ["avstamningsmote", "plan_fk", "plan_arbetsgivare"]


def test_registrations_count_on_the_first_and_last_day_and_any_is_a_union():
    spells = pl.DataFrame(
        {
            "spell_id": [1, 2, 3, 4],
            "lopnr": [10, 20, 30, 40],
            "start": [d(2020, 1, 1)] * 4,
            "end": [d(2020, 6, 30)] * 4,
            "treated": [True, True, False, False],
        }
    )
    events = pl.DataFrame(
        {
            "lopnr": [10, 10, 20, 30, 40],
            "datum": [d(2020, 1, 1), d(2020, 6, 30), d(2020, 7, 1), d(2020, 3, 1), d(2020, 3, 1)],
            "handelse": ["avstamningsmote", "plan_fk", "plan_fk", "sassam", "plan_arbetsgivare"],
        }
    )
    found = registrations_in_spells(spells, events)
    assert sorted(found["day"].to_list()) == [0, 60, 60, 181]  # 2020-07-01 is after spell 2
    shares = share_rows(spells, found, KINDS, ANY)
    row = {(r["registration"], r["group"]): r for r in shares.iter_rows(named=True)}
    assert (row[("any_fk", "Insats")]["count"], row[("any_fk", "Insats")]["n"]) == (1, 2)
    assert row[("any_fk", "Kontroll")]["count"] == 1  # sassam is not "meeting or plan"
    assert row[("sassam", "Kontroll")]["count"] == 1
    assert row[("any_fk", "Insats")]["diff_pp"] == 0.0


def test_the_region_rule_drops_no_primary_care_and_under_one_percent():
    registered = pl.DataFrame(
        {
            "region": ["03", "03", "20", "24"],
            "year": [2023, 2024, 2023, 2023],
            "vardniva": ["primarvard", "primarvard", "specialiserad_oppen", "primarvard"],
            "n_contacts": [100, 120, 9, 2],
            "n_persons": [80, 90, 9, 2],
        }
    )
    survey = pl.DataFrame(
        {"region": ["03", "03", "20", "20", "24", "24"], "ar": [2023, 2024] * 3,
         "antal_insatser": [150, 160, 100, 120, 300, 310]}
    )  # fmt: skip
    regions = {"03": "Uppsala", "20": "Dalarna", "24": "Västerbotten"}
    table, rule = registered_vs_reported(registered, survey, regions, 0.01, "primarvard")
    reasons = dict(zip(rule["region"], rule["drop_reason"], strict=True))
    assert reasons["03"] is None
    assert reasons["20"] == "no primary-care GC001 in the register"
    assert reasons["24"].startswith("register < 1%")  # 2 / 610
    assert (
        table.filter((pl.col("region") == "03") & (pl.col("year") == 2024))["register_share"].item()
        == 0.75
    )
