"""Why are employees without income before? A prior spell (§4.12, report L1481).

The report explains Table B5's population (employed at the start, no income in
the reference months) by "in most cases a spell within three months before":
sickness benefit is not AGI income. Among B5's persons, this is the share with
another spell of their own ending in the `months` calendar months before the
start month, per length class and group, beside B5.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from pipeline.report.income_tables import GROUPS
from pipeline.report.labels import LENGTH_CLASSES
from pipeline.rules.income_cells import ModelSpec, model_rows
from pipeline.stats.proportions import wilson_ci


def with_prior_spell(b5: pl.DataFrame, spells: pl.DataFrame, months: int) -> pl.DataFrame:
    """B5 rows with `prior_spell`: another spell of the person ends in the `months` calendar
    months before the spell's start month."""
    start_month = pl.col("start").dt.month_start()
    window = b5.select(
        "spell_id",
        "lopnr",
        start_month.dt.offset_by(f"-{months}mo").alias("from"),
        (start_month - pl.duration(days=1)).alias("to"),
    )
    found = (
        window.join(spells.select("lopnr", pl.col("spell_id").alias("other"), "end"), on="lopnr")
        .filter((pl.col("other") != pl.col("spell_id")) & pl.col("end").is_between("from", "to"))
        .select("spell_id")
        .unique()
    )
    found_ids = found["spell_id"].implode()
    return b5.with_columns(pl.col("spell_id").is_in(found_ids).alias("prior_spell"))


def prior_spell_shares(
    outcomes: pl.DataFrame,
    spells: pl.DataFrame,
    months: int,
) -> pl.DataFrame:
    """Per length class and group of B5's population: n, count with a prior spell, percent and
    Wilson 95 % CI (percent), written whole (`suppressed` false): the publication gate hides
    small counts, n - count, the `<2 år + 2+ år = Alla` margins and the n's B5 hides."""
    cells: list[dict[str, Any]] = []
    for length in LENGTH_CLASSES:
        b5 = model_rows(outcomes, ModelSpec("B4/B5", "no_income_before", length, "any_income_3"))
        flagged = with_prior_spell(b5, spells, months)
        for label, treated in GROUPS:
            part = flagged.filter(pl.col("treated") == treated)
            n, count = part.height, int(part["prior_spell"].sum())
            lo, hi = wilson_ci(count, n) if n else (math.nan, math.nan)
            cells.append(
                {
                    "length_class": length,
                    "group": label,
                    "months_before": months,
                    "n": n,
                    "count": count,
                    "percent": 100 * count / n if n else math.nan,
                    "ci_low": 100 * lo,
                    "ci_high": 100 * hi,
                }
            )
    return (
        pl.DataFrame(cells)
        .with_columns(pl.lit(False).alias("suppressed"))
        .with_columns(pl.col("percent", "ci_low", "ci_high").fill_nan(None))
    )
