"""The synthetic generator: determinism, the planted truth, and the shape it promises."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

from pipeline.core import io
from pipeline.core.contract import TABLES, Reason
from pipeline.stages.synth import TABLE_ORDER, Synthetic, corrupt, generate
from pipeline.stages.synth.spells import NEVER, piecewise_exponential_days
from tests.helpers import synth_params


def _digests(synthetic: Synthetic, tmp_path) -> dict[str, str]:
    out = {}
    for table, frame in synthetic.delivery.items():
        path = io.write_parquet(frame, tmp_path / f"{table}.parquet")
        out[table] = hashlib.sha256(path.read_bytes()).hexdigest()
    path = io.write_parquet(synthetic.truth_spells, tmp_path / "truth.parquet")
    out["truth"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tiny, tmp_path):
    again = generate(synth_params())
    other = generate(synth_params("synth.seed=7"))
    first = _digests(tiny, tmp_path / "a")
    assert _digests(again, tmp_path / "b") == first
    differing = {t for t, d in _digests(other, tmp_path / "c").items() if d != first[t]}
    assert differing == set(first)


def test_every_contract_column_is_delivered_in_contract_order(tiny):
    for table in TABLE_ORDER:
        assert tiny.delivery[table].columns == TABLES[table].names


def test_rows_delivered_are_clean_rows_plus_planted_bad_rows(tiny):
    bad = tiny.bad_rows
    for table in TABLE_ORDER:
        planted = sum(bad["planted"][table].values())
        assert bad["rows_delivered"][table] == bad["rows_clean"][table] + planted
        assert tiny.delivery[table].height == bad["rows_delivered"][table]
        assert tiny.clean[table].height == bad["rows_clean"][table]


def test_every_applicable_reason_is_planted_in_every_table(tiny):
    planted = {t: {r for r, n in c.items() if n > 0} for t, c in tiny.bad_rows["planted"].items()}
    expected_kinds = {
        t: {f.reason.value for f in corrupt.FAULTS[t]} | {Reason.EXACT_DUPLICATE.value}
        for t in TABLE_ORDER
    }
    assert planted == expected_kinds


def test_clean_tables_have_no_duplicates_after_normalisation(tiny):
    for table in TABLE_ORDER:
        clean = tiny.clean[table]
        distinct = clean.select(corrupt.normalised_key(clean, table)).unique().height
        assert distinct == clean.height, table


def test_dates_are_delivered_as_iso_or_compact_text(tiny):
    dates = tiny.delivery["sjukpenning"]["from_datum"].drop_nulls()
    iso = dates.str.contains(r"^\d{4}-\d{2}-\d{2}$")
    compact = dates.str.contains(r"^\d{8}$")
    assert iso.sum() > 0 and compact.sum() > 0
    # every text date that is neither is one of the planted bad ones
    odd = dates.filter(~iso & ~compact).to_list()
    assert set(odd) <= set(corrupt.BAD_DATES)


def test_planted_extra_days_follow_the_documented_formula(tiny):
    t = tiny.truth_spells
    treated = t.filter("treated")
    expected = np.rint(20 + 20 * np.minimum(treated["gc001_day"].to_numpy(), 365) / 180)
    assert (treated["extra_days"].to_numpy() == expected).all()
    assert (t.filter(~pl.col("treated"))["extra_days"] == 0).all()


def test_each_treated_spell_has_its_first_gc001_contact_on_its_day(tiny):
    t = tiny.truth_spells.filter("treated").with_columns(
        first=pl.col("start") + pl.duration(days=pl.col("gc001_day"))
    )
    gc = tiny.clean["vardkontakter"].filter(pl.col("kva").str.to_uppercase().str.contains("GC001"))
    matched = t.join(gc, left_on=["lopnr", "first"], right_on=["lopnr", "datum"], how="semi")
    assert matched.height == t.height


def _chain(periods: list[tuple[int, int]], gap_days: int) -> list[tuple[int, int]]:
    """Plain chaining of (from, tom) day numbers: a gap of at most `gap_days` joins."""
    spells: list[list[int]] = []
    for start, end in sorted(periods):
        if spells and start - spells[-1][1] - 1 <= gap_days:
            spells[-1][1] = max(spells[-1][1], end)
        else:
            spells.append([start, end])
    return [(a, b) for a, b in spells]


def test_clean_periods_chain_back_into_the_true_spells_with_the_five_day_rule(tiny):
    sp = tiny.clean["sjukpenning"].with_columns(pl.col("from_datum", "tom_datum").cast(pl.Int32))
    by_person: dict[int, list[tuple[int, int]]] = {}
    for lopnr, f, t in sp.select("lopnr", "from_datum", "tom_datum").iter_rows():
        by_person.setdefault(lopnr, []).append((f, t))
    chained = sorted((p, *s) for p, periods in by_person.items() for s in _chain(periods, 5))
    truth = tiny.truth_spells.with_columns(pl.col("start", "end").cast(pl.Int32))
    expected = sorted(truth.select("lopnr", "start", "end").iter_rows())
    assert chained == expected


def test_treated_spells_are_longer_and_first_gc001_comes_within_months(tiny):
    t = tiny.truth_spells.with_columns(days=(pl.col("end") - pl.col("start")).dt.total_days() + 1)
    treated = t.filter("treated")
    controls = t.filter(~pl.col("treated") & (pl.col("days") >= 30))
    assert treated["days"].median() > 1.5 * controls["days"].median()
    assert 20 <= treated["gc001_day"].median() <= 120


def test_piecewise_exponential_days_have_the_planted_daily_hazard():
    # Exp(1) targets through the inverse cumulative hazard: among days still "at risk"
    # in a band, the share hit per day is 1 - exp(-rate / 1000) (T is floored to a day).
    bands = ((0, 20.0), (10, 5.0), (40, 0.0))
    rng = np.random.default_rng(7)
    day = piecewise_exponential_days(rng.exponential(1.0, 400_000), bands)
    for first, last, rate in ((0, 9, 20.0), (10, 39, 5.0)):
        at_risk = np.clip(np.minimum(day, last) - first + 1, 0, None).sum()
        events = ((day >= first) & (day <= last)).sum()
        expected = 1 - np.exp(-rate / 1000)
        se = np.sqrt(expected / at_risk)
        assert abs(events / at_risk - expected) < 4 * se
    assert (day[day >= 40] == NEVER).all() and (day >= 40).mean() > 0.6  # zero-rate tail


def test_length_dependence_makes_longer_spells_treated_more_often():
    flat = generate(synth_params("synth.gc001_timing=hazard")).truth_spells
    tilted = generate(
        synth_params("synth.gc001_timing=hazard", "synth.gc001_length_dependence=1")
    ).truth_spells

    def treated_share_by_length(truth: pl.DataFrame) -> list[float]:
        long = pl.col("base_days") > pl.col("base_days").median()
        return (
            truth.group_by(long.alias("long"))
            .agg(pl.col("treated").mean())
            .sort("long")["treated"]
            .to_list()
        )

    flat_short, flat_long = treated_share_by_length(flat)
    tilt_short, tilt_long = treated_share_by_length(tilted)
    assert tilt_long / tilt_short > 1.5 * flat_long / flat_short


def test_who_is_offered_the_intervention_never_moves_a_persons_later_spells():
    # the same draws with many more spells offered: more treated spells and extensions,
    # but every spell starts on the same day (each waits the longest extension)
    few = generate(synth_params()).truth_spells
    many = generate(synth_params("synth.offer_share=0.9")).truth_spells
    assert many["treated"].sum() > 2 * few["treated"].sum()
    assert many["start"].equals(few["start"]) and many["base_days"].equals(few["base_days"])
