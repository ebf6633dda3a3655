"""Synthetic care contacts (`vardkontakter`), FK registrations (`fk_handelser`) and the
regions' own survey counts (`regionenkat`)."""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.stages.synth.params import SynthParams, day_number, draw_index
from pipeline.stages.synth.people import REGION_POPULATION_K, People
from pipeline.stages.synth.spells import Spells

FIRST_DAY, LAST_DAY = day_number("2019-01-01"), day_number("2024-12-31")
CARE_LEVEL_MIX = {"primarvard": 0.75, "specialiserad_oppen": 0.21, "sluten": 0.04}
OTHER_KVA = {
    "": 0.30,
    None: 0.25,
    "AU118": 0.15,
    "XS100": 0.12,
    "UX005": 0.1,
    "DV077": 0.05,
    "AW026": 0.03,
}
GC001_KVA = {
    "GC001": 0.82,
    "DV077 GC001": 0.08,
    "GC001 AW026": 0.05,
    "gc001 ": 0.03,
    " Gc001": 0.02,
}
OWN_REGION_SHARE = 0.92  # contacts with a provider in the region of residence
FOLLOW_UP_DAYS = 180  # further GC001 contacts fall within this many days of the first
OUTSIDE_SPELL_LEAD_DAYS = (20, 300)  # a GC001 outside every spell: this long before the first spell
SURVEY_YEARS = (2023, 2024)  # the region survey asked for these years (analysis-spec.md §8.1)
SURVEY_OVER_REGISTER = (1.3, 2.5)  # survey counts exceed the register's (report §3.5)
SURVEY_OVER_REGISTER_LOW = 150  # Västerbotten: register < 1 % of the survey


def care_contacts(
    rng: np.random.Generator, people: People, spells: Spells, params: SynthParams
) -> pl.DataFrame:
    """`vardkontakter` (typed, clean): background contacts plus every GC001 contact."""
    regions = np.array(people.regions)
    primary_delivered = np.isin(regions, params.primary_care_regions) & ~np.isin(
        regions, params.no_primary_care_regions
    )
    private_delivered = np.isin(regions, params.private_delivered_regions)

    # Background contacts, uniform over 2019-2024.
    years = (LAST_DAY - FIRST_DAY + 1) / 365.25
    n_contacts = rng.poisson(params.care_contacts_per_person_year * years, people.n)
    person = np.repeat(np.arange(people.n), n_contacts)
    m = len(person)
    day = rng.integers(FIRST_DAY, LAST_DAY + 1, m)
    region = np.where(
        rng.random(m) < OWN_REGION_SHARE,
        people.region[person],
        draw_index(rng, REGION_POPULATION_K, m),
    )
    level = draw_index(rng, CARE_LEVEL_MIX, m)
    private = (level == 0) & (rng.random(m) < params.private_share)
    delivered = (level != 0) | (primary_delivered[region] & (~private | private_delivered[region]))
    kva_values = list(OTHER_KVA)
    kva = np.array(kva_values, dtype=object)[draw_index(rng, OTHER_KVA, m)]
    background = _frame(people, person, day, kva, region, level, private).filter(
        pl.Series(delivered)
    )

    # GC001: the first contact of each treated spell, and follow-ups.
    treated = np.flatnonzero(spells.treated)
    first_day = spells.start[treated] + spells.gc001_day[treated]
    n_follow = rng.poisson(params.extra_gc001_contacts_mean, len(treated))
    which = np.repeat(np.arange(len(treated)), n_follow)
    follow_day = first_day[which] + rng.integers(1, FOLLOW_UP_DAYS + 1, len(which))
    follow_ok = (follow_day <= spells.end[treated][which]) & (follow_day <= LAST_DAY)
    which, follow_day = which[follow_ok], follow_day[follow_ok]
    rows = np.r_[np.arange(len(treated)), which]
    spell = treated[rows]
    gc_person = spells.person[spell]
    gc_day = np.r_[first_day, follow_day]
    specialised = spells.gc001_specialised[spell]
    gc_level = np.where(specialised, np.where(rng.random(len(rows)) < 0.9, 1, 2), 0)
    gc_private = spells.gc001_private[spell]

    # GC001 outside every spell: before the person's first spell (registration noise).
    n_outside = round(params.gc001_outside_spell_share * len(rows))
    first_spell = np.r_[0, np.flatnonzero(spells.person[1:] != spells.person[:-1]) + 1]
    pick = rng.choice(first_spell, size=min(n_outside, len(first_spell)), replace=False)
    lo, hi = OUTSIDE_SPELL_LEAD_DAYS
    out_day = spells.start[pick] - rng.integers(lo, hi + 1, len(pick))
    ok = (out_day >= FIRST_DAY) & primary_delivered[people.region[spells.person[pick]]]
    pick, out_day = pick[ok], out_day[ok]
    gc_person = np.r_[gc_person, spells.person[pick]]
    gc_day = np.r_[gc_day, out_day]
    gc_level = np.r_[gc_level, np.zeros(len(pick), dtype=np.int64)]
    gc_private = np.r_[gc_private, np.zeros(len(pick), dtype=bool)]
    gc_kva = np.array(list(GC001_KVA), dtype=object)[draw_index(rng, GC001_KVA, len(gc_day))]
    gc001 = _frame(
        people, gc_person, gc_day, gc_kva, people.region[gc_person], gc_level, gc_private
    )
    return pl.concat([background, gc001]).sort("lopnr", "datum", maintain_order=True)


