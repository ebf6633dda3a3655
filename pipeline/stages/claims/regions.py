"""Claim "regions target the same groups" (analysis-spec.md §4.12; report L1378, L1422, L1552).

Table 2's rows for the treated persons (cohort rows with `person_row` and
`treated`, the population of Table 2's "Insats" column), one column per
analysed region plus the pooled column "Alla", with the standardised mean
difference (SMD) of each region against the pooled treated. Regions follow the
cohort's region filter (`cohort.region_basis`). Both tables are written whole; the
publication gate protects them: within each region and block the categories sum to the
block total, across regions each cell sums to its "Alla" cell, the "Alla" cells are
Table 2's, and an SMD is hidden with the counts it is computed from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from pipeline.report.labels import AGE_BLOCK, ALL, GROUP_LABEL, MEAN_AGE, TOTAL
from pipeline.report.table2 import (
    blocks,
    count_percent_text,
    table_counts,
    with_labels,
    with_percent,
)
from pipeline.rules.regions import region_of

AGE_CATEGORY = MEAN_AGE


def _region_names(codes: Any, regions: Sequence[str]) -> dict[str, str]:
    """Region code -> printed name for `regions`, plus "Alla" -> "Alla"."""
    names = {str(k): str(v) for k, v in dict(codes.regions).items()}
    unknown = [r for r in regions if r not in names]
    if unknown:
        raise ValueError(f"regions not in codes.regions: {unknown}")
    return {**{r: names[r] for r in regions}, ALL: ALL}


def _treated(person_rows: pl.DataFrame, regions: Sequence[str], region_basis: str) -> pl.DataFrame:
    """Treated person rows with `region` (code); raises if one lies outside `regions`."""
    treated = person_rows.filter(pl.col("person_row") & pl.col("treated")).with_columns(
        region_of(region_basis)
    )
    outside = treated.filter(pl.col("region").is_null() | ~pl.col("region").is_in(list(regions)))
    if outside.height:
        found = sorted(outside["region"].unique().to_list(), key=str)
        raise ValueError(
            f"{outside.height} treated person rows outside the regions {list(regions)} "
            f"({region_basis}): {found}; 'Alla' would not be the sum of the region columns"
        )
    return treated


def treated_by_region(
    person_rows: pl.DataFrame, codes: Any, regions: Sequence[str], region_basis: str
) -> pl.DataFrame:
    """Tidy Table 2 of the treated per region, whole: block, category (incl. `Totalt`), region
    (code or "Alla"), region_name, n (persons), percent (% of the block's total in that
    region; null when that total is 0), suppressed (false)."""
    names = _region_names(codes, regions)
    treated = with_labels(_treated(person_rows, regions, region_basis), codes)
    table2 = [b for b in blocks(codes) if b.in_table2]
    counts = table_counts(
        treated, table2, "region", list(regions), column_total=ALL, groups=[GROUP_LABEL[True]]
    )
    return with_percent(counts, "region").select(
        "block",
        "category",
        "region",
        pl.col("region").replace_strict(names, return_dtype=pl.String).alias("region_name"),
        "n",
        "percent",
        "suppressed",
    )


def age_by_region(
    person_rows: pl.DataFrame, codes: Any, regions: Sequence[str], region_basis: str
) -> pl.DataFrame:
    """Age of the treated per region and "Alla": region, region_name, n (persons with an age),
    mean_age (years), var_age (sample variance, years²)."""
    names = _region_names(codes, regions)
    treated = _treated(person_rows, regions, region_basis).filter(pl.col("age").is_not_null())
    stats = [
        pl.len().alias("n"),
        pl.col("age").cast(pl.Float64).mean().alias("mean_age"),
        pl.col("age").cast(pl.Float64).var().alias("var_age"),
    ]
    order = pl.DataFrame({"region": [*regions, ALL]})
    by_region = treated.group_by("region").agg(stats)
    pooled = treated.select(pl.lit(ALL).alias("region"), *stats)
    return (
        order.join(pl.concat([by_region, pooled]), on="region", how="left", maintain_order="left")
        .with_columns(pl.col("n").fill_null(0).cast(pl.Int64))
        .select(
            "region",
            pl.col("region").replace_strict(names, return_dtype=pl.String).alias("region_name"),
            "n",
            "mean_age",
            "var_age",
        )
    )


def _smd(diff: pl.Expr, spread: pl.Expr) -> pl.Expr:
    """`diff / sqrt(spread / 2)`; null where the pooled spread is 0 or null."""
    return pl.when(spread > 0).then(diff / (spread / 2).sqrt())


def region_smd(tidy: pl.DataFrame, ages: pl.DataFrame) -> pl.DataFrame:
    """SMD of each region against "Alla", whole: block, category, region, region_name, smd
    (unitless).

    Category rows (from `treated_by_region`): the share p of the block's total,
    SMD = (p_r - p_all) / sqrt((p_r(1 - p_r) + p_all(1 - p_all)) / 2); null where
    undefined (a zero total, or both shares 0 or 1).
    Mean age (block "Ålder", category "Medelålder", from `age_by_region`):
    (mean_r - mean_all) / sqrt((var_r + var_all) / 2).
    The gate hides an SMD with a count it is computed from (`relations.region_smd_cells`);
    the report summarises the SMDs it may show (`report.claims.region_lines`).
    """
    cells = tidy.with_columns((pl.col("percent") / 100).alias("p")).filter(
        pl.col("category") != TOTAL
    )
    pooled = cells.filter(pl.col("region") == ALL).select(
        "block", "category", pl.col("p").alias("p_all")
    )
    p, q = pl.col("p"), pl.col("p_all")
    by_category = (
        cells.filter(pl.col("region") != ALL)
        .join(pooled, on=["block", "category"], how="left", maintain_order="left")
        .select(
            "block",
            "category",
            "region",
            "region_name",
            _smd(p - q, p * (1 - p) + q * (1 - q)).alias("smd"),
        )
    )
    age_pooled = ages.filter(pl.col("region") == ALL).select(
        pl.col("mean_age").alias("mean_all"), pl.col("var_age").alias("var_all")
    )
    age = (
        ages.filter(pl.col("region") != ALL)
        .join(age_pooled, how="cross")
        .select(
            pl.lit(AGE_BLOCK).alias("block"),
            pl.lit(AGE_CATEGORY).alias("category"),
            "region",
            "region_name",
            _smd(
                pl.col("mean_age") - pl.col("mean_all"), pl.col("var_age") + pl.col("var_all")
            ).alias("smd"),
        )
    )

    # the mean-age row goes right after the age-band rows
    block_order = tidy["block"].unique(maintain_order=True).to_list()
    rank = pl.col("block").replace_strict(
        block_order, list(range(len(block_order))), return_dtype=pl.Int64
    )
    rows = (
        pl.concat(
            [
                by_category.with_columns(pl.lit(0).alias("_age")),
                age.with_columns(pl.lit(1).alias("_age")),
            ]
        )
        .sort(rank, "_age", maintain_order=True)
        .drop("_age")
    )
    return rows


def _wide(frame: pl.DataFrame, values: str) -> pl.DataFrame:
    """block, category and one `values` column per region name, in first-seen order."""
    names = frame["region_name"].unique(maintain_order=True).to_list()
    order = frame.select("block", "category").unique(maintain_order=True)
    pivot = frame.pivot(on="region_name", index=["block", "category"], values=values)
    return order.join(pivot, on=["block", "category"], how="left", maintain_order="left").select(
        "block", "category", *names
    )


def printed_layout(tidy: pl.DataFrame) -> pl.DataFrame:
    """Published layout of `treated_by_region`: block, category and an "n (percent)" text column
    per region name and "Alla" (`Totalt` rows and percents of a zero total: n)."""
    return _wide(tidy.with_columns(count_percent_text().alias("text")), "text")


def smd_layout(smd: pl.DataFrame, decimals: int = 2) -> pl.DataFrame:
    """Wide `region_smd`: block, category and one SMD column (rounded to `decimals`) per region
    name; null where undefined."""
    return _wide(smd.with_columns(pl.col("smd").round(decimals)), "smd")
