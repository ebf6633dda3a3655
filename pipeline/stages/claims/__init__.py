"""`claims` stage: evidence for the claims the report makes in words only (analysis-spec §4.12).

- spell length and getting GC001 (L1384, Bilaga 1): `life_table` (rate of the
  first GC001 per 1 000 spell-days by elapsed day) and `length_rank` (the case's
  rank by total length within its risk set);
- prior sick absence (L1420, L1087): `prior_sickness`;
- regions target the same groups (L1378, L1422, L1552): `regions`;
- employees without income before had a spell just before (L1481): `b5_check`.

Each module holds pure functions (frames in, frames out); `run` reads the
stage's inputs and writes its tables whole; the publication gate (`publish`) protects
them and draws their figures.
The risk sets are the `riskset` stage's files: this stage draws none.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core import config, io
from pipeline.core.errors import PipelineError
from pipeline.rules.riskset import MODES
from pipeline.rules.sickdays import window_days
from pipeline.stages.claims import b5_check, length_rank, life_table, prior_sickness, regions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimsConfig:
    """The `claims` slice plus the keys of other sections the stage reads."""

    band_days: int
    max_day: int
    rank_control_mode: str
    seed: int
    bootstrap_draws: int
    prior_spell_months: int
    prior_window_days: int
    window_start: dt.date
    window_end: dt.date
    day_origin: int

    @classmethod
    def from_config(cls, cfg: Any) -> ClaimsConfig:
        """Build from the composed configuration, checking the choices."""
        c = cfg.claims
        conf = cls(
            band_days=int(c.band_days),
            max_day=int(c.max_day),
            rank_control_mode=str(c.rank_control_mode),
            seed=int(c.seed),
            bootstrap_draws=int(c.bootstrap_draws),
            prior_spell_months=int(c.prior_spell_months),
            prior_window_days=int(cfg.describe.prior_window_days),
            window_start=dt.date.fromisoformat(str(cfg.exposure.window_start)),
            window_end=dt.date.fromisoformat(str(cfg.exposure.window_end)),
            day_origin=int(cfg.spells.day_origin),
        )
        config.check_choices({"claims.rank_control_mode": (conf.rank_control_mode, MODES)})
        if conf.band_days < 1 or conf.max_day < conf.band_days:
            raise PipelineError(
                f"config claims.band_days={conf.band_days}, claims.max_day={conf.max_day}: "
                "expected 1 <= band_days <= max_day"
            )
        return conf


def gc001_life_table(at_risk: pl.DataFrame, conf: ClaimsConfig) -> pl.DataFrame:
    """The life table of the first GC001, long by care level (`life_table.rates`), whole."""
    exits = life_table.spell_exits(at_risk, conf.window_start, conf.window_end)
    table = life_table.life_table(exits, life_table.Bands(conf.band_days, conf.max_day))
    return life_table.rates(table, conf.day_origin)


def rank_designs(
    at_risk_sets: pl.DataFrame, report_sets: pl.DataFrame, conf: ClaimsConfig
) -> dict[str, pl.DataFrame]:
    """Risk sets per design, by label: the rank-test sets drawn among the at-risk spells
    (riskset_at_risk_<claims.rank_control_mode>.parquet), and §6.2's as the report drew
    them, with never-treated controls (riskset_never_treated.parquet), whatever
    `riskset.control_mode` the other analyses use."""
    return {
        f"at-risk spells, {conf.rank_control_mode} controls": at_risk_sets,
        "§6.2 sets, never_treated controls": report_sets,
    }


def length_rank_tables(
    designs: dict[str, pl.DataFrame], spells: pl.DataFrame, conf: ClaimsConfig
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per design: the rank-test summary row and the decile counts (design, decile,
    observed, expected), whole."""
    summaries, deciles = [], []
    for design, sets in designs.items():
        members = length_rank.set_members(sets, spells)
        summary, counts = length_rank.rank_test(members, conf.seed)
        summaries.append({"design": design, **summary})
        deciles.append(
            counts.with_columns(pl.lit(design).alias("design")).select(
                "design", "decile", "observed", "expected"
            )
        )
    return pl.DataFrame(summaries, infer_schema_length=None), pl.concat(deciles)


