"""Staging one table: judge every delivered row, split staged from quarantined.

`stage_table(sources, table, codes, work_dir)` is the whole stage for one
table without any config or output path: the row rules in one streaming pass
per file (passing rows and failing rows spilled to parquet in `work_dir`), one
out-of-core sort for duplicates and the staged order, the delivered text of
every quarantined row merged in source order, and the pandera guard. Memory
stays bounded whether few or all rows fail. `stage_frames` wraps it for
in-memory frames (tests, notebooks).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core.contract import REASON_ORDER, TABLES, Reason, Table
from pipeline.core.errors import DeliveryError
from pipeline.stages.stage import normalise as nz
from pipeline.stages.stage.dedup import FIRST_FILE, FIRST_ROW, sort_and_deduplicate
from pipeline.stages.stage.guard import check_staged
from pipeline.stages.stage.read import Source
from pipeline.stages.stage.spec import CodeLists
from pipeline.stages.stage.validate import FILE, ROW, build_rules, judge, lookup

log = logging.getLogger(__name__)

QUARANTINE_LEAD: dict[str, pl.DataType] = {
    "source_file": pl.String(),
    "source_row": pl.Int64(),
    "reason": pl.String(),
    "detail": pl.String(),
}


def quarantine_schema(table: Table) -> dict[str, pl.DataType]:
    """Columns of `outputs/quarantine/<table>.parquet`: 4 lead columns, then contract columns."""
    return {**QUARANTINE_LEAD, **{n: pl.String() for n in table.names}}


@dataclass(frozen=True)
class StageResult:
    """One staged table: the staged rows, the quarantined rows and their counts."""

    table: Table
    staged: pl.DataFrame  # contract columns and dtypes, sorted by staged order
    # quarantine_schema(table), in source order; lazy, so that a delivery where
    # most rows fail is streamed to disk instead of held in memory
    quarantine: pl.LazyFrame
    rows_in_by_file: dict[str, int]  # delivered data rows per file label, in file order
    by_reason: dict[str, int]  # quarantined rows per reason, every reason (0 when none)

    @property
    def rows_in(self) -> int:
        """Delivered data rows over all files."""
        return sum(self.rows_in_by_file.values())

    @property
    def n_quarantined(self) -> int:
        """Quarantined rows over all reasons."""
        return sum(self.by_reason.values())

    def counts(self) -> dict[str, Any]:
        """The table's entry in row_counts.json; raises if in != staged + quarantined."""
        if self.rows_in != self.staged.height + self.n_quarantined:
            raise RuntimeError(
                f"{self.table.name}: {self.rows_in} rows in but {self.staged.height} staged + "
                f"{self.n_quarantined} quarantined (a bug in stage)"
            )
        return {
            "status": "staged",
            "files": list(self.rows_in_by_file),
            "rows_in_by_file": dict(self.rows_in_by_file),
            "rows_in": self.rows_in,
            "staged": self.staged.height,
            "quarantined": self.n_quarantined,
            "by_reason": dict(self.by_reason),
        }


POSITION = "_stage_position"  # FILE and ROW in one sortable Int64


def _position() -> pl.Expr:
    return (pl.col(FILE).cast(pl.Int64) * 2**40 + pl.col(ROW).cast(pl.Int64)).alias(POSITION)


def _duplicate_rows(
    duplicates: pl.DataFrame, sources: Sequence[Source], table: Table, schemas: list[pl.Schema]
) -> pl.LazyFrame:
    """FILE, ROW, reason, detail and the delivered text of each later copy, in source order."""
    labels = [s.label for s in sources]
    columns = [FILE, ROW, "reason", "detail", *table.names]
    detail = pl.format(
        "all columns: identical after normalisation to row {} of {}",
        pl.col(FIRST_ROW),
        lookup(pl.col(FIRST_FILE), labels),
    )
    parts = []
    for i in duplicates[FILE].unique().sort().to_list():
        positions = duplicates.filter(pl.col(FILE) == i).with_columns(
            pl.col(ROW).cast(schemas[i][ROW])
        )
        raw = sources[i].frame.select(
            ROW, *[nz.delivered_text(pl.col(n), schemas[i][n]).alias(n) for n in table.names]
        )
        copies = raw.join(positions.lazy(), on=ROW, how="inner", maintain_order="left")
        parts.append(
            copies.with_columns(
                pl.lit(str(Reason.EXACT_DUPLICATE)).alias("reason"), detail.alias("detail")
            )
            .select(columns)
            .cast({FILE: pl.UInt16, ROW: pl.Int64})
        )
    if not parts:
        return pl.LazyFrame(schema={FILE: pl.UInt16, ROW: pl.Int64, **quarantine_schema(table)})
    return pl.concat(parts)


