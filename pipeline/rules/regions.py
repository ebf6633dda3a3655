"""Region membership of a spell (analysis-spec.md §1.3 `cohort.region_basis`).

Used by the cohort's region filter and by the Table 2-by-region claim, so both
read the same rule.
"""

from __future__ import annotations

import polars as pl

REGION_BASES = ("residence", "provider")  # §1.3 `cohort.region_basis`


def region_of(region_basis: str) -> pl.Expr:
    """The spell's region code (String, named `region`) as the region filter defines it.

    `region_first` (the first GC001's provider) for treated rows when
    `region_basis` is "provider", else `lan` (residence in the covariate year).
    """
    if region_basis not in REGION_BASES:
        raise ValueError(f"region_basis must be one of {REGION_BASES}, not {region_basis!r}")
    by_provider = pl.col("treated") & pl.lit(region_basis == "provider")
    return (
        pl.when(by_provider).then(pl.col("region_first")).otherwise(pl.col("lan")).alias("region")
    )
