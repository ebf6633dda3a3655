"""Stage `publish`: the one writer of `outputs/tables/` (issue 16; docs/methods.md,
"Disclosure control").

Every table a stage computes for readers is written under `outputs/results/` (never
released); the attrition flow and the GC001-outside-spells diagnostic under `outputs/`.
This stage passes each through the publication gate (`pipeline.report.publication`):
the table's spec says its counts, denominators, derived values, person statistics,
relations and the cells it shares with tables published before it; the gate hides what
the rules (config `disclosure`) forbid, re-checks the result as an attacker would and
refuses to write a table that still shows or implies a small count, naming file,
column and row. A results file without a spec is refused too. Writes
`outputs/tables/<file>` per spec, `outputs/disclosure_log.csv` (per file, the cells
shown and hidden by reason, under the rules used), and every figure that shows counts
(`FIGURES`), drawn from its protected table (the stages write their cells whole).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core import config, io
from pipeline.core.errors import PipelineError
from pipeline.report.figures import write_figure
from pipeline.report.figures.claims import life_table_rates, rank_deciles
from pipeline.report.figures.describe import figure8, figure9
from pipeline.report.figures.income import figure13, figure14
from pipeline.report.figures.published import typed
from pipeline.report.figures.registrations import figure5
from pipeline.report.publication import DisclosureRules, TableLog, publish
from pipeline.report.publication.spec import rules_from
from pipeline.report.publication.specs import SPECS

log = logging.getLogger(__name__)

# The figures that show counts, each drawn from its table as published: (png, table, draw).
# Figures of fitted models (km.png, nb_extra_days.png) are drawn by their stages.
FIGURES: tuple[tuple[str, str, Callable[[pl.DataFrame], Any]], ...] = (
    ("figure5.png", "registered_vs_reported.csv", figure5),
    ("figure8.png", "figure8.csv", figure8),
    ("figure9.png", "figure9.csv", figure9),
    ("figure13.png", "figures13_14.csv", figure13),
    ("figure14.png", "figures13_14.csv", figure14),
    ("gc001_life_table.png", "gc001_life_table.csv", life_table_rates),
    ("gc001_length_rank.png", "gc001_length_rank_deciles.csv", rank_deciles),
)


def rules_of(cfg: Any) -> DisclosureRules:
    """The disclosure rules of config `disclosure`; PipelineError on an unknown choice."""
    try:
        return rules_from(cfg.disclosure)
    except ValueError as err:
        raise PipelineError(str(err)) from err


def log_frame(logs: list[TableLog], rules: DisclosureRules) -> pl.DataFrame:
    """The output-checking log: one row per published file, count cells shown, hidden by
    reason (primary, complement, secondary, linked to another table, hidden by the
    stage), the values hidden with them, rounded, non-finite values emptied, and the
    rules used."""
    rows = [
        {
            "file": entry.file,
            "cells_shown": entry.shown,
            **{f"hidden_{reason}": n for reason, n in entry.hidden.items()},
            "values_hidden_with_them": entry.values_hidden,
            "rounded": entry.rounded,
            "non_finite_emptied": entry.non_finite,
            **{f"rule_{k}": str(v) for k, v in asdict(rules).items()},
        }
        for entry in logs
    ]
    return pl.DataFrame(rows)


def source_path(outputs: Path, source: str, file: str) -> Path:
    """Where a stage wrote the unpublished table."""
    return (outputs / "results" if source == "results" else outputs) / file


def run(cfg: Any) -> None:
    """Publish every table through the gate; write outputs/tables/* and disclosure_log.csv."""
    rules = rules_of(cfg)
    outputs = config.resolve_path(cfg.paths.outputs)
    known = {spec.file for spec in SPECS if spec.source == "results"}
    unknown = sorted(p.name for p in (outputs / "results").glob("*.csv") if p.name not in known)
    if unknown:
        raise PipelineError(
            f"outputs/results/{unknown[0]}: no publication spec (pipeline/report/publication/"
            "specs.py); the gate does not write a table whose counts it does not know"
        )
    tables = outputs / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    for stale in tables.glob("*.csv"):
        stale.unlink()
    published: dict[str, pl.DataFrame] = {}
    logs = []
    for spec in SPECS:
        path = source_path(outputs, spec.source, spec.file)
        if not path.exists():
            raise PipelineError(f"{path}: missing; the stage that writes it must run first")
        frame = pl.read_csv(path, infer_schema=False)
        protected, entry = publish(frame, spec, rules, published)
        published[spec.file] = protected
        io.write_csv(protected, tables / spec.file)
        logs.append(entry)
    io.write_csv(log_frame(logs, rules), outputs / "disclosure_log.csv")
    # the figures of counts are drawn here, from what may be shown
    for png, file, draw in FIGURES:
        write_figure(draw(typed(published[file])), outputs / "figures" / png)
    hidden = sum(sum(e.hidden.values()) for e in logs)
    log.info(
        "publish: %d tables, %d cells shown, %d hidden (threshold %d)",
        len(logs),
        sum(e.shown for e in logs),
        hidden,
        rules.min_count,
    )
