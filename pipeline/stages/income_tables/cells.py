"""The income tables' tidy cells (analysis-spec.md §4.5-4.10): Tables B4, B5 and 3 per
length class and group (n, count, percent, Wilson 95 % CI, unadjusted and adjusted p, stars)
and Table B6 (background of the persons), all whole: the publication gate protects them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import polars as pl

from pipeline.report.formatting import stars
from pipeline.report.income_tables import (
    B6_INCOME,
    GROUPS,
    REGAINED,
    TABLE3,
    b6_blocks,
    flag_label,
    group_label,
    table_layout,
)
from pipeline.report.labels import GROUP_LABEL, LENGTH_CLASSES
from pipeline.rules.income_cells import ModelSpec, model_rows
from pipeline.stats.proportions import two_proportion_z, wilson_ci


def share_cells(
    rows: pl.DataFrame, outcome: str, table: str, block: str, row: str, spec: ModelSpec
) -> Iterator[dict[str, Any]]:
    """One cell per group: n (non-missing outcome), count, percent and Wilson CI (percent)."""
    counted = {}
    for label, treated in GROUPS:
        values = rows.filter(pl.col("treated") == treated)[outcome].drop_nulls()
        counted[label] = (int(values.sum()), values.len())
    (x1, n1), (x2, n2) = counted[GROUP_LABEL[True]], counted[GROUP_LABEL[False]]
    p_unadjusted = two_proportion_z(x1, n1, x2, n2) if n1 and n2 else math.nan
    for label, _ in GROUPS:
        count, n = counted[label]
        lo, hi = wilson_ci(count, n) if n else (math.nan, math.nan)
        yield {
            "table": table,
            "block": block,
            "row": row,
            "length_class": spec.length_class,
            "group": label,
            "outcome": outcome,
            "model": spec.name,
            "n": n,
            "count": count,
            "percent": 100 * count / n if n else math.nan,
            "ci_low": 100 * lo,
            "ci_high": 100 * hi,
            "p_unadjusted": p_unadjusted,
        }


def n_cells(
    rows: pl.DataFrame, table: str, block: str, spec: ModelSpec
) -> Iterator[dict[str, Any]]:
    """The block's `n` row: persons per group in the block's population."""
    for label, treated in GROUPS:
        n = rows.filter(pl.col("treated") == treated).height
        yield {
            "table": table,
            "block": block,
            "row": "n",
            "length_class": spec.length_class,
            "group": label,
            "outcome": None,
            "model": None,
            "n": n,
            "count": n,
        }


def b4_b5_table3(outcomes: pl.DataFrame, windows: tuple[int, ...]) -> pl.DataFrame:
    """Tidy cells of Tables B4, B5 and 3 (§4.5, §4.6, §4.9)."""
    cells: list[dict[str, Any]] = []
    for length in LENGTH_CLASSES:
        layout = table_layout(windows)
        for table, block, group, rows_of_block in layout:
            model_table = "Table 3" if table == TABLE3 else "B4/B5"
            first = ModelSpec(model_table, group, length, rows_of_block[0][1])
            population = model_rows(outcomes, first)
            if block == REGAINED:  # its own n: spells where regained applies
                population = population.filter(pl.col("regained_applies"))
            cells += n_cells(population, table, block, first)
            for label, outcome in rows_of_block:
                spec = ModelSpec(model_table, group, length, outcome)
                cells += share_cells(population, outcome, table, block, label, spec)
    return pl.DataFrame(cells, infer_schema_length=None)


# the test behind the stars: the adjusted model's treatment term, or two proportions
SIGNIFICANCE_METHODS = ("adjusted_logit", "two_proportion_z")


def add_significance(cells: pl.DataFrame, models: pl.DataFrame, method: str) -> pl.DataFrame:
    """Cells with `p_adjusted` (the model's treatment term), `p_value` (by `method`) and `stars`
    on the treated cell."""
    adjusted = models.filter(pl.col("term") == "treated").select(
        "model", pl.col("p_value").alias("p_adjusted")
    )
    out = cells.join(adjusted, on="model", how="left")
    p = pl.col("p_adjusted") if method == "adjusted_logit" else pl.col("p_unadjusted")
    return out.with_columns(p.alias("p_value")).with_columns(
        pl.when((pl.col("group") == GROUP_LABEL[True]) & pl.col("p_value").is_not_null())
        .then(pl.col("p_value").map_elements(stars, return_dtype=pl.String))
        .otherwise(pl.lit(""))
        .alias("stars")
    )


def table_b6(outcomes: pl.DataFrame, codes: Any) -> pl.DataFrame:
    """Table B6 (§4.10): background of B4/B5's persons, without / with income before x group;
    percent of each block's non-missing total; written whole (the gate protects it)."""
    population = pl.col("in_income_tables") & pl.col("income_before").is_not_null()
    layout = b6_blocks(codes)
    no_income, with_income = B6_INCOME
    rows = outcomes.filter(population).with_columns(
        *(expr.alias(block) for block, expr, _ in layout),
        flag_label("income_before", with_income, no_income).alias("income"),
        group_label().alias("group"),
    )
    frames = []
    for block, _, cats in layout:
        counted = (
            rows.filter(pl.col(block).is_in(cats))
            .group_by("income", "group", pl.col(block).alias("category"))
            .len("n")
        )
        cells = [(i, g, c) for i in B6_INCOME for g, _ in GROUPS for c in cats]
        grid = pl.DataFrame(cells, schema=["income", "group", "category"], orient="row")
        full = grid.join(counted, on=["income", "group", "category"], how="left").with_columns(
            pl.col("n").fill_null(0).cast(pl.Int64), pl.lit(block).alias("block")
        )
        total = pl.col("n").sum().over("income", "group")
        frames.append(full.with_columns(total.alias("block_total")))
    return (
        pl.concat(frames)
        .with_columns(
            pl.when(pl.col("block_total") > 0)
            .then(100 * pl.col("n") / pl.col("block_total"))
            .alias("percent")
        )
        .select("block", "category", "income", "group", "n", "percent", "block_total")
    )
