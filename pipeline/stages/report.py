"""`report` stage: one self-contained HTML report, one Excel workbook, `metrics.json`.

Everything shown comes from files under `outputs/tables` (written by the `publish`
stage's disclosure gate) and `outputs/figures`; the report adds no new
numbers, only layout, the configuration used, the data version from DVC, the
attrition flow, our deviations from the published method and how each known
inconsistency of the report was resolved. No timestamps: same inputs, same bytes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path, PureWindowsPath
from typing import Any

import polars as pl
import yaml
from omegaconf import OmegaConf

from pipeline.core import config, io
from pipeline.report.claims import claim_lines
from pipeline.report.html import build_html, directions, with_published
from pipeline.report.tables import (
    key_metrics,
    published_comparison,
    read_table,
)
from pipeline.report.workbook import ATTRITION_SHEET, sheet_notes, write_workbook

log = logging.getLogger(__name__)


def shown_dir(data_dir: str) -> str:
    """The delivery directory as the report may print it: a path relative to the project as
    is, an absolute one by its last part only (a server path must not leave; `export`)."""
    if ":" in data_dir or data_dir.startswith("\\"):  # a Windows drive or share
        return PureWindowsPath(data_dir).name
    return Path(data_dir).name if Path(data_dir).is_absolute() else data_dir


def data_version(dvc_lock: Path, data_dir: str) -> dict[str, str]:
    """The delivery's content hash as DVC recorded it for the `stage` stage (md5 of its dir),
    and the directory as the report prints it (`shown_dir`)."""
    shown = shown_dir(data_dir)
    if not dvc_lock.exists():
        return {"data_dir": shown, "md5": "not yet recorded by DVC"}
    lock = yaml.safe_load(dvc_lock.read_text(encoding="utf-8")) or {}
    for dep in lock.get("stages", {}).get("stage", {}).get("deps", []):
        if dep.get("path") == data_dir:
            return {"data_dir": shown, "md5": str(dep.get("md5"))}
    return {"data_dir": shown, "md5": "not found in dvc.lock"}


def flat_config(cfg: Any, sections: list[str]) -> pl.DataFrame:
    """The configuration used, one row per leaf key (`section.key`, value as YAML text)."""
    rows = []
    for section in sections:
        node = OmegaConf.to_container(cfg[section], resolve=True)
        stack = [(section, node)]
        while stack:
            prefix, value = stack.pop()
            if isinstance(value, dict):
                stack += [(f"{prefix}.{k}", v) for k, v in reversed(list(value.items()))]
            else:
                rows.append((prefix, json.dumps(value, ensure_ascii=False)))
    return pl.DataFrame(rows, schema=["key", "value"], orient="row")


def show_published(setting: str, data_name: str) -> bool:
    """Whether the report compares with the published numbers (`report.compare_published`)."""
    if setting == "auto":
        return data_name != "synthetic"
    return str(setting).lower() == "true"


def run(cfg: Any) -> None:
    """Write outputs/report.html, outputs/report.xlsx and outputs/metrics.json."""
    outputs = config.resolve_path(cfg.paths.outputs)
    tables_dir, figures_dir = outputs / "tables", outputs / "figures"
    rep = cfg.report
    tables = [(t.file, t.title, read_table(tables_dir / t.file)) for t in rep.tables]
    figures = [(f.title, figures_dir / f.file) for f in rep.figures]
    attrition = read_table(tables_dir / "attrition.csv")  # published through the gate
    sections = [s for s in REPORTED_SECTIONS if s in cfg]
    settings = flat_config(cfg, sections)
    version = data_version(config.ROOT / "dvc.lock", str(cfg.data.dir))
    document = build_html(
        str(rep.title),
        str(rep.subtitle),
        tables,
        figures,
        attrition,
        settings,
        version,
        [dict(d) for d in rep.deviations],
        [dict(i) for i in rep.inconsistencies],
        directions(read_table(tables_dir / "income_directions.csv")),
        claim_lines(tables_dir, float(cfg.claims.smd_threshold)),
        read_table(outputs / "disclosure_log.csv"),
    )
    # Always written (on synthetic data it shows how far the planted shapes are from the
    # published ones); shown in the HTML for a real delivery (`report.compare_published`).
    entries = [OmegaConf.to_container(e) for e in rep.published]
    comparison = published_comparison(tables_dir, entries)
    io.write_csv(comparison, outputs / "published_comparison.csv")
    if show_published(str(rep.compare_published), str(cfg.data.name)):
        document = with_published(document, comparison)
    io.write_text_atomic(outputs / "report.html", document)
    notes = sheet_notes([str(t.file) for t in rep.tables])
    write_workbook(outputs / "report.xlsx", [(*ATTRITION_SHEET, attrition), *tables], notes)
    io.write_json(outputs / "metrics.json", key_metrics(tables_dir))
    log.info(
        "report: %d tables, %d figures, %d config keys", len(tables), len(figures), settings.height
    )


REPORTED_SECTIONS = [
    "spells",
    "exposure",
    "cohort",
    "covariates",
    "ownership",
    "income",
    "table3",
    "regression",
    "significance",
    "riskset",
    "nb",
    "survival",
    "fk",
    "regions",
    "describe",
    "claims",
    "disclosure",
]
