"""Cohort: population rules on hand-built persons, unit flags, attrition, synthetic recovery."""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipeline.core import config
from pipeline.stages.cohort import CohortConfig, build_cohort

CFG = config.compose()
CONF = CohortConfig.from_config(CFG)


def d(iso: str) -> dt.date:
    return dt.date.fromisoformat(iso)


def _spell(spell_id, lopnr, start, end, *, treated=False, first=None, last=None, censored=False,
           forsakradtyp="anstalld", region_first=None):  # fmt: skip
    start, end = d(start), d(end)
    return {
        "spell_id": spell_id, "lopnr": lopnr, "start": start, "end": end,
        "gross_days": (end - start).days + 1, "net_days": float((end - start).days + 1),
        "n_periods": 1, "diagnos": "F438", "diagnosis_group": "f43",
        "forsakradtyp": forsakradtyp, "censored": censored,
        "treated": treated, "first_gc001": d(first) if first else None,
        "day_first_gc001": (d(first) - start).days if first else None,
        "n_gc001": int(treated), "regi_first": "offentlig" if treated else None,
        "region_first": region_first, "vardniva_first": "primarvard" if treated else None,
        "last_gc001": d(last or first) if treated else None,
        "regi_latest": "privat" if treated else None,
        "region_latest": region_first, "vardniva_latest": "primarvard" if treated else None,
        "has_dv077": False, "has_aw026": False,
    }  # fmt: skip


def _background(lopnr, birth_year, lan="12", education=("4",) * 7, years=range(2018, 2025)):
    return [
        {"lopnr": lopnr, "ar": y, "kon": 2, "fodelsear": birth_year, "fodelseland": "sverige",
         "civilstand": "G", "sun2000niva": e, "lan": lan}
        for y, e in zip(years, education, strict=False)
    ]  # fmt: skip


def _run(spells, background, with_intervention=(), conf=CONF):
    spell_frame = pl.DataFrame(spells)
    exposure_cols = [c for c in spell_frame.columns if c not in (
        "lopnr", "start", "end", "gross_days", "net_days", "n_periods", "diagnos",
        "diagnosis_group", "forsakradtyp", "censored")]  # fmt: skip
    bakgrund = pl.DataFrame(background).with_columns(pl.col("ar").cast(pl.Int16))
    persons = pl.Series("lopnr", list(with_intervention), dtype=pl.Int64)
    cohort, steps, _ = build_cohort(
        spell_frame.drop([c for c in exposure_cols if c != "spell_id"]),
        spell_frame.select(exposure_cols),
        bakgrund.lazy(),
        persons,
        CFG.codes,
        conf,
    )
    return cohort, steps


def test_person_treated_in_two_spells_gets_one_table2_row_at_the_latest_gc001():
    spells = [
        _spell(
            1, 10, "2020-01-01", "2020-06-30", treated=True, first="2020-02-01", last="2020-05-01"
        ),
        _spell(2, 10, "2021-01-01", "2021-03-31", treated=True, first="2021-01-10"),
        _spell(3, 10, "2022-01-01", "2022-03-31"),  # untreated spell of a treated person
    ]
    cohort, _ = _run(spells, _background(10, 1980), with_intervention=[10])
    assert cohort["spell_id"].to_list() == [1, 2]
    assert cohort.filter("person_row")["spell_id"].to_list() == [2]
    assert cohort.filter("income_row")["spell_id"].to_list() == [2]
    assert (
        cohort.filter("person_row")["ownership"].to_list() == ["privat"]
        if "ownership" in cohort.columns
        else True
    )


def test_controls_latest_ended_spell_else_latest_and_the_30_day_rule():
    spells = [
        _spell(1, 20, "2020-01-01", "2020-03-31"),
        _spell(2, 20, "2021-01-01", "2021-01-29"),  # 29 days: excluded
        _spell(3, 20, "2024-01-01", "2025-05-31", censored=True),
        _spell(4, 21, "2023-01-01", "2025-05-31", censored=True),  # all censored: the latest
        _spell(5, 22, "2020-01-01", "2020-01-20"),  # only short spells: leaves the study
    ]
    bg = _background(20, 1970) + _background(21, 1970) + _background(22, 1970)
    cohort, steps = _run(spells, bg)
    assert cohort["spell_id"].to_list() == [1, 3, 4]
    assert cohort.filter("person_row")["spell_id"].to_list() == [1, 4]
    assert cohort.filter("income_row")["spell_id"].to_list() == [3, 4]
    min_days = next(s for s in steps if s["step"] == "min_days")
    assert (min_days["n_spells_control"], min_days["n_persons_control"]) == (3, 2)


def test_age_boundaries_region_and_window():
    spells = [
        _spell(1, 1, "2020-03-01", "2020-06-01"),  # age 18 in 2020
        _spell(2, 2, "2020-03-01", "2020-06-01"),  # age 67
        _spell(3, 3, "2020-03-01", "2020-06-01"),  # age 68
        _spell(4, 4, "2020-03-01", "2020-06-01"),  # lives in Stockholm (01)
        _spell(5, 5, "2018-10-01", "2019-06-01"),  # starts before 2019
        _spell(6, 6, "2025-01-02", "2025-03-01"),  # starts after 2024
    ]
    bg = (
        _background(1, 2002) + _background(2, 1953) + _background(3, 1952)
        + _background(4, 1980, lan="01") + _background(5, 1980) + _background(6, 1980)
    )  # fmt: skip
    cohort, _ = _run(spells, bg)
    assert cohort["spell_id"].to_list() == [1, 2]
    overlap = CohortConfig.from_config(config.compose(["cohort.window_rule=overlap"]))
    cohort, _ = _run(spells, bg, conf=overlap)
    assert cohort["spell_id"].to_list() == [1, 2, 5]
    assert cohort.filter(pl.col("spell_id") == 5)["left_truncated"].item()


