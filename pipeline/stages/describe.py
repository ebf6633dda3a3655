"""`describe` stage: Table 2 / B3, Figures 8-9 and the descriptive figures of analysis-spec.md §4.

Tables are built tidy (one row per block, category and column, with count,
denominator and percent) and written whole, both tidy and in the published layout with
Swedish labels, under `outputs/results/`; the publication gate (stage `publish`) hides
small cells and draws Figures 8-9 from what it may show. Percent bases are the
block's non-missing total per column (§0, §4.1).
"""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from pipeline.core import config, io
from pipeline.report.labels import GROUP_LABEL, SEX_BLOCK, TOTAL
from pipeline.report.table2 import (
    TABLE2_COLUMNS,
    b3_columns,
    blocks,
    ownership_labels,
    printed_layout,
    table_b3_counts,
    with_labels,
    with_percent,
)

log = logging.getLogger(__name__)


def age_summary(labelled: pl.DataFrame) -> pl.DataFrame:
    """Mean and median age (years) per group and ownership, incl. `Totalt` ownership."""
    by_owner = labelled.group_by("group", "ownership_label").agg(
        pl.len().alias("n"),
        pl.col("age").mean().alias("mean_age"),
        pl.col("age").median().alias("median_age"),
    )
    total = (
        labelled.group_by("group")
        .agg(
            pl.len().alias("n"),
            pl.col("age").mean().alias("mean_age"),
            pl.col("age").median().alias("median_age"),
        )
        .with_columns(pl.lit(TOTAL).alias("ownership_label"))
    )
    return (
        pl.concat([by_owner, total.select(by_owner.columns)])
        .rename({"ownership_label": "ownership"})
        .sort("group", "ownership")
    )


def _day_stats(frame: pl.DataFrame, by: list[str], late_day: int) -> pl.DataFrame:
    """n, mean, median (days) and share after `late_day` of `day_first_gc001` per `by`."""
    day = pl.col("day_first_gc001")
    return (
        frame.group_by(by)
        .agg(
            pl.len().alias("n"),
            day.mean().alias("mean_days"),
            day.median().alias("median_days"),
            (day > late_day).mean().alias("share_after_late_day"),
        )
        .sort(by)
    )


def timing_summary(cohort: pl.DataFrame, late_day: int) -> pl.DataFrame:
    """First GC001 timing (§3.2, §10 item 11): all treated spells and person rows."""
    treated = cohort.filter("treated")
    return pl.concat(
        [
            _day_stats(treated.with_columns(pl.lit("spells").alias("unit")), ["unit"], late_day),
            _day_stats(
                treated.filter("person_row").with_columns(pl.lit("person_rows").alias("unit")),
                ["unit"],
                late_day,
            ),
        ]
    ).with_columns(pl.lit(late_day).alias("late_day"))


def figure8_data(cohort: pl.DataFrame, year_basis: str, late_day: int) -> pl.DataFrame:
    """Figure 8 (§4.2): per care-level group and year, mean/median days to first GC001.

    Three variants (column `variant`): the configured year basis; spell-start year;
    and the configured basis without left-truncated spells (§10 item 37).
    """
    treated = cohort.filter(pl.col("treated") & pl.col("care_level_group").is_not_null())
    year_of = {"first_gc001": pl.col("first_gc001"), "spell_start": pl.col("start")}
    variants = [
        ("main", treated, year_of[year_basis]),
        ("spell_start_year", treated, year_of["spell_start"]),
        ("without_left_truncated", treated.filter(~pl.col("left_truncated")), year_of[year_basis]),
    ]
    return pl.concat(
        _day_stats(
            frame.with_columns(expr.dt.year().alias("year"), pl.lit(name).alias("variant")),
            ["variant", "care_level_group", "year"],
            late_day,
        )
        for name, frame, expr in variants
    )


