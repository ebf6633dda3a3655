"""`python -m pipeline preflight`: what a delivery holds, before anything is staged (issue 17).

First from headers and metadata alone (seconds at national scale): per table and source,
the files found, their format and encoding, how each contract column is found (by the
column map, under its own name, or as a source's constant), columns that differ between
the files of one source, files that cannot be read, and a verdict per table: `ready`,
`degraded` (an optional table not delivered) or `blocked` (a required file or column
missing, a file unreadable). Then, streaming, for the tables not blocked: rows per
file, the range of each date column, the delivered values of each categorical column
with their counts (a count below `disclosure.min_count` shown as `<N`), the values no
recode map covers, and how many rows the row rules would quarantine, by reason
(duplicates are found only by the stage). Writes `outputs/preflight/preflight.json`
and `outputs/preflight/values.csv`; no person id and no single person's value is written.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core import config, io
from pipeline.core.contract import REASON_ORDER, TABLES, Kind
from pipeline.core.errors import DeliveryError
from pipeline.stages.stage import normalise as nz
from pipeline.stages.stage.read import (
    delivered_columns,
    key_text,
    label_of,
    map_columns,
    read_sources,
    resolve_files,
)
from pipeline.stages.stage.spec import DeliveredTable, StageSpec, TableSource
from pipeline.stages.stage.validate import build_rules, judge

log = logging.getLogger(__name__)

CATEGORICAL = (Kind.CODE, Kind.EXTENT, Kind.REGION)
BLOCKED, DEGRADED, READY = "blocked", "degraded", "ready"


def found_as(source: TableSource, mapping: dict[str, str], column: str) -> str:
    """How a contract column is found in one file: its delivered name, or the constant."""
    if column in source.constants:
        return f"constant {source.constants[column]!r}"
    back = {c: d for d, c in mapping.items()}
    how = "column map" if back[column] in source.columns else "own name"
    return f"{back[column]} ({how})"


def check_source(source: TableSource) -> dict[str, Any]:
    """Headers only: the files of one source, how its columns are found, problems."""
    out: dict[str, Any] = {
        "source": source.name,
        "format": source.format,
        "encoding": source.csv.encoding if source.format == "csv" else source.encoding,
        "files": [],
        "columns": {},
        "problems": [],
    }
    try:
        files = resolve_files(source)
    except DeliveryError as err:
        out["problems"].append(str(err))
        return out
    headers: dict[str, tuple[str, ...]] = {}
    table = TABLES[source.table]
    for path in files:
        label = label_of(path)
        out["files"].append(label)
        try:
            names = delivered_columns(path, source)
            mapping = map_columns(names, table, source.columns, label, False, source.constants)
        except DeliveryError as err:
            out["problems"].append(str(err))
            continue
        headers[label] = tuple(sorted(names))
        for column in table.names:
            out["columns"].setdefault(column, found_as(source, mapping, column))
    if len(set(headers.values())) > 1:
        first = next(iter(headers.values()))
        differ = [f for f, h in headers.items() if h != first]
        out["columns_differ_between_files"] = differ
    return out


def check_table(delivered: DeliveredTable) -> dict[str, Any]:
    """Headers only: every source of one table and the table's verdict."""
    sources = [check_source(s) for s in delivered.sources]
    problems = [p for s in sources for p in s["problems"]]
    files = [f for s in sources for f in s["files"]]
    if problems:
        verdict = BLOCKED
    elif not files and not delivered.required:
        verdict = DEGRADED
    else:
        verdict = READY
    return {"table": delivered.table, "verdict": verdict, "sources": sources}


def small(count: int, min_count: int) -> str:
    """A count as preflight prints it: below the threshold (not 0) as `<min_count`."""
    return f"<{min_count}" if 0 < count < min_count else str(count)


def value_rows(
    delivered: DeliveredTable, raw: Sequence[Any], min_count: int
) -> list[dict[str, Any]]:
    """Per categorical column: each delivered value (before recoding), its count and
    whether a recode map covers it; grain: one value of one column of one source."""
    table = TABLES[delivered.table]
    out = []
    for source, frames in raw:
        columns = [c for c in table.columns if c.kind in CATEGORICAL]
        # per delivered value: its key as the recoding compares it (`read.key_text`), rows
        per_column: dict[str, dict[tuple[str | None, str | None], int]] = {
            c.name: {} for c in columns
        }
        for frame in frames:  # one pass over each file for all its categorical columns
            schema = frame.collect_schema()
            queries = [
                frame.select(
                    nz.delivered_text(pl.col(c.name), schema[c.name]).alias("v"),
                    key_text(pl.col(c.name), schema[c.name]).alias("k"),
                )
                .group_by("v", "k")
                .len()
                for c in columns
            ]
            for column, part in zip(columns, pl.collect_all(queries), strict=True):
                counts = per_column[column.name]
                for value, key, n in part.iter_rows():
                    counts[(value, key)] = counts.get((value, key), 0) + int(n)
        for column in columns:
            counts = per_column[column.name]
            recode = source.recode.get(column.name)
            for (value, key), n in sorted(
                counts.items(), key=lambda kv: (kv[0][0] is None, kv[0][0] or "")
            ):
                missing = value is None or value.strip() == ""  # never mapped, kept missing
                out.append(
                    {
                        "table": delivered.table,
                        "source": source.name,
                        "column": column.name,
                        "value": value,
                        "rows": small(n, min_count),
                        "recoded": None if recode is None or missing else key in recode,
                    }
                )
    return out


