"""The income tables' tidy cells (analysis-spec.md §4.5-4.10): Tables B4, B5 and 3 per
length class and group (n, count, percent, Wilson 95 % CI, unadjusted and adjusted p, stars)
with their suppression, and Table B6 (background of the persons) with its own.
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
from pipeline.stats.disclosure import suppressed_cells
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


def table_b6(outcomes: pl.DataFrame, codes: Any, min_count: int) -> pl.DataFrame:
    """Table B6 (§4.10): background of B4/B5's persons, without / with income before x group;
    percent of each block's non-missing total; small counts suppressed with a complement."""
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
    b6 = pl.concat(frames).with_row_index("cell")
    constraints = []
    for _, part in b6.group_by("block", "income", "group", maintain_order=True):
        # the block total is shown (as the column n), so parts must not be recoverable
        total_cell = len(b6) + len(constraints)
        constraints.append((total_cell, part["cell"].to_list()))
    keys = ["block", "income", "group"]
    totals = b6.group_by(keys, maintain_order=True).agg(pl.col("n").sum().alias("total"))
    hidden = suppressed_cells(
        [*b6["n"].to_list(), *totals["total"].to_list()], constraints, min_count
    )
    total_hidden = totals.select(*keys, pl.Series("total_hidden", hidden[len(b6) :]))
    # a hidden block total hides its column's percents too (n / percent gives it back)
    return (
        b6.drop("cell")
        .with_columns(pl.Series("suppressed", hidden[: len(b6)]))
        .join(total_hidden, on=keys, how="left", maintain_order="left")
        .with_columns((pl.col("suppressed") | pl.col("total_hidden")).alias("suppressed"))
        .with_columns(
            pl.when(~pl.col("suppressed") & (pl.col("block_total") > 0))
            .then(100 * pl.col("n") / pl.col("block_total"))
            .alias("percent"),
            pl.when(~pl.col("suppressed")).then(pl.col("n")).alias("n"),
            pl.when(~pl.col("total_hidden")).then(pl.col("block_total")).alias("block_total"),
        )
        .select("block", "category", "income", "group", "n", "percent", "block_total", "suppressed")
    )