def member_days(
    cohort: pl.DataFrame,
    at_risk: pl.DataFrame,
    riskset: pl.DataFrame,
    periods: Path | pl.DataFrame,
    window: int,
) -> dict[str, pl.DataFrame]:
    """Per anchor (`spell_start`: Table 2's person rows; `index` and `index_outside_spell`:
    §6.2's sets), one row per member: treated, set_id (index anchors) and net_days (days)
    in the `window` days before the anchor. Set members' spells come from the at-risk
    spells (`at_risk`): a control drawn at the index may be shorter than the cohort's
    minimum."""
    anchors = {
        "spell_start": prior_sickness.start_windows(cohort.filter("person_row"), window),
        "index": prior_sickness.index_windows(riskset, at_risk, window, outside_spell=False),
        "index_outside_spell": prior_sickness.index_windows(
            riskset, at_risk, window, outside_spell=True
        ),
    }
    out = {}
    for anchor, members in anchors.items():
        empty = pl.col("window_start") > pl.col("window_end")
        counted = window_days(members.filter(~empty), periods)
        out[anchor] = (
            members.join(counted, on="member_id", how="left")
            .with_columns(pl.col("net_days").fill_null(0.0), pl.col("gross_days").fill_null(0))
            .sort("member_id")
        )
    return out


def prior_sick_days(days: dict[str, pl.DataFrame], conf: ClaimsConfig) -> pl.DataFrame:
    """Net sick days before the spell start and before the index, treated vs control
    (`prior_sickness.compare`), whole (NaN as null; the gate hides small groups)."""
    rows = []
    for anchor, frame in days.items():
        rows += prior_sickness.compare(frame, anchor, conf.bootstrap_draws, conf.seed)
    return (
        pl.DataFrame(rows, infer_schema_length=None)
        .with_columns(pl.col(pl.Float64).fill_nan(None))
        .with_columns(pl.lit(conf.prior_window_days).alias("window_days"))
    )


def region_tables(
    person_rows: pl.DataFrame, codes: Any, cohort_cfg: Any, conf: ClaimsConfig
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Table 2's treated rows per analysed region (tidy, whole) and each region's
    standardised mean differences against the pooled treated."""
    analysed = [str(r) for r in cohort_cfg.regions]
    basis = str(cohort_cfg.region_basis)
    tidy = regions.treated_by_region(person_rows, codes, analysed, basis)
    ages = regions.age_by_region(person_rows, codes, analysed, basis)
    return tidy, regions.region_smd(tidy, ages)


def run(cfg: Any) -> None:
    """Write the §4.12 tables, whole, to outputs/results (`publish` protects and draws them)."""
    conf = ClaimsConfig.from_config(cfg)
    outputs = config.resolve_path(cfg.paths.outputs)
    staged = config.resolve_path(cfg.paths.staged)
    tables = outputs / "results"
    cohort = pl.read_parquet(outputs / "cohort.parquet")
    at_risk = pl.read_parquet(outputs / "cohort_at_risk.parquet")
    riskset = pl.read_parquet(outputs / "riskset.parquet")
    at_risk_sets = pl.read_parquet(outputs / f"riskset_at_risk_{conf.rank_control_mode}.parquet")
    spells = pl.read_parquet(outputs / "spells.parquet")

    rates = gc001_life_table(at_risk, conf)
    io.write_csv(rates, tables / "gc001_life_table.csv")

    report_sets = pl.read_parquet(outputs / "riskset_never_treated.parquet")
    designs = rank_designs(at_risk_sets, report_sets, conf)
    summary, deciles = length_rank_tables(designs, spells, conf)
    io.write_csv(summary, tables / "gc001_length_rank.csv")
    io.write_csv(deciles, tables / "gc001_length_rank_deciles.csv")

    days = member_days(
        cohort, at_risk, riskset, staged / "sjukpenning.parquet", conf.prior_window_days
    )
    prior = prior_sick_days(days, conf)
    io.write_csv(prior, tables / "prior_sick_days.csv")

    by_region, smd = region_tables(cohort.filter("person_row"), cfg.codes, cfg.cohort, conf)
    io.write_csv(regions.printed_layout(by_region), tables / "table2_by_region.csv")
    io.write_csv(regions.smd_layout(smd), tables / "table2_by_region_smd.csv")

    outcomes = pl.read_parquet(outputs / "outcomes.parquet")
    b5 = b5_check.prior_spell_shares(outcomes, spells, conf.prior_spell_months)
    io.write_csv(b5, tables / "table_b5_prior_spell.csv")

    overall = rates.filter(pl.col("care_level") == life_table.ALL_LEVELS)
    log.info(
        "claims: life table %d bands (%s spells at risk at day 0); rank test %s",
        overall.height,
        overall["n_at_start"][0],
        "; ".join(f"{r['design']}: z={r['gehan_z']}" for r in summary.iter_rows(named=True)),
    )