def _frame(
    people: People,
    person: np.ndarray,
    day: np.ndarray,
    kva: np.ndarray,
    region: np.ndarray,
    level: np.ndarray,
    private: np.ndarray,
) -> pl.DataFrame:
    """A `vardkontakter` frame from aligned arrays (day numbers, region/level positions)."""
    return pl.DataFrame(
        {
            "lopnr": people.lopnr[person],
            "datum": pl.Series(day.astype(np.int32)).cast(pl.Date),
            "kva": pl.Series(kva.tolist(), dtype=pl.String),
            "region": np.array(people.regions)[region],
            "vardniva": np.array(list(CARE_LEVEL_MIX))[level],
            "regi": np.where(private, "privat", "offentlig"),
        }
    )


def fk_registrations(
    rng: np.random.Generator, people: People, spells: Spells, params: SynthParams
) -> pl.DataFrame:
    """`fk_handelser` (typed, clean): registrations inside spells at the §5.3 rates and timing."""
    end = np.minimum(spells.end, params.data_end)
    length = end - spells.start + 1
    parts = []
    for kind in ("avstamningsmote", "sassam", "plan_fk", "plan_arbetsgivare"):
        rate = np.where(
            spells.treated, params.fk_rates["treated"][kind], params.fk_rates["control"][kind]
        )
        spell = np.flatnonzero(rng.random(spells.n) < rate)
        u = rng.random(len(spell))
        n_days = length[spell]
        if kind == "avstamningsmote":  # late in the spell (report: often after 1.5 years)
            offset = (0.5 + 0.5 * u) * (n_days - 1)
        elif kind == "plan_fk":  # mostly in the second half-year
            offset = np.where(n_days > 364, 183 + u * 181, u * (n_days - 1))
        elif kind == "plan_arbetsgivare":  # mostly in the first half-year
            offset = 14 + u * (np.minimum(n_days, 180) - 14)
            offset = np.where(n_days > 14, offset, u * (n_days - 1))
        else:
            offset = u * (n_days - 1)
        day = spells.start[spell] + offset.astype(np.int64)
        parts.append(
            pl.DataFrame(
                {
                    "lopnr": people.lopnr[spells.person[spell]],
                    "datum": pl.Series(day.astype(np.int32)).cast(pl.Date),
                    "handelse": np.full(len(spell), kind),
                }
            )
        )
    return pl.concat(parts).filter(pl.col("datum") <= pl.lit(params.data_end).cast(pl.Date))


def region_survey(
    rng: np.random.Generator, contacts: pl.DataFrame, params: SynthParams
) -> pl.DataFrame:
    """`regionenkat`: per region and survey year, the count the region reports."""
    registered = (
        contacts.filter(pl.col("kva").str.to_uppercase().str.contains("GC001"))
        .group_by(pl.col("region"), pl.col("datum").dt.year().alias("ar"))
        .len()
    )
    regions = list(REGION_POPULATION_K)
    reg = {(r, y): n for r, y, n in registered.iter_rows()}
    delivered = [r for r in params.primary_care_regions if r not in params.no_primary_care_regions]
    rate_per_k = {}
    for year in SURVEY_YEARS:
        total = sum(reg.get((r, year), 0) for r in delivered)
        rate_per_k[year] = total / sum(REGION_POPULATION_K[r] for r in delivered)
    rows = []
    for region in regions:  # 21 regions x 2 years: a loop over regions, not persons
        factor = rng.uniform(*SURVEY_OVER_REGISTER)
        for year in SURVEY_YEARS:
            if region in params.low_registration_regions:
                count = SURVEY_OVER_REGISTER_LOW * max(reg.get((region, year), 0), 1)
            elif region in delivered:
                count = factor * reg.get((region, year), 0)
            else:
                count = factor * rate_per_k[year] * REGION_POPULATION_K[region]
            count = round(count * rng.uniform(0.9, 1.1))
            reported = None if region in params.survey_missing_regions else count
            rows.append({"region": region, "ar": year, "antal_insatser": reported})
    return pl.DataFrame(
        rows, schema={"region": pl.String, "ar": pl.Int16, "antal_insatser": pl.Int64}
    )
