"""Synthetic persons and their yearly background rows (`bakgrund`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.stages.synth.params import SynthParams, draw_index

# Residents per region in thousands (SCB, 2023, rounded): weights for `lan`.
REGION_POPULATION_K: dict[str, float] = {
    "01": 2450, "03": 400, "04": 300, "05": 470, "06": 370, "07": 205, "08": 247,
    "09": 61, "10": 160, "12": 1420, "13": 340, "14": 1750, "17": 283, "18": 306,
    "19": 280, "20": 288, "21": 288, "22": 245, "23": 132, "24": 275, "25": 250,
}  # fmt: skip

# Shares calibrated to Table B3's control column (analysis-spec.md §5.2).
SHARE_WOMEN = 0.61
AGE_BANDS = ((18, 39, 0.385), (40, 59, 0.455), (60, 67, 0.14), (16, 17, 0.01), (68, 71, 0.01))
BIRTH_COUNTRY = {"sverige": 0.72, "norden": 0.09, "eu": 0.07, "ovriga": 0.12}
CIVIL_STATUS = {
    "OG": 0.46,
    "G": 0.385,
    "S": 0.135,
    "Ä": 0.015,
    "RP": 0.002,
    "SP": 0.002,
    "EP": 0.001,
}
EDUCATION = {"1": 0.02, "2": 0.09, "3": 0.21, "4": 0.30, "5": 0.17, "6": 0.19, "7": 0.02}
EDUCATION_NEVER_KNOWN = 0.012  # persons without any education record
MOVE_PER_YEAR = 0.01  # chance of moving to another region in a year
REFERENCE_YEAR = 2021  # ages are drawn for this year
# Median monthly gross wage (SEK) by education level 1..7; women earn 10 % less.
WAGE_BY_EDUCATION = np.array([25_000, 25_000, 28_500, 30_000, 34_000, 37_000, 42_000])


@dataclass(frozen=True)
class People:
    """One entry per person (arrays aligned by person index 0..n-1)."""

    lopnr: np.ndarray  # int64, unique, pseudonymous
    sex: np.ndarray  # int8, 1 man / 2 woman
    birth_year: np.ndarray  # int16
    region: np.ndarray  # int64 position in REGIONS (region of residence, first year)
    education: np.ndarray  # int64 SUN2000 level 1..7, 0 = never known
    wage_sek: np.ndarray  # float64 monthly wage when working
    regions: tuple[str, ...]

    @property
    def n(self) -> int:
        """Number of persons."""
        return len(self.lopnr)


def draw_people(rng: np.random.Generator, params: SynthParams) -> People:
    """Persons with sex, birth year, region, education and wage."""
    n = params.persons
    # Unique ids in increasing order with random steps, then shuffled.
    lopnr = 1_000_000 + np.cumsum(rng.integers(1, 8, n)).astype(np.int64)
    lopnr = rng.permutation(lopnr)
    sex = np.where(rng.random(n) < SHARE_WOMEN, 2, 1).astype(np.int8)
    band = rng.choice(len(AGE_BANDS), n, p=[b[2] for b in AGE_BANDS])
    lo = np.array([b[0] for b in AGE_BANDS])[band]
    hi = np.array([b[1] for b in AGE_BANDS])[band]
    age = rng.integers(lo, hi + 1)
    regions = tuple(REGION_POPULATION_K)
    region = draw_index(rng, REGION_POPULATION_K, n)
    education = draw_index(rng, EDUCATION, n) + 1
    education[rng.random(n) < EDUCATION_NEVER_KNOWN] = 0
    wage = WAGE_BY_EDUCATION[np.maximum(education, 1) - 1] * np.where(sex == 2, 0.9, 1.0)
    wage = wage * np.exp(rng.normal(0.0, 0.3, n))
    return People(
        lopnr=lopnr,
        sex=sex,
        birth_year=(REFERENCE_YEAR - age).astype(np.int16),
        region=region,
        education=education,
        wage_sek=wage,
        regions=regions,
    )


def background_rows(rng: np.random.Generator, people: People, params: SynthParams) -> pl.DataFrame:
    """`bakgrund`: one row per person and year; education missing in the latest year."""
    years = np.array(params.background_years, dtype=np.int16)
    n, n_years = people.n, len(years)
    person = np.repeat(np.arange(n), n_years)
    year = np.tile(years, n)
    # Residence: the first region, with a small yearly chance of moving (persists).
    moved = rng.random((n, n_years)) < MOVE_PER_YEAR
    moved[:, 0] = False
    new_region = draw_index(rng, REGION_POPULATION_K, n * n_years).reshape(n, n_years)
    move_id = np.maximum.accumulate(np.where(moved, np.arange(n_years), 0), axis=1)
    region = np.where(
        move_id == 0, people.region[:, None], new_region[np.arange(n)[:, None], move_id]
    )
    civil = draw_index(rng, CIVIL_STATUS, n)
    country = draw_index(rng, BIRTH_COUNTRY, n)
    education = people.education[person].astype(str)
    education_known = (people.education[person] > 0) & (year != params.education_missing_year)
    region_codes = np.array(people.regions)
    return pl.DataFrame(
        {
            "lopnr": people.lopnr[person],
            "ar": year,
            "kon": people.sex[person],
            "fodelsear": people.birth_year[person],
            "fodelseland": np.array(list(BIRTH_COUNTRY))[country][person],
            "civilstand": np.array(list(CIVIL_STATUS))[civil][person],
            # built as text with nulls, not inferred from an object array (which gives
            # Object when the first rows are all unknown: seed 20260650)
            "sun2000niva": pl.Series(education).zip_with(
                pl.Series(education_known),
                pl.repeat(None, len(education), dtype=pl.String, eager=True),
            ),
            "lan": region_codes[region.ravel()],
        }
    )
