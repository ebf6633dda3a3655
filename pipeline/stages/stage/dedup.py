"""Exact duplicates and the staged order, in one out-of-core sort (DuckDB).

The rows that pass every row rule are sorted by the table's sort key, the
remaining contract columns, then source order (file, row). Identical rows are
then adjacent and the first of each run is the first copy in source order:
it is staged, the later copies are `exact_duplicate`. Missing equals missing
(`eq_missing`). DuckDB sorts with a memory limit and spills to the work
directory, so a national AGI table (~60M rows) sorts in bounded memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipeline.core.contract import Table
from pipeline.stages.stage.validate import FILE, ROW

# DuckDB's own memory budget for the sort; beyond it, it spills to disk.
DUCKDB_MEMORY_LIMIT = "2GB"
ARROW_BATCH_ROWS = 1_000_000
FIRST_FILE, FIRST_ROW, DUPLICATE = "_first_file", "_first_row", "_is_duplicate"


def staged_order(table: Table) -> list[str]:
    """The staged sort: `Table.sort_key`, then any contract column it leaves out."""
    return [*table.sort_key, *[n for n in table.names if n not in table.sort_key]]


@dataclass(frozen=True)
class Deduplicated:
    """Passing rows split into staged rows and later copies."""

    staged: pl.DataFrame  # contract columns, contract dtypes, in staged order
    duplicates: pl.DataFrame  # FILE, ROW of each later copy, and FIRST_FILE, FIRST_ROW


def duplicate_mask(sorted_rows: pl.DataFrame, names: list[str]) -> pl.Series:
    """One bool per row: identical in `names` to the row before (missing equals missing).

    `sorted_rows` must be sorted by all of `names`, then FILE, ROW, so the first
    copy in source order is the one left False. Columns are compared one at a
    time to keep the temporaries small.

    >>> rows = pl.DataFrame({"a": [1, 1, 2, None, None], "b": [3, 3, 3, None, None]})
    >>> duplicate_mask(rows, ["a", "b"]).to_list()
    [False, True, False, False, True]
    """
    mask = pl.Series(DUPLICATE, [True] * sorted_rows.height, pl.Boolean)
    for name in names:
        column = sorted_rows[name]
        mask = mask & column.eq_missing(column.shift(1))
    if sorted_rows.height:
        mask[0] = False
    return mask.alias(DUPLICATE)


def later_copies(sorted_rows: pl.DataFrame, mask: pl.Series) -> pl.DataFrame:
    """FILE, ROW of each row flagged in `mask`, with FIRST_FILE, FIRST_ROW of its first copy."""
    first = (
        mask.to_frame()
        .select(pl.when(~pl.col(DUPLICATE)).then(pl.int_range(pl.len())).forward_fill())
        .to_series()
    )
    first_of_copies = first.filter(mask)
    copies = sorted_rows.select(FILE, ROW).filter(mask)
    return copies.with_columns(
        sorted_rows[FILE].gather(first_of_copies).alias(FIRST_FILE),
        sorted_rows[ROW].gather(first_of_copies).alias(FIRST_ROW),
    )


def sort_and_deduplicate(passing: Path, table: Table, work_dir: Path) -> Deduplicated:
    """Staged rows (sorted, without later copies) and the later copies' positions.

    `passing` is a parquet file with FILE, ROW and the contract columns.
    """
    names = table.names
    order = [*staged_order(table), FILE, ROW]
    spill = work_dir / "duckdb"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={
            "threads": os.cpu_count() or 1,
            "memory_limit": DUCKDB_MEMORY_LIMIT,
            "temp_directory": str(spill),
        }
    )
    try:
        relation = con.read_parquet(str(passing)).sort(
            *[duckdb.ColumnExpression(c).asc().nulls_last() for c in order]
        )
        # Streamed in batches, so DuckDB never holds the whole sorted result at once.
        rows = pl.from_arrow(relation.to_arrow_reader(ARROW_BATCH_ROWS).read_all())
    finally:
        con.close()
    mask = duplicate_mask(rows, names)
    if mask.any():
        duplicates = later_copies(rows, mask)
        staged = rows.select(names).filter(~mask)
    else:  # the usual case: no copy of the big table is needed
        duplicates = later_copies(rows.clear(), mask.clear())
        staged = rows.select(names)
    del rows
    return Deduplicated(staged=staged.cast(table.schema), duplicates=duplicates)
