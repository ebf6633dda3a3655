"""Synthetic sick-leave spells, their GC001 exposure, and their benefit periods (`sjukpenning`).

A spell is drawn as a whole (start, baseline length, diagnosis, insured type),
then exposed: with some probability it is offered GC001 on day T (drawn
independently of its length by default; `gc001_timing: hazard` draws T from a
planted piecewise-constant hazard instead) and it is treated when day T falls
inside it and the contact is registered. A treated spell lasts `extra_days` longer (the
planted effect). Finally each spell is cut into benefit periods that abut,
overlap, repeat and leave short gaps, as MiDAS periods do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.stages.synth.params import SynthParams, day_number, draw_index
from pipeline.stages.synth.people import People

DIAGNOSIS_GROUPS = ("f43", "other_psych", "musculoskeletal", "other", "missing")
ICD_CODES: dict[str, tuple[str, ...]] = {
    "f43": ("F43.0", "F43.1", "F43.2", "F43.8", "F43.9"),
    "other_psych": (
        "F32.0",
        "F32.1",
        "F32.9",
        "F33.1",
        "F41.1",
        "F41.2",
        "F41.9",
        "F48.0",
        "F10.2",
    ),
    "musculoskeletal": ("M54.5", "M54.2", "M51.1", "M75.1", "M79.1", "M17.1", "M19.9"),
    "other": ("C50.9", "I21.9", "J44.9", "S82.0", "G35", "K50.9", "O26.8", "R53", "Z73.0", "G93.3"),
}
INSURED_TYPES = ("anstalld", "anstalld_dag1", "arbetslos", "egenforetagare", "ovrig")
MIN_GAP_BETWEEN_SPELLS = 6  # > the default 5-day chaining rule (analysis-spec.md §2)
SPECIALISED_ROUTE_SHARE = 0.05  # first GC001 in specialised care (report: 3 799 of 75 955)
SPECIALISED_ROUTE_SHARE_2024 = 0.15  # psychiatric outpatient care registers more from 2024
PRIVATE_CONSENT_SHARE = 0.15  # private centres delivered where the region could not deliver them
LOW_REGISTRATION_SHARE = 0.005  # Västerbotten: < 1 % of the survey's count
SHORT_GAP_SHARE, OVERLAP_SHARE, REPEAT_SHARE, NESTED_SHARE = 0.12, 0.08, 0.03, 0.02
EXTENT_KEEP_SHARE = 0.7  # a period keeps the previous period's extent
OTHER_DIAGNOSIS_SHARE = 0.05  # a later period registered with another diagnosis
NO_DOT_SHARE = 0.3  # ICD codes delivered without the dot


@dataclass(frozen=True)
class Spells:
    """True spells, one entry per spell (arrays aligned by spell index), sorted by person."""

    person: np.ndarray  # int64 person index
    start: np.ndarray  # int64 day number of the first day
    base_days: np.ndarray  # int64 length without the planted effect
    extra_days: np.ndarray  # int64 planted extra full-time days (0 if untreated)
    diagnosis_group: np.ndarray  # int64 position in DIAGNOSIS_GROUPS
    icd: np.ndarray  # str, as delivered ("" when missing)
    insured_type: np.ndarray  # int64 position in INSURED_TYPES
    offered: np.ndarray  # bool, GC001 would be given on day `gc001_day`
    gc001_day: np.ndarray  # int64 day number within the spell (0 = first day)
    treated: np.ndarray  # bool, registered GC001 inside the spell, 2019-2024
    gc001_specialised: np.ndarray  # bool, the first GC001 is in specialised care
    gc001_private: np.ndarray  # bool, the first GC001 is at a private provider

    @property
    def end(self) -> np.ndarray:
        """Day number of the true last day (may lie after the data end)."""
        return self.start + self.base_days + self.extra_days - 1

    @property
    def n(self) -> int:
        """Number of spells."""
        return len(self.start)


def longest_effect(params: SynthParams) -> int:
    """The largest planted extension any spell can get (days): at T = 0 or T >= 365."""
    at_365 = params.extra_days_intercept + params.extra_days_slope_per_180 * 365 / 180
    return int(np.rint(max(0.0, params.extra_days_intercept, at_365)))


def draw_spells(rng: np.random.Generator, people: People, params: SynthParams) -> Spells:
    """Spells of every person, scheduled one after another with gaps > 5 days."""
    n_per_person = 1 + rng.poisson(params.extra_spells_mean, people.n)
    person = np.repeat(np.arange(people.n), n_per_person)
    n = len(person)
    diagnosis = draw_index(rng, {g: params.diagnosis_mix[g] for g in DIAGNOSIS_GROUPS}, n)
    factor = np.array([params.diagnosis_length_factor[g] for g in DIAGNOSIS_GROUPS])[diagnosis]
    base = np.exp(rng.normal(np.log(params.length_median_days), params.length_sigma, n)) * factor
    base_days = np.minimum(base, params.length_max_days).astype(np.int64) + 1

    # Exposure: offered on day T (independent of the spell's length unless
    # `gc001_length_dependence` says otherwise).
    length_factor = (base_days / params.length_median_days) ** params.gc001_length_dependence
    if params.gc001_timing == "hazard":
        offered = np.ones(n, dtype=bool)
        gc001_day = piecewise_exponential_days(
            rng.exponential(1.0, n) / length_factor, params.gc001_hazard_bands
        )
    else:
        offer_factor = np.array([params.offer_diagnosis_factor[g] for g in DIAGNOSIS_GROUPS])
        offer = params.offer_share * offer_factor[diagnosis] * length_factor
        offered = rng.random(n) < np.minimum(offer, 1.0)
        gc001_day = np.exp(
            rng.normal(np.log(params.gc001_day_median), params.gc001_day_sigma, n)
        ).astype(np.int64)
    ongoing_at_t = gc001_day < base_days
    potential_extra = np.where(
        offered & ongoing_at_t,
        np.rint(
            params.extra_days_intercept
            + params.extra_days_slope_per_180 * np.minimum(gc001_day, 365) / 180
        ),
        0,
    ).astype(np.int64)

    # Schedule: first start uniform over the window, later ones after the previous
    # end. Every spell's next one waits for the longest possible effect, the same
    # wait after every spell: whether a spell is treated, or would be, never moves
    # the spells after it (a wait for the spell's own potential effect would make
    # the would-be-treated spells, every case, wait longer than most controls).
    first = rng.integers(params.first_spell_start, params.last_spell_start + 1, people.n)
    gap = MIN_GAP_BETWEEN_SPELLS + rng.exponential(params.spell_gap_mean_days, n).astype(np.int64)
    step = base_days + longest_effect(params) + gap  # from this spell's start to the next one's
    before = np.cumsum(step) - step
    first_of_person = np.r_[0, np.cumsum(n_per_person)[:-1]]
    start = first[person] + before - before[first_of_person][person]
    keep = start <= params.last_spell_start

    # Registration: only registered contacts are GC001 in the data, and only they act.
    region_code = np.array(people.regions)[people.region[person]]
    index_date = start + gc001_day
    in_2024 = index_date >= day_number("2024-01-01")
    specialised = rng.random(n) < np.where(
        in_2024, SPECIALISED_ROUTE_SHARE_2024, SPECIALISED_ROUTE_SHARE
    )
    private = rng.random(n) < params.private_share
    primary_delivered = np.isin(region_code, params.primary_care_regions) & ~np.isin(
        region_code, params.no_primary_care_regions
    )
    private_ok = np.isin(region_code, params.private_delivered_regions) | (
        rng.random(n) < PRIVATE_CONSENT_SHARE
    )
    low_ok = ~np.isin(region_code, params.low_registration_regions) | (
        rng.random(n) < LOW_REGISTRATION_SHARE
    )
    primary_ok = primary_delivered & (~private | private_ok) & low_ok
    registered = specialised | primary_ok
    in_window = (index_date >= day_number("2019-01-01")) & (index_date <= day_number("2024-12-31"))
    treated = offered & ongoing_at_t & registered & in_window
    extra = np.where(treated, potential_extra, 0)

    icd = _icd_codes(rng, diagnosis)
    insured = draw_index(rng, {t: params.insured_type_mix[t] for t in INSURED_TYPES}, people.n)
    # Insured type is the person's, with a small chance of another one per spell.
    spell_insured = np.where(
        rng.random(n) < 0.05,
        draw_index(rng, {t: params.insured_type_mix[t] for t in INSURED_TYPES}, n),
        insured[person],
    )
    return Spells(
        person=person[keep],
        start=start[keep],
        base_days=base_days[keep],
        extra_days=extra[keep],
        diagnosis_group=diagnosis[keep],
        icd=icd[keep],
        insured_type=spell_insured[keep],
        offered=offered[keep],
        gc001_day=gc001_day[keep],
        treated=treated[keep],
        gc001_specialised=(specialised & treated)[keep],
        gc001_private=(private & treated & ~specialised)[keep],
    )


NEVER = 10**6  # a day no spell reaches: the hazard ran out before T


def piecewise_exponential_days(
    cumulative_hazard: np.ndarray, bands: tuple[tuple[int, float], ...]
) -> np.ndarray:
    """Spell day (int64, 0 = first day) at which each target cumulative hazard is reached.

    `bands` are (first day, rate per 1 000 spell-days), the last one open-ended;
    an Exp(1) target gives T with exactly that piecewise-constant hazard. Targets
    beyond a zero-rate last band give NEVER.
    """
    starts = np.array([a for a, _ in bands], dtype=float)
    rates = np.array([r for _, r in bands], dtype=float) / 1000
    at_start = np.r_[0.0, np.cumsum(rates[:-1] * np.diff(starts))]
    band = np.searchsorted(at_start, cumulative_hazard, side="right") - 1
    rate = rates[band]
    with np.errstate(divide="ignore", invalid="ignore"):
        day = starts[band] + (cumulative_hazard - at_start[band]) / rate
    return np.where(rate > 0, np.minimum(np.floor(day), NEVER), NEVER).astype(np.int64)


def _icd_codes(rng: np.random.Generator, diagnosis: np.ndarray) -> np.ndarray:
    """One ICD-10 code string per spell of its group, with or without the dot; '' if missing."""
    codes = np.full(len(diagnosis), "", dtype=object)
    for g, group in enumerate(DIAGNOSIS_GROUPS):
        if group not in ICD_CODES:
            continue
        idx = np.flatnonzero(diagnosis == g)
        options = np.array(ICD_CODES[group], dtype=object)
        codes[idx] = options[rng.integers(0, len(options), len(idx))]
    no_dot = rng.random(len(codes)) < NO_DOT_SHARE
    codes[no_dot] = np.char.replace(codes[no_dot].astype(str), ".", "")
    return codes.astype(str)


def benefit_periods(
    rng: np.random.Generator, spells: Spells, people: People, params: SynthParams
) -> pl.DataFrame:
    """`sjukpenning` rows of all spells (typed, clean), cut at the data end."""
    n_periods = 1 + rng.poisson(spells.base_days / params.period_mean_days)
    spell = np.repeat(np.arange(spells.n), n_periods)
    within = np.arange(len(spell)) - np.repeat(np.cumsum(n_periods) - n_periods, n_periods)
    # Cut points: sorted uniform positions in (0, base_days); the first period starts at 0.
    cut = (rng.random(len(spell)) * spells.base_days[spell]).astype(np.int64)
    cut[within == 0] = 0
    order = np.lexsort((cut, spell))
    cut = cut[order]
    next_cut = np.r_[cut[1:], 0]
    last = np.r_[spell[1:] != spell[:-1], True]
    next_cut[last] = spells.base_days[spell[last]]
    start = spells.start[spell]
    from_day = start + cut
    tom_day = start + next_cut - 1
    keep = tom_day >= from_day
    spell, within, from_day, tom_day = spell[keep], within[keep], from_day[keep], tom_day[keep]
    later = np.r_[False, spell[1:] == spell[:-1]]

    # Short gaps (1-5 days) and overlaps (1-10 days) between consecutive periods.
    u = rng.random(len(spell))
    gap = np.where(later & (u < SHORT_GAP_SHARE), rng.integers(1, 6, len(spell)), 0)
    gap = np.minimum(gap, tom_day - from_day)
    overlap = np.where(later & (u > 1 - OVERLAP_SHARE), rng.integers(1, 11, len(spell)), 0)
    from_day = np.maximum(from_day + gap - overlap, spells.start[spell])

    extent = _extents(rng, spell, params)
    icd = spells.icd[spell].astype(object)
    other_dx = later & (rng.random(len(spell)) < OTHER_DIAGNOSIS_SHARE)
    icd[other_dx] = _icd_codes(rng, rng.integers(0, 4, int(other_dx.sum())))
    insured = spells.insured_type[spell]

    frames = [(spell, from_day, tom_day, extent, icd.astype(str), insured)]
    # Corrections: the same dates again with another extent; nested short periods.
    for share, nested in ((REPEAT_SHARE, False), (NESTED_SHARE, True)):
        pick = np.flatnonzero(rng.random(len(spell)) < share)
        f, t = from_day[pick], tom_day[pick]
        if nested:
            f = f + (rng.random(len(pick)) * (t - f)).astype(np.int64)
            t = f + (rng.random(len(pick)) * (tom_day[pick] - f)).astype(np.int64)
        other_extent = _extents(rng, spell[pick], params)
        frames.append((spell[pick], f, t, other_extent, icd[pick].astype(str), insured[pick]))

    # The planted effect: extra full-time days appended after the baseline end.
    treated = np.flatnonzero(spells.extra_days > 0)
    base_end = spells.start[treated] + spells.base_days[treated] - 1
    frames.append(
        (
            treated,
            base_end + 1,
            base_end + spells.extra_days[treated],
            np.full(len(treated), 100, dtype=np.int64),
            spells.icd[treated],
            spells.insured_type[treated],
        )
    )
    columns = [np.concatenate(parts) for parts in zip(*frames, strict=True)]
    spell, from_day, tom_day, extent, icd, insured = columns
    inside = from_day <= params.data_end
    tom_day = np.minimum(tom_day, params.data_end)
    return (
        pl.DataFrame(
            {
                "lopnr": people.lopnr[spells.person[spell]],
                "from_datum": from_day.astype("datetime64[D]"),
                "tom_datum": tom_day.astype("datetime64[D]"),
                "omfattning": extent.astype(np.int16),
                "diagnos": icd,
                "forsakradtyp": np.array(INSURED_TYPES)[insured],
                "spell": spell,
            }
        )
        .filter(pl.Series(inside))
        .with_columns(pl.col("from_datum", "tom_datum").cast(pl.Date))
        .with_columns(pl.when(pl.col("diagnos") != "").then(pl.col("diagnos")).alias("diagnos"))
    )


def _extents(rng: np.random.Generator, spell: np.ndarray, params: SynthParams) -> np.ndarray:
    """Extent (percent) per period: a spell's periods mostly keep the previous extent."""
    values = np.array(list(params.extent_mix), dtype=np.int64)
    draws = values[draw_index(rng, params.extent_mix, len(spell))]
    keep_previous = np.r_[False, spell[1:] == spell[:-1]] & (
        rng.random(len(spell)) < EXTENT_KEEP_SHARE
    )
    # Carry the extent forward over runs of "keep" (vectorised forward fill).
    source = np.where(keep_previous, 0, np.arange(len(spell)))
    source = np.maximum.accumulate(source)
    return draws[source]
