"""`synth` stage: a seeded synthetic delivery in the contract's shape (docs/synthetic.md).

`generate(params)` returns the six delivery tables plus the truth (planted
effects, planted bad rows); `run(cfg)` writes them. Same (seed, persons) gives
byte-identical files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from pipeline import config, io
from pipeline.synth import contacts, corrupt, income, people, spells
from pipeline.synth.params import SynthParams

log = logging.getLogger(__name__)

TABLE_ORDER = ("sjukpenning", "vardkontakter", "agi", "bakgrund", "fk_handelser", "regionenkat")
STREAMS = ("people", "background", "spells", "periods", "contacts", "fk", "survey",
           "returns", "grid", "agi", "corrupt")  # fmt: skip


@dataclass(frozen=True)
class Synthetic:
    """A generated delivery and what the generator knows about it."""

    delivery: dict[str, pl.DataFrame]  # contract tables as delivered (dates as text, bad rows)
    clean: dict[str, pl.DataFrame]  # the same tables, typed, before bad rows were planted
    truth_spells: pl.DataFrame  # one row per true spell: planted exposure and effects
    bad_rows: dict[str, Any]  # planted bad rows per table and reason, and code variants


def generate(params: SynthParams) -> Synthetic:
    """The synthetic delivery for `params` (deterministic per seed and persons)."""
    rngs = dict(
        zip(
            STREAMS,
            (
                np.random.default_rng(s)
                for s in np.random.SeedSequence(params.seed).spawn(len(STREAMS))
            ),
            strict=True,
        )
    )
    folk = people.draw_people(rngs["people"], params)
    spell = spells.draw_spells(rngs["spells"], folk, params)
    returns = income.return_truth(rngs["returns"], spell, params)
    grid = income.income_grid(rngs["grid"], folk, spell, returns, params)
    periods = spells.benefit_periods(rngs["periods"], spell, folk, params)
    clean = {
        "sjukpenning": periods.drop("spell"),
        "vardkontakter": contacts.care_contacts(rngs["contacts"], folk, spell, params),
        "agi": income.agi_rows(rngs["agi"], folk, grid, params),
        "bakgrund": people.background_rows(rngs["background"], folk, params),
        "fk_handelser": contacts.fk_registrations(rngs["fk"], folk, spell, params),
    }
    del grid
    clean["regionenkat"] = contacts.region_survey(rngs["survey"], clean["vardkontakter"], params)
    clean = {t: corrupt.drop_normalised_duplicates(clean[t], t) for t in TABLE_ORDER}

    rng = rngs["corrupt"]
    delivery: dict[str, pl.DataFrame] = {}
    bad: dict[str, Any] = {"planted": {}, "code_variants": {}, "rows_clean": {}}
    for table in TABLE_ORDER:
        frame = corrupt.dates_as_text(rng, clean[table], table)
        frame, n_variants = corrupt.code_variants(rng, frame, table)
        frame, counts = corrupt.plant_bad_rows(
            rng, frame, table, params.bad_rows_base, params.bad_rows_rate
        )
        delivery[table] = frame
        bad["planted"][table] = counts
        bad["code_variants"][table] = n_variants
        bad["rows_clean"][table] = clean[table].height
    bad["rows_delivered"] = {t: delivery[t].height for t in TABLE_ORDER}
    observed_end = periods.group_by("spell").agg(pl.col("tom_datum").max()).sort("spell")
    truth = truth_table(spell, folk, returns, observed_end["tom_datum"], params)
    return Synthetic(delivery, clean, truth, bad)


def truth_table(
    spell: spells.Spells,
    folk: people.People,
    returns: pl.DataFrame,
    observed_end: pl.Series,
    params: SynthParams,
) -> pl.DataFrame:
    """One row per true spell with its planted exposure and effects (docs/synthetic.md).

    `end` is the last day with benefit in the delivery (what the pipeline can see),
    `true_end` the day the spell really ends, possibly after the data end.
    """
    return (
        pl.DataFrame(
            {
                "lopnr": folk.lopnr[spell.person],
                "start": spell.start.astype(np.int32),
                "end": observed_end,
                "true_end": spell.end.astype(np.int32),
                "base_days": spell.base_days,
                "extra_days": spell.extra_days,
                "censored": observed_end.cast(pl.Int32).to_numpy() >= params.data_end,
                "diagnosis_group": np.array(spells.DIAGNOSIS_GROUPS)[spell.diagnosis_group],
                "forsakradtyp": np.array(spells.INSURED_TYPES)[spell.insured_type],
                "region": np.array(folk.regions)[folk.region[spell.person]],
                "offered": spell.offered,
                "gc001_day": spell.gc001_day,
                "treated": spell.treated,
                "gc001_specialised": spell.gc001_specialised,
                "gc001_private": spell.gc001_private,
            }
        )
        .with_columns(pl.col("start", "true_end").cast(pl.Date))
        .hstack(returns.drop("spell"))
    )


def summary(truth: pl.DataFrame) -> dict[str, Any]:
    """Calibration figures of the truth: shares, lengths, timing (rounded, for docs)."""
    treated = truth.filter("treated")
    controls = truth.filter(
        ~pl.col("treated") & ((pl.col("end") - pl.col("start")).dt.total_days() >= 29)
    )
    days = (pl.col("end") - pl.col("start")).dt.total_days() + 1

    def stats(frame: pl.DataFrame, expr: pl.Expr) -> dict[str, float]:
        row = frame.select(mean=expr.mean(), median=expr.median()).row(0, named=True)
        return {k: round(float(v), 1) for k, v in row.items()}

    return {
        "spells": truth.height,
        "persons": truth["lopnr"].n_unique(),
        "treated_spells": treated.height,
        "treated_share_of_spells": round(treated.height / truth.height, 4),
        "first_gc001_day": stats(treated, pl.col("gc001_day")),
        "gross_days_treated": stats(treated, days),
        "gross_days_controls_30plus": stats(controls, days),
        "extra_days": stats(treated, pl.col("extra_days")),
    }


def run(cfg: Any) -> None:
    """Write the synthetic delivery to `cfg.synth.out_dir` and the truth to `truth_dir`."""
    params = SynthParams.from_config(cfg.synth, cfg.codes)
    log.info(
        "generating %d persons (size %s, seed %d)", params.persons, cfg.synth.size, params.seed
    )
    synthetic = generate(params)
    out_dir = config.resolve_path(cfg.synth.out_dir)
    truth_dir = config.resolve_path(cfg.synth.truth_dir)
    for table, frame in synthetic.delivery.items():
        io.write_parquet(frame, out_dir / f"{table}.parquet")
        log.info("%s: %d rows", table, frame.height)
    io.write_parquet(synthetic.truth_spells, truth_dir / "spells.parquet")
    io.write_json(truth_dir / "bad_rows.json", synthetic.bad_rows)
    io.write_json(truth_dir / "summary.json", summary(synthetic.truth_spells))
