"""Stage `stage`: read the configured delivery, type and validate it, quarantine bad rows.

Writes `outputs/staged/<table>.parquet` (contract columns and dtypes, sorted by
`Table.sort_key`), `outputs/quarantine/<table>.parquet` (every rejected row
with its file, row, reason and the delivered values as text) and
`outputs/staged/row_counts.json`. Every delivered row is staged or quarantined;
the counts prove it per table. Column meanings: docs/schemas.md; mapping a
real delivery: docs/real-delivery.md.

Modules: `spec` (config slice), `read` (files, formats, column names),
`normalise` (parsing by dtype), `validate` (row rules), `dedup` (duplicates and
staged order), `guard` (pandera schema), `table` (one table, no I/O paths).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
from omegaconf import DictConfig

from pipeline.core.contract import REASON_ORDER, TABLES
from pipeline.core.io import write_json, write_parquet
from pipeline.stages.stage.read import Source, check_columns, read_sources, resolve_files
from pipeline.stages.stage.spec import CodeLists, DeliveredTable, StageSpec, TableSource
from pipeline.stages.stage.table import StageResult, quarantine_schema, stage_frames, stage_table

__all__ = [
    "CodeLists",
    "StageResult",
    "check_delivery",
    "run",
    "stage_frames",
    "stage_one",
    "stage_table",
]

log = logging.getLogger(__name__)

ROW_COUNTS = "row_counts.json"


def _log_counts(name: str, counts: dict[str, Any]) -> None:
    reasons = ", ".join(f"{r} {n:,}" for r, n in counts["by_reason"].items() if n) or "none"
    log.info(
        "%s: %s rows in (%d files), %s staged, %s quarantined (%s)",
        name,
        f"{counts['rows_in']:,}",
        len(counts["files"]),
        f"{counts['staged']:,}",
        f"{counts['quarantined']:,}",
        reasons,
    )


def _missing_optional(delivered: DeliveredTable) -> dict[str, Any]:
    paths = [p for s in delivered.sources for p in s.paths]
    log.info("%s: optional and not delivered (%s); skipped", delivered.table, ", ".join(paths))
    return {
        "status": "not_delivered",
        "files": [],
        "rows_in_by_file": {},
        "rows_in": 0,
        "staged": 0,
        "quarantined": 0,
        "by_reason": {str(r): 0 for r in REASON_ORDER},
    }


def check_delivery(spec: StageSpec) -> dict[str, list[tuple[TableSource, list[Path]]]]:
    """The files of each table's sources, once every file is found and has the contract's
    columns.

    Reads headers and metadata only, so a wrong path or column map fails in
    seconds, before any table is staged.
    """
    files = {}
    for delivered in spec.tables:
        found = [(source, resolve_files(source)) for source in delivered.sources]
        for source, paths in found:
            check_columns(paths, source)
        files[delivered.table] = found
    return files


def source_counts(sources: list[Source]) -> dict[str, Any]:
    """Per configured source (in order): its files, rows in, values each recode changed
    and missing values staged as the configured unknown."""
    out: dict[str, Any] = {}
    for source in sources:
        entry = out.setdefault(
            source.source, {"files": [], "rows_in": 0, "recoded": {}, "kept_as_unknown": {}}
        )
        entry["files"].append(source.label)
        entry["rows_in"] += source.n_rows
        for key, n in source.recoded.items():
            column, _, unknown = key.partition(":")
            counts = entry["kept_as_unknown" if unknown else "recoded"]
            counts[column] = counts.get(column, 0) + n
    return out


def stage_one(
    delivered: DeliveredTable,
    files: list[tuple[TableSource, list[Path]]],
    spec: StageSpec,
    work_root: Path,
) -> dict[str, Any]:
    """Stage one table from its sources' files and write its two parquet files; returns its
    counts."""
    table = TABLES[delivered.table]
    started = time.perf_counter()
    staged_path = spec.staged_dir / f"{table.name}.parquet"
    quarantine_path = spec.quarantine_dir / f"{table.name}.parquet"
    if not any(paths for _, paths in files):
        write_parquet(pl.DataFrame(schema=table.schema), staged_path)
        write_parquet(pl.DataFrame(schema=quarantine_schema(table)), quarantine_path)
        return _missing_optional(delivered)
    with tempfile.TemporaryDirectory(prefix=f"{table.name}-", dir=work_root) as work:
        sources = [s for source, paths in files for s in read_sources(paths, source, Path(work))]
        result = stage_table(sources, table, spec.codes, Path(work))
        counts = {**result.counts(), "sources": source_counts(sources)}
        write_parquet(result.staged, staged_path)
        write_parquet(result.quarantine, quarantine_path)
    _log_counts(table.name, counts)
    log.info("%s: staged in %.1f s", table.name, time.perf_counter() - started)
    return counts


def run(cfg: DictConfig) -> None:
    """Stage every contract table of the configured delivery (`cfg.data`)."""
    spec = StageSpec.from_cfg(cfg)
    files = check_delivery(spec)
    spec.staged_dir.mkdir(parents=True, exist_ok=True)
    spec.quarantine_dir.mkdir(parents=True, exist_ok=True)
    # Scratch space beside the outputs (not /tmp, which may be small on a secure server).
    work_root = Path(tempfile.mkdtemp(prefix=".stage-work-", dir=spec.staged_dir.parent))
    try:
        tables = {t.table: stage_one(t, files[t.table], spec, work_root) for t in spec.tables}
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    balanced = all(t["rows_in"] == t["staged"] + t["quarantined"] for t in tables.values())
    if not balanced:
        raise RuntimeError("row counts do not balance (a bug in stage)")
    write_json(
        spec.staged_dir / ROW_COUNTS,
        {"tables": tables, "check": {"rows_in_equals_staged_plus_quarantined": balanced}},
    )
