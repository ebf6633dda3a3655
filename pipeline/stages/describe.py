"""`describe` stage: Table 2 / B3, Figures 8-9 and the descriptive figures of analysis-spec.md §4.

Tables are built tidy (one row per block, category and column, with count,
denominator and percent), suppressed (`pipeline.disclosure`), and written both
tidy and in the published layout with Swedish labels. Percent bases are the
block's non-missing total per column (§0, §4.1).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from pipeline.core import config, io
from pipeline.report.figures import write_figure
from pipeline.report.formatting import whole_percent
from pipeline.report.labels import CARE_LEVEL_LABEL, GROUP_LABEL, OWNERSHIP_LABEL, TOTAL
from pipeline.report.table2 import blocks, suppress_b3, table_b3_counts, with_labels

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


def printed_layout(tidy: pl.DataFrame, columns: list[tuple[str, str]]) -> pl.DataFrame:
    """Published layout: block, category, an "n (percent)" text column per (group, ownership)."""
    text = (
        pl.when(pl.col("suppressed"))
        .then(pl.lit(".."))
        .when(pl.col("category") == TOTAL)
        .then(pl.col("n").cast(pl.String))
        .otherwise(
            pl.format(
                "{} ({})",
                pl.col("n"),
                whole_percent(),
            )
        )
    )
    wide = tidy.with_columns(
        text.alias("text"), pl.format("{} {}", "group", "ownership").alias("col")
    )
    names = [f"{g} {o}" for g, o in columns]
    order = tidy.select("block", "category").unique(maintain_order=True)
    pivot = wide.filter(pl.col("col").is_in(names)).pivot(
        on="col", index=["block", "category"], values="text"
    )
    return order.join(pivot, on=["block", "category"], how="left", maintain_order="left").select(
        "block", "category", *names
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
        .then(pl.format("Insats, {}", pl.col("care_level_group")))
        .otherwise(pl.lit("Kontroll"))
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


def hide_small(frame: pl.DataFrame, min_count: int, value_columns: list[str]) -> pl.DataFrame:
    """`frame` with `value_columns` set to null where its `n` is below `min_count`."""
    small = pl.col("n") < min_count
    return frame.with_columns(
        pl.when(small).then(None).otherwise(pl.col(c)).alias(c) for c in value_columns
    ).with_columns(small.alias("suppressed"))


def plot_days_by_year(
    data: pl.DataFrame,
    series: str,
    labels: dict[str, str],
    title: str,
    path: Path,
    show_mean: bool,
) -> Path:
    """Line plot of median (solid) and optionally mean (dashed) days per year; returns the path."""
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for key in sorted(data[series].unique().to_list()):
        part = data.filter(pl.col(series) == key).sort("year")
        line = ax.plot(
            part["year"], part["median_days"], marker="o", label=f"{labels.get(key, key)}, median"
        )
        if show_mean:
            ax.plot(
                part["year"],
                part["mean_days"],
                linestyle="--",
                color=line[0].get_color(),
                label=f"{labels.get(key, key)}, medelvärde",
            )
    ax.set_xlabel("År")
    ax.set_ylabel("Dagar från sjukperiodens start")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return write_figure(fig, path)


def run(cfg: Any) -> None:
    """Write Table 2/B3, Figure 8/9 data and PNGs, timing, spell length and ownership tables."""
    outputs = config.resolve_path(cfg.paths.outputs)
    tables, figures = outputs / "tables", outputs / "figures"
    min_count = int(cfg.disclosure.min_count)
    late_day = int(cfg.describe.late_gc001_day)
    year_basis = str(cfg.describe.fig8_year_basis)
    cohort = pl.read_parquet(outputs / "cohort.parquet")
    labelled = with_labels(cohort.filter("person_row"), cfg.codes)
    block_list = blocks(cfg.codes)

    b3 = suppress_b3(table_b3_counts(labelled, block_list), min_count)
    io.write_csv(b3, tables / "table_b3_long.csv")
    # Treated persons always have a GC001 provider: no "Okänd" column for them.
    b3_columns = [
        (g, o)
        for g in GROUP_LABEL.values()
        for o in [*OWNERSHIP_LABEL.values(), TOTAL]
        if not (g == GROUP_LABEL[True] and o == OWNERSHIP_LABEL["okand"])
    ]
    io.write_csv(printed_layout(b3, b3_columns), tables / "table_b3.csv")
    table2_blocks = {b.name for b in block_list if b.in_table2}
    t2 = b3.filter(pl.col("block").is_in(table2_blocks) & (pl.col("ownership") == TOTAL))
    io.write_csv(t2, tables / "table2_long.csv")
    t2_columns = [(g, TOTAL) for g in GROUP_LABEL.values()]
    io.write_csv(
        printed_layout(t2.filter(pl.col("category") != TOTAL), t2_columns), tables / "table2.csv"
    )
    ages = hide_small(age_summary(labelled), min_count, ["mean_age", "median_age"])
    io.write_csv(ages, tables / "table_b3_age.csv")

    stats = ["mean_days", "median_days", "share_after_late_day"]
    fig8 = hide_small(figure8_data(cohort, year_basis, late_day), min_count, stats)
    io.write_csv(fig8, tables / "figure8.csv")
    plot_days_by_year(
        fig8.filter(pl.col("variant") == "main").drop_nulls("median_days"),
        "care_level_group",
        CARE_LEVEL_LABEL,
        "Figur 8 Dagar från sjukperiodens start till första koordineringsinsatsen",
        figures / "figure8.png",
        show_mean=True,
    )
    fig9 = hide_small(figure9_data(cohort, cfg.codes, year_basis, late_day), min_count, stats)
    io.write_csv(fig9, tables / "figure9.csv")
    plot_days_by_year(
        fig9.drop_nulls("median_days"),
        "diagnosis",
        {},
        "Figur 9 Mediandagar till första koordineringsinsatsen, primärvård, per diagnosgrupp",
        figures / "figure9.png",
        show_mean=False,
    )
    timing = hide_small(timing_summary(cohort, late_day), min_count, stats)
    io.write_csv(timing, tables / "gc001_timing.csv")
    lengths = spell_length_by_care_level(cohort)
    lengths = hide_small(
        lengths, min_count, ["mean_gross_days", "median_gross_days", "share_censored"]
    )
    io.write_csv(lengths, tables / "spell_length_by_care_level.csv")
    header = b3.filter((pl.col("block") == "Kön") & (pl.col("category") == TOTAL))
    io.write_csv(
        header.select("group", "ownership", "n", "suppressed"), tables / "ownership_split.csv"
    )
    log.info(
        "Table 2/B3 from %d person rows (%d treated); %d cells suppressed below %d",
        labelled.height,
        labelled["treated"].sum(),
        b3["suppressed"].sum(),
        min_count,
    )
