"""`income` stage: person-month work income from AGI (analysis-spec.md §0).

The sum over employers per person and month, negative corrections kept, in
DuckDB (`sql/income_monthly.sql`). The file is sparse: a month inside AGI
coverage without a row has income 0 and is not written; months outside
coverage are unobserved.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core import config, sql

log = logging.getLogger(__name__)


def write_income_monthly(
    agi: pl.DataFrame | Path, first_month: int, last_month: int, path: Path
) -> Path:
    """Write the person-month income file (`sql/income_monthly.sql`) to `path`."""
    params = {"first_month": first_month, "last_month": last_month}
    return sql.to_parquet("income_monthly", params, path, agi=agi)


def run(cfg: Any) -> None:
    """Read staged `agi`, write outputs/income_monthly.parquet."""
    agi = config.resolve_path(cfg.paths.staged) / "agi.parquet"
    out = config.resolve_path(cfg.paths.outputs) / "income_monthly.parquet"
    write_income_monthly(agi, int(cfg.income.first_month), int(cfg.income.last_month), out)
    summary = (
        pl.scan_parquet(out)
        .select(
            pl.len().alias("months"),
            pl.col("lopnr").n_unique().alias("persons"),
            (pl.col("income_sek") < 0).sum().alias("negative"),
            (pl.col("n_rows") > 1).sum().alias("several_rows"),
        )
        .collect()
        .row(0, named=True)
    )
    log.info(
        "%d person-months with AGI rows of %d persons (%d with several rows, %d net negative)",
        summary["months"],
        summary["persons"],
        summary["several_rows"],
        summary["negative"],
    )