def test_gc001_outside_every_spell_excludes_the_person_or_makes_a_control():
    spells = [_spell(1, 30, "2020-01-01", "2020-04-01")]
    cohort, _ = _run(spells, _background(30, 1980), with_intervention=[30])
    assert cohort.height == 0
    keep = CohortConfig.from_config(config.compose(["cohort.gc001_outside_spell=control"]))
    cohort, _ = _run(spells, _background(30, 1980), with_intervention=[30], conf=keep)
    assert cohort["spell_id"].to_list() == [1] and not cohort["treated"].item()


def test_education_falls_back_to_the_last_known_year_unless_configured_not_to():
    edu = ("3", "3", "5", "5", "5", "5", None)  # 2024 missing
    spells = [_spell(1, 40, "2024-02-01", "2024-06-01")]
    cohort, _ = _run(spells, _background(40, 1980, education=edu))
    assert cohort["education_group"].item() == "Eftergymnasial"
    strict = CohortConfig.from_config(config.compose(["covariates.education_fallback=none"]))
    cohort, _ = _run(spells, _background(40, 1980, education=edu), conf=strict)
    assert cohort["education_group"].item() == "saknas"


def test_attrition_never_grows_and_ends_in_the_cohort(tiny):
    from pipeline.stages.cohort import persons_with_intervention_contact
    from pipeline.stages.exposure import ExposureConfig, exposure_of_spells
    from pipeline.stages.spells import build_spells

    clean = tiny.clean["sjukpenning"].with_columns(
        pl.col("diagnos").str.replace_all(".", "", literal=True).str.to_uppercase()
    )
    groups = [dict(g) for g in CFG.codes.diagnosis_groups]
    spells = build_spells(clean.lazy(), 5, d("2025-05-31"), groups, "saknas").collect()
    contacts = tiny.clean["vardkontakter"].with_columns(
        pl.col("kva").str.strip_chars().str.to_uppercase()
    )
    exposure = exposure_of_spells(spells, contacts, ExposureConfig.from_config(CFG))
    persons = persons_with_intervention_contact(contacts.lazy(), CONF)
    cohort, steps, at_risk = build_cohort(
        spells, exposure, tiny.clean["bakgrund"].lazy(), persons, CFG.codes, CONF
    )
    # The at-risk spells are the cohort's plus exactly those the last three filters drop:
    # untreated spells, short or of persons with GC001 (in or outside their spells).
    dropped = at_risk.join(cohort, on="spell_id", how="anti")
    person_treated = at_risk.group_by("lopnr").agg(pl.col("treated").any().alias("pt"))
    dropped = dropped.join(person_treated, on="lopnr")
    with_gc001 = pl.col("pt") | pl.col("lopnr").is_in(persons.implode())
    assert at_risk.height == steps[-5]["n_spells"]
    assert cohort.join(at_risk, on="spell_id", how="anti").height == 0
    assert dropped.filter(pl.col("treated")).height == 0
    assert dropped.filter(~with_gc001 & (pl.col("gross_days") >= 30)).height == 0
    assert dropped.filter(~pl.col("pt") & pl.col("lopnr").is_in(persons.implode())).height > 0
    counts = [s["n_spells"] for s in steps[:-1]]
    assert counts == sorted(counts, reverse=True)
    assert steps[-2]["n_spells"] == cohort.height
    assert steps[-1]["n_persons"] == cohort["lopnr"].n_unique() == cohort["person_row"].sum()
    # Planted truth: treated cohort spells are exactly the planted treated spells that
    # pass window, age and residence (the background row of the start year).
    bg = tiny.clean["bakgrund"].select("lopnr", pl.col("ar").cast(pl.Int32), "fodelsear", "lan")
    expected = (
        tiny.truth_spells.filter("treated")
        .with_columns(pl.col("start").dt.year().cast(pl.Int32).alias("ar"))
        .join(bg, on=["lopnr", "ar"])
        .filter(
            pl.col("start").is_between(d("2019-01-01"), d("2024-12-31")),
            (pl.col("ar") - pl.col("fodelsear")).is_between(18, 67),
            pl.col("lan").is_in(CONF.regions),
        )
    )
    got = cohort.filter("treated").select("lopnr", "start").sort("lopnr", "start")
    assert got.equals(expected.select("lopnr", "start").sort("lopnr", "start"))


def test_control_ownership_is_the_last_primary_care_contact_within_the_lookback():
    from pipeline.stages.cohort import add_ownership

    cohort = pl.DataFrame(
        {
            "spell_id": [1, 2, 3],
            "lopnr": [1, 2, 3],
            "start": [d("2021-06-01")] * 3,
            "treated": [False, False, True],
            "regi_latest": [None, None, "privat"],
        }
    )
    contacts = pl.DataFrame(
        {
            "lopnr": [1, 1, 1, 2],
            "datum": [d("2020-05-31"), d("2021-01-01"), d("2021-06-02"), d("2020-05-01")],
            "vardniva": ["primarvard", "primarvard", "primarvard", "primarvard"],
            "regi": ["offentlig", "privat", "offentlig", "privat"],
        }
    )
    out = add_ownership(cohort, contacts, 365, "primarvard", "okand")
    # person 1: the 2021-01-01 contact (2021-06-02 is after the start, 2020-05-31 too early
    # would lose anyway); person 2: only a contact 396 days before -> okand; treated: latest GC001
    assert out["ownership"].to_list() == ["privat", "okand", "privat"]
