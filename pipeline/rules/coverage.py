"""Calendar days covered by benefit periods, at each extent level (analysis-spec.md §2).

Net days count each calendar day once at its highest extent: 0.25 × the union
length of the periods at or above each level. `spells` uses it for a spell's net
days, `rules.sickdays` for the days inside a window.
"""

from __future__ import annotations

import polars as pl

EXTENT_LEVELS = (25, 50, 75, 100)  # percent; max extent = 25 x (levels reached)


def covered_days(periods: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """LazyFrame of `keys` + `days`: per group, the distinct calendar days its periods cover."""
    latest_end = pl.col("tom_datum").cum_max().shift(1).over(keys)
    covered_from = pl.max_horizontal(
        pl.col("from_datum"), (latest_end + pl.duration(days=1)).fill_null(pl.col("from_datum"))
    )
    new_days = ((pl.col("tom_datum") - covered_from).dt.total_days() + 1).clip(lower_bound=0)
    return (
        periods.sort([*keys, "from_datum", "tom_datum"])
        .with_columns(new_days.alias("days"))
        .group_by(keys)
        .agg(pl.col("days").sum())
    )