def figure9_data(cohort: pl.DataFrame, codes: Any, year_basis: str, late_day: int) -> pl.DataFrame:
    """Figure 9 (§4.3): primary care only, median days to first GC001 per year and diagnosis."""
    labels = {str(g["key"]): str(g["label"]) for g in codes.diagnosis_groups}
    year = pl.col("first_gc001") if year_basis == "first_gc001" else pl.col("start")
    primary = cohort.filter(pl.col("treated") & (pl.col("care_level_group") == "primary_care"))
    return _day_stats(
        primary.filter(pl.col("diagnosis_group").is_in(list(labels))).with_columns(
            year.dt.year().alias("year"),
            pl.col("diagnosis_group")
            .replace_strict(labels, return_dtype=pl.String)
            .alias("diagnosis"),
        ),
        ["diagnosis", "year"],
        late_day,
    )


def spell_length_by_care_level(cohort: pl.DataFrame) -> pl.DataFrame:
    """Gross spell days (mean, median) of cohort spells: treated by care level, and controls."""
    group = (
        pl.when(pl.col("treated"))
        .then(pl.format("{}, {}", pl.lit(GROUP_LABEL[True]), pl.col("care_level_group")))
        .otherwise(pl.lit(GROUP_LABEL[False]))
    )
    return (
        cohort.with_columns(group.alias("group"))
        .group_by("group")
        .agg(
            pl.len().alias("n"),
            pl.col("gross_days").mean().alias("mean_gross_days"),
            pl.col("gross_days").median().alias("median_gross_days"),
            pl.col("censored").mean().alias("share_censored"),
        )
        .sort("group")
    )


FIG8_YEAR_BASES = ("first_gc001", "spell_start")


def run(cfg: Any) -> None:
    """Write Table 2/B3, Figure 8/9 data, timing, spell length and ownership tables, whole."""
    outputs = config.resolve_path(cfg.paths.outputs)
    tables = outputs / "results"
    late_day = int(cfg.describe.late_gc001_day)
    year_basis = str(cfg.describe.fig8_year_basis)
    config.check_choices({"describe.fig8_year_basis": (year_basis, FIG8_YEAR_BASES)})
    cohort = pl.read_parquet(outputs / "cohort.parquet")
    labelled = with_labels(cohort.filter("person_row"), cfg.codes)
    block_list = blocks(cfg.codes)

    # whole counts: the publication gate (`publish`) hides small cells, their margins and
    # the printed cells and ownership split that repeat them
    counts = table_b3_counts(labelled, block_list, ownership_labels(cfg.codes))
    b3 = with_percent(counts, "ownership")
    io.write_csv(b3, tables / "table_b3_long.csv")
    io.write_csv(printed_layout(b3, b3_columns(cfg.codes)), tables / "table_b3.csv")
    table2_blocks = {b.name for b in block_list if b.in_table2}
    t2 = b3.filter(pl.col("block").is_in(table2_blocks) & (pl.col("ownership") == TOTAL))
    io.write_csv(t2, tables / "table2_long.csv")
    io.write_csv(
        printed_layout(t2.filter(pl.col("category") != TOTAL), TABLE2_COLUMNS),
        tables / "table2.csv",
    )
    # written whole: the gate hides the summaries of fewer than min_count persons
    io.write_csv(age_summary(labelled), tables / "table_b3_age.csv")
    io.write_csv(figure8_data(cohort, year_basis, late_day), tables / "figure8.csv")
    io.write_csv(figure9_data(cohort, cfg.codes, year_basis, late_day), tables / "figure9.csv")
    io.write_csv(timing_summary(cohort, late_day), tables / "gc001_timing.csv")
    io.write_csv(spell_length_by_care_level(cohort), tables / "spell_length_by_care_level.csv")
    header = b3.filter((pl.col("block") == SEX_BLOCK) & (pl.col("category") == TOTAL))
    io.write_csv(
        header.select("group", "ownership", "n", "suppressed"), tables / "ownership_split.csv"
    )
    log.info(
        "Table 2/B3 from %d person rows (%d treated)", labelled.height, labelled["treated"].sum()
    )