def _quarantine(
    failing: pl.LazyFrame, duplicates: pl.LazyFrame, labels: Sequence[str], table: Table
) -> pl.LazyFrame:
    """Failing rows and later copies merged in source order, as written to quarantine."""
    columns = [FILE, ROW, "reason", "detail", *table.names]
    both = (
        failing.select(columns)
        .with_columns(_position())
        .merge_sorted(duplicates.select(columns).with_columns(_position()), key=POSITION)
    )
    schema = quarantine_schema(table)
    return (
        both.with_columns(
            lookup(pl.col(FILE), labels).alias("source_file"), pl.col(ROW).alias("source_row")
        )
        .select(list(schema))
        .cast(schema)
    )


def stage_table(
    sources: Sequence[Source], table: Table, codes: CodeLists, work_dir: Path
) -> StageResult:
    """Staged and quarantined rows of one table delivered as `sources` (one per file).

    Intermediate files go to `work_dir`; the returned `quarantine` reads one of
    them, so collect or write it before `work_dir` is removed. Raises
    DeliveryError when a column's dtype cannot be read or a file cannot be
    parsed; RuntimeError if the staged rows fail the final guard.
    """
    schemas = [src.frame.collect_schema() for src in sources]
    passing_parts, failing_parts = [], []
    for i, (src, schema) in enumerate(zip(sources, schemas, strict=True)):
        passing, failing = judge(src.frame, build_rules(schema, table, codes, src.decimal))
        file_index = pl.lit(i, pl.UInt16).alias(FILE)
        passing_parts.append(passing.with_columns(file_index, pl.col(ROW).cast(pl.Int64)))
        failing_parts.append(failing.with_columns(file_index, pl.col(ROW).cast(pl.Int64)))
    passing_all = (
        pl.concat(passing_parts)
        if passing_parts
        else pl.LazyFrame(schema={ROW: pl.Int64, **table.schema, FILE: pl.UInt16})
    )
    failing_all = (
        pl.concat(failing_parts)
        if failing_parts
        else pl.LazyFrame(schema={FILE: pl.UInt16, ROW: pl.Int64, **quarantine_schema(table)})
    )
    passing_path = work_dir / f"{table.name}.passing.parquet"
    failing_path = work_dir / f"{table.name}.failing.parquet"
    started = time.perf_counter()
    try:
        # one pass over the delivery, both outputs streamed to disk in source order
        pl.collect_all(
            [
                passing_all.sink_parquet(passing_path, compression="lz4", lazy=True),
                failing_all.sink_parquet(failing_path, compression="lz4", lazy=True),
            ],
            engine="streaming",
        )
    except pl.exceptions.ComputeError as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else "ComputeError"
        expected = "files that parse (CSV: check csv.delimiter and csv.encoding)"
        raise DeliveryError(table.name, None, expected, f"parse error: {message}") from None
    log.info("%s: row rules in %.1f s", table.name, time.perf_counter() - started)
    started = time.perf_counter()
    deduplicated = sort_and_deduplicate(passing_path, table, work_dir)
    passing_path.unlink(missing_ok=True)
    duplicates = _duplicate_rows(deduplicated.duplicates, sources, table, schemas)
    labels = [s.label for s in sources]
    quarantine_path = work_dir / f"{table.name}.quarantine.parquet"
    _quarantine(pl.scan_parquet(failing_path), duplicates, labels, table).sink_parquet(
        quarantine_path, compression="lz4", engine="streaming"
    )
    quarantine = pl.scan_parquet(quarantine_path)
    found = dict(quarantine.group_by("reason").len().collect(engine="streaming").iter_rows())
    log.info("%s: duplicates and sort in %.1f s", table.name, time.perf_counter() - started)
    started = time.perf_counter()
    staged = check_staged(deduplicated.staged, table, codes)
    log.info("%s: schema guard in %.1f s", table.name, time.perf_counter() - started)
    return StageResult(
        table=table,
        staged=staged,
        quarantine=quarantine,
        rows_in_by_file={s.label: s.n_rows for s in sources},
        by_reason={str(r): int(found.get(str(r), 0)) for r in REASON_ORDER},
    )


def source_from_frame(frame: pl.DataFrame | pl.LazyFrame, label: str, decimal: str = ".") -> Source:
    """An in-memory frame with contract column names as a Source (rows numbered from 1)."""
    lazy = frame.lazy().with_row_index(ROW, offset=1)
    n_rows = lazy.select(pl.len()).collect().item()
    return Source(label=label, frame=lazy, n_rows=int(n_rows), decimal=decimal)


def stage_frames(
    frames: pl.DataFrame | Mapping[str, pl.DataFrame],
    table: str,
    codes: CodeLists,
    decimal: str = ".",
) -> StageResult:
    """`stage_table` on in-memory frames ({label: frame}; one frame is labelled "frame").

    The result's `quarantine` is held in memory (the work directory is gone).
    """
    named = {"frame": frames} if isinstance(frames, pl.DataFrame) else dict(frames)
    sources = [source_from_frame(f, label, decimal) for label, f in named.items()]
    with tempfile.TemporaryDirectory(prefix="stage-") as work:
        result = stage_table(sources, TABLES[table], codes, Path(work))
        return replace(result, quarantine=result.quarantine.collect().lazy())
