"""Typed view of `cfg.synth` (conf/synth/default.yaml) and the calendar helpers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core import config
from pipeline.core.errors import PipelineError

EPOCH = dt.date(1970, 1, 1)


def day_number(date: str | dt.date) -> int:
    """Days since 1970-01-01 of `date` (ISO string or date)."""
    d = dt.date.fromisoformat(date) if isinstance(date, str) else date
    return (d - EPOCH).days


def month_index(days: np.ndarray, first_month: int) -> np.ndarray:
    """Months since `first_month` (YYYYMM) of each day number; int64."""
    dates = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    first = (first_month // 100 - 1970) * 12 + first_month % 100 - 1
    return dates - first


@dataclass(frozen=True)
class SynthParams:
    """Everything the generator needs, read from `cfg.synth` (see its comments)."""

    seed: int
    persons: int
    first_spell_start: int  # day numbers (days since 1970-01-01)
    last_spell_start: int
    data_end: int
    agi_first_month: int
    agi_last_month: int
    background_years: tuple[int, ...]
    education_missing_year: int
    extra_spells_mean: float
    spell_gap_mean_days: float
    length_median_days: float
    length_sigma: float
    length_max_days: int
    diagnosis_mix: dict[str, float]
    diagnosis_length_factor: dict[str, float]
    insured_type_mix: dict[str, float]
    extent_mix: dict[int, float]
    period_mean_days: float
    offer_share: float
    offer_diagnosis_factor: dict[str, float]
    gc001_day_median: float
    gc001_day_sigma: float
    gc001_timing: str  # lognormal | hazard
    gc001_hazard_bands: tuple[tuple[int, float], ...]  # (first spell day, rate per 1 000 days)
    gc001_length_dependence: float
    extra_gc001_contacts_mean: float
    gc001_outside_spell_share: float
    care_contacts_per_person_year: float
    extra_days_intercept: float
    extra_days_slope_per_180: float
    return_log_odds_treated: float
    primary_care_regions: tuple[str, ...]
    no_primary_care_regions: tuple[str, ...]
    low_registration_regions: tuple[str, ...]
    private_delivered_regions: tuple[str, ...]
    private_share: float
    survey_missing_regions: tuple[str, ...]
    fk_rates: dict[str, dict[str, float]]
    bad_rows_base: int
    bad_rows_rate: float
    regions: tuple[str, ...]

    @property
    def agi_months(self) -> int:
        """Number of calendar months in AGI coverage."""
        first, last = self.agi_first_month, self.agi_last_month
        return (last // 100 - first // 100) * 12 + last % 100 - first % 100 + 1

    @classmethod
    def from_config(cls, synth: Any, codes: Any) -> SynthParams:
        """Build from the composed `cfg.synth` and `cfg.codes` slices."""
        s = synth
        config.check_choices({"synth.gc001_timing": (str(s.gc001_timing), {"lognormal", "hazard"})})
        starts = [int(a) for a, _ in s.gc001_hazard_bands]
        if not starts or starts[0] != 0 or starts != sorted(set(starts)):
            raise PipelineError(
                f"config synth.gc001_hazard_bands={starts}: expected increasing first days from 0"
            )
        return cls(
            seed=int(s.seed),
            persons=int(s.sizes[s.size]),
            first_spell_start=day_number(s.first_spell_start),
            last_spell_start=day_number(s.last_spell_start),
            data_end=day_number(s.data_end),
            agi_first_month=int(s.agi_first_month),
            agi_last_month=int(s.agi_last_month),
            background_years=tuple(int(y) for y in s.background_years),
            education_missing_year=int(s.education_missing_year),
            extra_spells_mean=float(s.extra_spells_mean),
            spell_gap_mean_days=float(s.spell_gap_mean_days),
            length_median_days=float(s.length_median_days),
            length_sigma=float(s.length_sigma),
            length_max_days=int(s.length_max_days),
            diagnosis_mix=dict(s.diagnosis_mix),
            diagnosis_length_factor=dict(s.diagnosis_length_factor),
            insured_type_mix=dict(s.insured_type_mix),
            extent_mix={int(k): float(v) for k, v in s.extent_mix.items()},
            period_mean_days=float(s.period_mean_days),
            offer_share=float(s.offer_share),
            offer_diagnosis_factor=dict(s.offer_diagnosis_factor),
            gc001_day_median=float(s.gc001_day_median),
            gc001_day_sigma=float(s.gc001_day_sigma),
            gc001_timing=str(s.gc001_timing),
            gc001_hazard_bands=tuple((int(a), float(r)) for a, r in s.gc001_hazard_bands),
            gc001_length_dependence=float(s.gc001_length_dependence),
            extra_gc001_contacts_mean=float(s.extra_gc001_contacts_mean),
            gc001_outside_spell_share=float(s.gc001_outside_spell_share),
            care_contacts_per_person_year=float(s.care_contacts_per_person_year),
            extra_days_intercept=float(s.effect.extra_days_intercept),
            extra_days_slope_per_180=float(s.effect.extra_days_slope_per_180),
            return_log_odds_treated=float(s.effect.return_log_odds_treated),
            primary_care_regions=tuple(s.primary_care_regions),
            no_primary_care_regions=tuple(s.no_primary_care_regions),
            low_registration_regions=tuple(s.low_registration_regions),
            private_delivered_regions=tuple(s.private_delivered_regions),
            private_share=float(s.private_share),
            survey_missing_regions=tuple(s.survey_missing_regions),
            fk_rates={g: dict(r) for g, r in s.fk_rates.items()},
            bad_rows_base=int(s.bad_rows.base),
            bad_rows_rate=float(s.bad_rows.rate),
            regions=tuple(str(r) for r in codes.regions),
        )


def draw_index(rng: np.random.Generator, weights: dict[Any, float], n: int) -> np.ndarray:
    """`n` draws of positions into `list(weights)`, with its (normalised) weights; int64."""
    w = np.array(list(weights.values()), dtype=float)
    return rng.choice(len(w), size=n, p=w / w.sum()).astype(np.int64)
