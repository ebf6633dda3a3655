"""`income_tables` stage: Tables B4, B5, B6 and 3, Figures 13-14 (analysis-spec.md §4.5-4.10).

Cells are built tidy (`cells`: table, block, row, length class, group; n, count,
percent, Wilson 95 % CI), compared treated vs control (unadjusted two-proportion z,
and the adjusted model's p-value from `income_models`), starred as the report does
(`**` p < 0.01, `***` p < 0.001) by `significance.method`, and written whole, tidy
and in the published layout (`pipeline.report.income_tables`), under outputs/results/:
the `publish` stage's gate hides small counts, complements and cumulative-window
differences, and what they imply in the layouts, figures and directions.
`income_directions.csv` (`directions`) states the direction of every
treated-vs-control difference, with its CI and p (§10 item 40).
"""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from pipeline.core import config, io
from pipeline.report.income_tables import (
    ANY_INCOME,
    REGAINED,
    SERIES,
    TABLE3,
    WINDOW_LABEL,
    group_label,
    printed_layout,
)
from pipeline.report.labels import ALL_LENGTHS, GROUP_LABEL
from pipeline.stages.income_tables.cells import (
    SIGNIFICANCE_METHODS,
    add_significance,
    b4_b5_table3,
    table_b6,
)
from pipeline.stages.income_tables.directions import adjusted_effects, income_directions

log = logging.getLogger(__name__)


def figure_data(cells: pl.DataFrame, outcomes: pl.DataFrame, last_window: int) -> pl.DataFrame:
    """Figures 13-14 (§4.7-4.8): at `last_window` months, any / no / regained income shares per
    length class and group, from B4 (income before) and B5 (no income before)."""
    label = WINDOW_LABEL.format(last_window)
    part = cells.filter(
        (pl.col("row") == label)
        & (pl.col("length_class") != ALL_LENGTHS)
        & pl.col("table").is_in(["B4", "B5"])
    )
    any_income = part.filter(pl.col("block") == ANY_INCOME)
    rows = pl.concat(
        [
            any_income.with_columns(pl.lit(SERIES["any"]).alias("series")),
            any_income.with_columns(
                pl.lit(SERIES["none"]).alias("series"),
                (100 - pl.col("percent")).alias("percent"),
                (100 - pl.col("ci_high")).alias("ci_low"),
                (100 - pl.col("ci_low")).alias("ci_high"),
            ),
            part.filter(pl.col("block") == REGAINED).with_columns(
                pl.lit(SERIES["regained"]).alias("series")
            ),
        ]
    )
    figure = pl.when(pl.col("table") == "B4").then(pl.lit("figure13")).otherwise(pl.lit("figure14"))
    with_income = pl.col("in_income_tables") & pl.col("income_before").fill_null(False)
    medians = (
        outcomes.filter(with_income)
        .group_by("length_class", group_label().alias("group"))
        .agg(
            pl.col("ref_income_sek").median().alias("median_ref_income_sek"),
            pl.len().alias("n_ref"),
        )
    )
    return (
        rows.with_columns(figure.alias("figure"))
        .join(medians, on=["length_class", "group"], how="left")
        .select(
            "figure",
            "series",
            "length_class",
            "group",
            "n",
            "percent",
            "ci_low",
            "ci_high",
            "median_ref_income_sek",
            "n_ref",
        )
        .sort("figure", "series", "length_class", "group")
    )


def run(cfg: Any) -> None:
    """Write Tables B4, B5, 3, B6 (tidy and published layout), their directions and the data
    of Figures 13-14 (drawn by `publish`)."""
    method = str(cfg.significance.method)
    config.check_choices({"significance.method": (method, SIGNIFICANCE_METHODS)})
    outputs = config.resolve_path(cfg.paths.outputs)
    tables = outputs / "results"
    windows = tuple(int(w) for w in cfg.income.windows)
    outcomes = pl.read_parquet(outputs / "outcomes.parquet")
    models = pl.read_parquet(outputs / "models" / "income_logit.parquet")
    cells = add_significance(b4_b5_table3(outcomes, windows), models, method)
    # every table is written whole: the publication gate (`publish`) hides what it must,
    # with the n - count complements and the cumulative windows these cells hold
    io.write_csv(cells, tables / "income_tables_long.csv")
    for table, name in (("B4", "table_b4"), ("B5", "table_b5"), (TABLE3, "table3")):
        io.write_csv(printed_layout(cells, table), tables / f"{name}.csv")
    b6 = table_b6(outcomes, cfg.codes)
    io.write_csv(b6, tables / "table_b6.csv")
    adjusted = adjusted_effects(models, cells)
    io.write_csv(adjusted, tables / "income_adjusted.csv")
    directions = income_directions(cells, adjusted, b6, method)
    io.write_csv(directions, tables / "income_directions.csv")
    io.write_csv(figure_data(cells, outcomes, max(windows)), tables / "figures13_14.csv")
    # Figures 13-14 are drawn by `publish` from the protected figures13_14.csv
    treated_cells = cells.filter((pl.col("group") == GROUP_LABEL[True]) & (pl.col("row") != "n"))
    log.info(
        "income tables: %d cells, %d starred (%s)",
        cells.height,
        (treated_cells["stars"] != "").sum(),
        cfg.significance.method,
    )
    favours = directions["significant_for"]
    log.info(
        "income directions: %d comparisons, %d significantly favour the treated, %d the controls",
        directions.height,
        (favours == "treated").sum(),
        (favours == "controls").sum(),
    )
