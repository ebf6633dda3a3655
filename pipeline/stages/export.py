"""Stage `export`: `outputs/export/`, the only folder meant to leave the secure server
(issue 16; docs/methods.md, "Disclosure control").

It holds the published tables (as the gate wrote them), the figures, the report, the
workbook, `metrics.json`, the disclosure log and the comparison with the published
numbers, plus `manifest.csv`: per file its size, md5, what it shows and the checks it
passed. Checks, each refusing the whole export with a message naming file and check:
an allowed file type; within the size limits (`export.max_file_mb`, `max_total_mb`);
no column named as a person or spell identifier; no cell that is a calendar date (a
person-level date) in a table; no server path (an absolute path of this machine) in
any text; every table passes the gate's attacker check again (`check.violations`).
The folder is rebuilt whole on each run and swapped in only when every check passed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core import config, io
from pipeline.core.errors import PipelineError
from pipeline.report.publication.check import violations
from pipeline.report.publication.spec import rules_from
from pipeline.report.publication.specs import SPECS

log = logging.getLogger(__name__)

IDENTIFIERS = re.compile(  # person numbers and pseudonyms, spell / set / row keys
    r"^(lop_?nr.*|.*person_?n(umme)?r.*|pnr|person_?id|pid|(spell|set|row|member)_?id)$", re.I
)
DATE = re.compile(r"^\d{4}[-/]\d{2}[-/]\d{2}([ T].*)?$")  # a calendar date, with or without time
SERVER_PATH = re.compile(  # a POSIX home/work/temp path, a Windows drive path, a UNC share
    r"(?<![\w.])(/(home|work|tmp|root|Users|mnt|srv|data|var|opt|scratch|proj)/[\w.\-/]+"
    r"|~/[\w.\-/]+"
    r"|[A-Za-z]:\\[\w\\.\- ]+|\\\\[\w.\-]+\\)"
)
REPORT_FILES = {
    "report.html": "the report (Swedish), with the output-checking section",
    "report.xlsx": "the report's tables as a workbook",
    "metrics.json": "key numbers of the run",
    "disclosure_log.csv": "the output-checking log: per file, cells shown and hidden by reason",
    "published_comparison.csv": "our numbers beside the published ones",
}


def bundle(outputs: Path) -> list[tuple[Path, str, str]]:
    """(source, name inside export/, what it shows) for every file the export holds."""
    described = {spec.file: spec.describes for spec in SPECS}
    files = [(outputs / "tables" / f, f"tables/{f}", described[f]) for f in sorted(described)]
    files += [
        (p, f"figures/{p.name}", "figure")
        for p in sorted((outputs / "figures").glob("*"))
        if p.is_file()
    ]
    files += [(outputs / name, name, what) for name, what in REPORT_FILES.items()]
    return files


def text_of(path: Path) -> str:
    """The readable text of a file: itself, or the XML parts of a workbook."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as book:
            return "\n".join(
                book.read(n).decode("utf-8", "replace")
                for n in book.namelist()
                if n.endswith(".xml")
            )
    if path.suffix in {".csv", ".html", ".json", ".txt", ".md"}:
        return path.read_text(encoding="utf-8", errors="replace")
    return ""


def file_problems(path: Path, name: str, limits: Any) -> list[str]:
    """Why `path` may not leave (type, size, identifiers, dates, server paths); grain: one
    message per problem."""
    problems = []
    if path.suffix.lstrip(".") not in set(limits.allowed_types):
        problems.append(f"file type {path.suffix!r} is not in export.allowed_types")
    if path.stat().st_size > float(limits.max_file_mb) * 2**20:
        problems.append(f"{path.stat().st_size} bytes exceeds export.max_file_mb")
    if path.suffix == ".csv":
        frame = pl.read_csv(path, infer_schema=False)
        problems += [
            f"column {c!r} names a person or spell identifier"
            for c in frame.columns
            if IDENTIFIERS.match(c)
        ]
        for column in frame.columns:
            dates = frame[column].drop_nulls().str.contains(DATE.pattern).sum()
            if dates:
                problems.append(
                    f"column {column!r} holds {dates} calendar dates (person-level dates)"
                )
    found = SERVER_PATH.search(text_of(path))
    if found:
        problems.append(f"a server path {found.group(0)!r}")
    return problems


def md5(path: Path) -> str:
    """Hex md5 of a file's bytes."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def run(cfg: Any) -> None:
    """Check every releasable file and write outputs/export/ with manifest.csv."""
    outputs = config.resolve_path(cfg.paths.outputs)
    limits = cfg.export
    try:
        rules = rules_from(cfg.disclosure)
    except ValueError as err:
        raise PipelineError(str(err)) from err
    files = bundle(outputs)
    missing = [str(src) for src, _, _ in files if not src.exists()]
    if missing:
        raise PipelineError(f"export: {missing[0]} is missing; run the stages before export")
    published: dict[str, pl.DataFrame] = {}
    problems = []
    for spec in SPECS:
        frame = pl.read_csv(outputs / "tables" / spec.file, infer_schema=False)
        problems += violations(frame, spec, rules, published)
        published[spec.file] = frame
    rows = []
    for src, name, what in files:
        problems += [f"{name}: {p}" for p in file_problems(src, name, limits)]
        rows.append({"file": name, "bytes": src.stat().st_size, "md5": md5(src), "shows": what})
    total = sum(r["bytes"] for r in rows)
    if total > float(limits.max_total_mb) * 2**20:
        problems.append(f"export: {total} bytes in all exceeds export.max_total_mb")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PipelineError(f"export refused: {problems[0]}{more}")
    checks = "type, size, no identifier column, no date cell, no server path"
    manifest = pl.DataFrame(rows).with_columns(
        pl.when(pl.col("file").str.starts_with("tables/"))
        .then(pl.lit(f"{checks}, disclosure gate re-check"))
        .otherwise(pl.lit(checks))
        .alias("checks_passed")
    )
    target = outputs / "export"
    staging = outputs / ".export.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    for src, name, _ in files:
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, staging / name)
    io.write_csv(manifest, staging / "manifest.csv")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    log.info("export: %d files, %.1f MB, every check passed", len(rows), total / 2**20)
