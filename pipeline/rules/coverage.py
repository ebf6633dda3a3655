"""Calendar days covered by benefit periods, at each extent level (analysis-spec.md §2).

Net days count each calendar day once at its highest extent: 0.25 × the union
length of the periods at or above each level (`net_days`, one sort for all
levels). `spells` uses it for a spell's net days, `rules.sickdays` for the days
inside a window.
"""

from __future__ import annotations

import polars as pl

EXTENT_LEVELS = (25, 50, 75, 100)  # percent; max extent = 25 x (levels reached)


_DAY_SPAN = 1_000_000  # > any day number + _DAY_SHIFT: a group's packed values stay in its band
_DAY_SHIFT = 200_000  # days since 1970 + this > 0 for dates after about 1422


def covered_days_at_levels(
    periods: pl.LazyFrame, keys: list[str], levels: tuple[int, ...] = (0, *EXTENT_LEVELS)
) -> pl.LazyFrame:
    """LazyFrame of `keys` + `days_<level>` per level: per group, the distinct calendar days
    covered by its periods with `omfattning` >= level (level 0 = all periods).

    After one sort by group and dates, a row's new days at a level are those after the
    latest end among the group's earlier rows at that level. That running maximum is one
    `cum_max` over the whole frame, not one per group: each row's end is packed as
    group number x _DAY_SPAN + day, so a group's values exceed every earlier group's,
    and a row not at the level contributes the group's floor (group number x _DAY_SPAN).
    """
    group = pl.struct(keys).rle_id().cast(pl.Int64)
    floor = pl.col("_group") * _DAY_SPAN
    same_group = pl.col("_group").shift(1) == pl.col("_group")
    day = pl.col("tom_datum").cast(pl.Int32).cast(pl.Int64) + _DAY_SHIFT
    columns = []
    for level in levels:
        at_level = pl.col("omfattning") >= level
        packed = floor + pl.when(at_level).then(day).otherwise(0)
        earlier = packed.cum_max().shift(1) - floor  # 0: no earlier row at this level
        latest_end = pl.when(same_group & (earlier > 0)).then(earlier - _DAY_SHIFT)
        covered_from = pl.max_horizontal(
            pl.col("from_datum").cast(pl.Int32).cast(pl.Int64), latest_end + 1
        )
        new_days = (day - _DAY_SHIFT - covered_from + 1).clip(lower_bound=0)
        columns.append(pl.when(at_level).then(new_days).otherwise(0).alias(f"days_{level}"))
    return (
        periods.sort([*keys, "from_datum", "tom_datum"])
        .with_columns(group.alias("_group"))
        .with_columns(columns)
        .group_by(keys)
        .agg(pl.col(f"days_{level}").sum() for level in levels)
    )


def net_days(periods: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """LazyFrame of `keys` + `net_days` (float, days) + `gross_days` (int, days): per group,
    each covered day once, weighted by its highest extent / 100 (net) or 1 (gross).

    The highest extent on a day is 25 x the number of levels 25/50/75/100 reached, so net
    days = sum over levels of 0.25 x the days covered at or above that level.
    """
    days = covered_days_at_levels(periods, keys)
    net = pl.sum_horizontal(pl.col(f"days_{level}") for level in EXTENT_LEVELS) * 0.25
    return days.select(
        *keys,
        net.cast(pl.Float64).alias("net_days"),
        pl.col("days_0").cast(pl.Int64).alias("gross_days"),
    )
