"""Sick days in a window around an index date, for the negative binomial model (§6.4).

Net days count each calendar day once at its highest extent, as in `spells`:
0.25 × the union length of the periods at or above each extent level
(`rules.coverage.net_days`), here after clipping every period to the window
(`sql/sickdays_window.sql`). All of the person's spells count, not only the one
holding the index.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.core import sql
from pipeline.rules.coverage import net_days


def window_days(members: pl.DataFrame, periods: pl.DataFrame | Path) -> pl.DataFrame:
    """Per `member_id`: `net_days` (float) and `gross_days` (int) in [window_start, window_end].

    `members` has member_id, lopnr, window_start, window_end (dates, inclusive).
    Members without any period in their window get 0.
    """
    pieces = sql.query("sickdays_window", {}, members=members, periods=periods).lazy()
    found = net_days(pieces, ["member_id"]).collect()
    return (
        members.select("member_id")
        .join(found, on="member_id", how="left")
        .with_columns(
            pl.col("net_days").fill_null(0.0).cast(pl.Float64),
            pl.col("gross_days").fill_null(0).cast(pl.Int64),
        )
    )