def scan_table(
    delivered: DeliveredTable, spec: StageSpec, work: Path, min_count: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Streaming: rows, date ranges, would-be quarantine by reason and the value rows."""
    table = TABLES[delivered.table]
    raw, judged = [], []
    for source in delivered.sources:
        read = read_sources(resolve_files(source), source, work)  # each file read once
        raw.append((source, [s.raw if s.raw is not None else s.frame for s in read]))
        judged += read
    reasons = dict.fromkeys((str(r) for r in REASON_ORDER), 0)
    ranges: dict[str, list[Any]] = {}
    for src in judged:
        rules = build_rules(src.frame.collect_schema(), table, spec.codes, src.decimal)
        passing, failing = judge(src.frame, rules)
        for reason, n in failing.group_by("reason").len().collect().iter_rows():
            reasons[reason] += int(n)
        dates = [c.name for c in table.columns if c.kind is Kind.DATE]
        if dates:
            row = (
                passing.select(
                    *(pl.col(d).min().alias(f"{d}_min") for d in dates),
                    *(pl.col(d).max().alias(f"{d}_max") for d in dates),
                )
                .collect()
                .row(0, named=True)
            )
            for d in dates:
                lo, hi = row[f"{d}_min"], row[f"{d}_max"]
                if lo is not None:
                    old = ranges.get(d, [lo, hi])
                    ranges[d] = [min(old[0], lo), max(old[1], hi)]
    summary = {
        "rows_by_file": {s.label: s.n_rows for s in judged},
        "rows": sum(s.n_rows for s in judged),
        "date_ranges": {d: [str(lo), str(hi)] for d, (lo, hi) in ranges.items()},
        "would_quarantine": {r: small(n, min_count) for r, n in reasons.items() if n},
    }
    values = value_rows(delivered, raw, min_count)
    unmapped = [v for v in values if v["recoded"] is False]
    summary["values_no_map_covers"] = [
        {k: v[k] for k in ("source", "column", "value", "rows")} for v in unmapped
    ]
    return summary, values


def run_preflight(cfg: Any) -> int:
    """Check the configured delivery; print and write the report; 2 if a table is blocked."""
    spec = StageSpec.from_cfg(cfg)
    min_count = int(cfg.disclosure.min_count)
    out_dir = config.resolve_path(cfg.paths.outputs) / "preflight"
    started = time.perf_counter()
    tables = [check_table(t) for t in spec.tables]
    log.info("preflight: headers of every file in %.1f s", time.perf_counter() - started)
    blocked = [t for t in tables if t["verdict"] == BLOCKED]
    for t in tables:
        files = sum(len(s["files"]) for s in t["sources"])
        log.info("preflight %s: %s (%d files)", t["table"], t["verdict"], files)
    value_table: list[dict[str, Any]] = []
    if not blocked:
        by_name = {t.table: t for t in spec.tables}
        with tempfile.TemporaryDirectory(prefix="preflight-") as work:
            for t in tables:
                if t["verdict"] == READY:
                    summary, values = scan_table(by_name[t["table"]], spec, Path(work), min_count)
                    t.update(summary)
                    value_table += values
                    for v in t["values_no_map_covers"]:
                        log.info(
                            "preflight %s.%s (%s): value %r is in no recode map (%s rows)",
                            t["table"], v["column"], v["source"] or "-", v["value"], v["rows"],
                        )  # fmt: skip
    log.info("preflight: done in %.1f s", time.perf_counter() - started)
    io.write_json(out_dir / "preflight.json", {"min_count": min_count, "tables": tables})
    io.write_csv(pl.DataFrame(value_table, schema=VALUE_SCHEMA), out_dir / "values.csv")
    if blocked:
        first = blocked[0]
        problem = next(p for s in first["sources"] for p in s["problems"])
        log.error("preflight: table %s blocked: %s", first["table"], problem)
        return 2
    return 0


VALUE_SCHEMA = {
    "table": pl.String,
    "source": pl.String,
    "column": pl.String,
    "value": pl.String,
    "rows": pl.String,
    "recoded": pl.Boolean,
}
