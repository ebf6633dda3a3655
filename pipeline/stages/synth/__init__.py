"""`synth` stage: a seeded synthetic delivery in the contract's shape (docs/synthetic.md).

`generate(params)` returns the six delivery tables plus the truth (planted
effects, planted bad rows); `run(cfg)` writes them. Same (seed, persons) gives
byte-identical files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from pipeline.core import config, io
from pipeline.stages.synth import contacts, corrupt, income, mona, people, spells
from pipeline.stages.synth.params import SynthParams

log = logging.getLogger(__name__)

TABLE_ORDER = ("sjukpenning", "vardkontakter", "agi", "bakgrund", "fk_handelser", "regionenkat")
# AGI rows are unique by construction (one row per person, month and employer;
# second employers and corrections cannot coincide with the main row), which
# spares a 60M-row hash at national scale; tests check it on `tiny`.
DUPLICATE_FREE_BY_CONSTRUCTION = frozenset({"agi"})
STREAMS = ("people", "background", "spells", "periods", "contacts", "fk", "survey",
           "returns", "grid", "agi", "corrupt")  # fmt: skip


@dataclass(frozen=True)
class Synthetic:
    """A generated delivery and what the generator knows about it."""

    delivery: dict[str, pl.DataFrame]  # contract tables as delivered (dates as text, bad rows)
    clean: dict[str, pl.DataFrame]  # the same tables, typed, before bad rows were planted
    truth_spells: pl.DataFrame  # one row per true spell: planted exposure and effects
    bad_rows: dict[str, Any]  # planted bad rows per table and reason, and code variants


def generate(
    params: SynthParams,
    sink: Callable[[str, pl.DataFrame], None] | None = None,
) -> Synthetic:
    """The synthetic delivery for `params` (deterministic per seed and persons).

    With `sink`, each delivery table is handed to it as soon as it is built and
    neither it nor its clean version is kept (`delivery` and `clean` stay empty),
    which keeps national-scale memory to about one table at a time.
    """
    seeds = np.random.SeedSequence(params.seed).spawn(len(STREAMS))
    rngs = {name: np.random.default_rng(s) for name, s in zip(STREAMS, seeds, strict=True)}
    folk = people.draw_people(rngs["people"], params)
    spell = spells.draw_spells(rngs["spells"], folk, params)
    returns = income.return_truth(rngs["returns"], spell, params)
    periods = spells.benefit_periods(rngs["periods"], spell, folk, params)

    def agi() -> pl.DataFrame:
        grid = income.income_grid(rngs["grid"], folk, spell, returns, params)
        return income.agi_rows(rngs["agi"], folk, grid, params)

    survey_counts: list[pl.DataFrame] = []

    def care() -> pl.DataFrame:
        frame = contacts.care_contacts(rngs["contacts"], folk, spell, params)
        survey_counts.append(contacts.region_survey(rngs["survey"], frame, params))
        return frame

    builders: dict[str, Callable[[], pl.DataFrame]] = {
        "sjukpenning": lambda: periods.drop("spell"),
        "vardkontakter": care,
        "agi": agi,
        "bakgrund": lambda: people.background_rows(rngs["background"], folk, params),
        "fk_handelser": lambda: contacts.fk_registrations(rngs["fk"], folk, spell, params),
        "regionenkat": lambda: survey_counts[0],
    }
    rng = rngs["corrupt"]
    delivery: dict[str, pl.DataFrame] = {}
    clean: dict[str, pl.DataFrame] = {}
    bad: dict[str, Any] = {
        k: {} for k in ("planted", "code_variants", "rows_clean", "rows_delivered")
    }
    for table in TABLE_ORDER:
        table_clean = builders[table]()
        if table not in DUPLICATE_FREE_BY_CONSTRUCTION:
            table_clean = corrupt.drop_normalised_duplicates(table_clean, table)
        frame = corrupt.dates_as_text(rng, table_clean, table)
        frame, bad["code_variants"][table] = corrupt.code_variants(rng, frame, table)
        frame, bad["planted"][table] = corrupt.plant_bad_rows(
            rng, frame, table, params.bad_rows_base, params.bad_rows_rate
        )
        bad["rows_clean"][table] = table_clean.height
        bad["rows_delivered"][table] = frame.height
        if sink is None:
            delivery[table], clean[table] = frame, table_clean
        else:
            sink(table, frame)
        del frame, table_clean
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
    out_dir = config.resolve_path(cfg.synth.out_dir)
    truth_dir = config.resolve_path(cfg.synth.truth_dir)

    shape = str(cfg.synth.shape)
    config.check_choices({"synth.shape": (shape, ("contract", "mona"))})
    regions = sorted(str(k) for k in cfg.codes.regions)

    def write(table: str, frame: pl.DataFrame) -> None:
        if shape == "mona":  # as researchers receive it (conf/data/mona_example.yaml)
            paths = mona.write(out_dir, table, frame, regions)
            log.info("%s: %d rows in %d files", table, frame.height, len(paths))
            return
        io.write_parquet(frame, out_dir / f"{table}.parquet")
        log.info("%s: %d rows", table, frame.height)

    synthetic = generate(params, sink=write)
    io.write_parquet(synthetic.truth_spells, truth_dir / "spells.parquet")
    io.write_json(truth_dir / "bad_rows.json", synthetic.bad_rows)
    io.write_json(truth_dir / "summary.json", summary(synthetic.truth_spells))
