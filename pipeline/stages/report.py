"""`report` stage: one self-contained HTML report, one Excel workbook, `metrics.json`.

Everything shown comes from files under `outputs/tables` (written by the `publish`
stage's disclosure gate) and `outputs/figures`; the report adds no new
numbers, only layout, the configuration used, the data version from DVC, the
attrition flow, our deviations from the published method and how each known
inconsistency of the report was resolved. No timestamps: same inputs, same bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path, PureWindowsPath
from typing import Any

import polars as pl
import yaml
from omegaconf import OmegaConf

from pipeline.core import config, io
from pipeline.report import layouts, published, words
from pipeline.report.claims import claim_lines
from pipeline.report.headlines import headlines
from pipeline.report.html import Figure, Page, Section, disclosure_section, render
from pipeline.report.income_tables import b6_blocks
from pipeline.report.layouts import Layout, Row
from pipeline.report.sentences import directions
from pipeline.report.tables import key_metrics, read_table
from pipeline.report.workbook import write_workbook

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
    """Whether the report compares with the published numbers (`report.compare_published`).

    >>> show_published("auto", "mona_2026"), show_published("false", "mona_2026")
    (True, False)
    """
    config.check_choices({"report.compare_published": (setting.lower(), ("auto", "true", "false"))})
    if setting.lower() == "auto":
        return data_name != "synthetic"
    return str(setting).lower() == "true"


PUBLICATION_LAYOUTS = ("table2.csv", "table_b3.csv", "table_b4.csv", "table_b5.csv",
                       "table3.csv", "table_b6.csv")  # fmt: skip


def layout_of(file: str, read: Callable[[str], pl.DataFrame], rep: Any, codes: Any) -> Layout:
    """The layout of a table file: the publication's for Table 2, B3, B4, B5, Table 3 and B6
    (built from the long tables), a generic one with Swedish headers for the others."""
    stars = {str(k): bool(v) for k, v in rep.stars.items()}
    blocks = {str(k): str(v) for k, v in rep.block_names.items()}
    if file == "table2.csv":
        return layouts.table2(read("table2_long.csv"), blocks)
    if file == "table_b3.csv":
        ownerships = [str(v) for v in codes.ownership.values()]
        return layouts.table_b3(
            read("table_b3_long.csv"), read("table_b3_age.csv"), ownerships, blocks
        )
    if file in ("table_b4.csv", "table_b5.csv", "table3.csv"):
        table = {"table_b4.csv": "B4", "table_b5.csv": "B5", "table3.csv": "Tabell 3"}[file]
        return layouts.income_table(read("income_tables_long.csv"), table, stars[table])
    if file == "table_b6.csv":
        order = [(block, categories) for block, _, categories in b6_blocks(codes)]
        return layouts.table_b6(read("table_b6.csv"), order)
    return layouts.generic(read(file), words.code_labels(codes))


def hidden_note(log: pl.DataFrame, file: str) -> str:
    """What the gate withheld in `file`, in words (from outputs/disclosure_log.csv)."""
    row = log.filter(pl.col("file") == file)
    if row.height != 1:
        return ""
    r = row.row(0, named=True)
    hidden = "Dolda: "  # the log's columns of cells the gate withheld, by reason
    parts = [
        f"{r[c]} {label.removeprefix(hidden)}"
        for c, label in words.DISCLOSURE_COLUMNS.items()
        if label.startswith(hidden) and r.get(c) not in (None, "", "0")
    ]
    if not parts:
        return "Röjandekontroll: inget dolt."
    return f"Röjandekontroll: dolda celler ('..'): {', '.join(parts)}."


def attrition_frame(attrition: pl.DataFrame, cfg: Any) -> pl.DataFrame:
    """The attrition flow with each step in Swedish words (`words.STEPS`, parameters from the
    configuration) instead of the stage's English key and description."""
    cohort = cfg.cohort
    params = {
        "window_start": str(cohort.window_start),
        "window_end": str(cohort.window_end),
        "age_min": str(cohort.age_min),
        "age_max": str(cohort.age_max),
        "region_basis": words.REGION_BASIS.get(str(cohort.region_basis), str(cohort.region_basis)),
        "regions": ", ".join(str(r) for r in cohort.regions),
        "exclude_insured_types": ", ".join(str(t) for t in cohort.exclude_insured_types) or "inga",
        "min_days": str(cohort.min_control_spell_days),
    }
    steps = {k: v.format(**params) for k, v in words.STEPS.items()}
    return attrition.with_columns(
        pl.col("step").replace_strict(steps, default=pl.col("step"), return_dtype=pl.String)
    ).drop("description")


def run_date() -> str:
    """The report's date: SOURCE_DATE_EPOCH when set (reproducible builds), else today (UTC)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    return moment.date().isoformat()


def run(cfg: Any) -> None:
    """Write outputs/report.html, outputs/report.xlsx and outputs/metrics.json."""
    rep = cfg.report
    compare = show_published(str(rep.compare_published), str(cfg.data.name))  # a typo stops here
    outputs = config.resolve_path(cfg.paths.outputs)
    tables_dir, figures_dir = outputs / "tables", outputs / "figures"
    read = functools.cache(lambda name: read_table(tables_dir / name))
    log_frame = read_table(outputs / "disclosure_log.csv")
    sections = [
        Section(
            Path(t.file).stem,
            str(t.title),
            layout_of(str(t.file), read, rep, cfg.codes),
            tuple(n for n in (str(t.get("note", "")), hidden_note(log_frame, t.file)) if n),
        )
        for t in rep.tables
    ]
    figures = [
        Figure.from_png(figures_dir / f.file, str(f.title), str(f.get("note", "")))
        for f in rep.figures
    ]
    attrition = read_table(tables_dir / "attrition.csv")  # published through the gate
    settings = flat_config(cfg, [s for s in REPORTED_SECTIONS if s in cfg])
    config_hash = hashlib.sha256(settings.write_csv().encode()).hexdigest()[:12]
    values = published.read_values(config.resolve_path(rep.published_values))
    files = sorted({f for f in values["file"].unique() if f})
    comparison = published.comparison(values, {f: read(f) for f in files})
    io.write_csv(comparison, outputs / "published_comparison.csv")
    page = Page(
        title=str(rep.title),
        subtitle=str(rep.subtitle),
        version=data_version(config.ROOT / "dvc.lock", str(cfg.data.dir)),
        config_hash=config_hash,
        run_date=run_date(),
        min_count=str(cfg.disclosure.min_count),
        headlines=headlines(read),
        attrition=Section(
            "urval",
            words.SECTIONS["attrition"],
            layouts.generic(attrition_frame(attrition, cfg)),
            (hidden_note(log_frame, "attrition.csv"),),
        ),
        tables=sections,
        figures=figures,
        directions=directions(read("income_directions.csv")),
        claims=claim_lines(tables_dir, float(cfg.claims.smd_threshold)),
        deviations=[dict(d) for d in rep.deviations],
        inconsistencies=[dict(i) for i in rep.inconsistencies],
        settings=Section("konfiguration", words.SECTIONS["config"], settings_layout(settings)),
        disclosure=disclosure_section(log_frame),
    )
    if compare:
        page = beside_published(page, comparison, values)
    io.write_text_atomic(outputs / "report.html", render(page))
    write_workbook(outputs / "report.xlsx", [page.attrition, *sections])
    io.write_json(outputs / "metrics.json", key_metrics(tables_dir))
    log.info(
        "report: %d tables, %d figures, %d config keys",
        len(sections),
        len(figures),
        settings.height,
    )


PUBLISHED_TABLE = {  # our table file -> the publication's table in values.csv
    "table2.csv": "Tabell 2",
    "table_b3.csv": "Tabell B3",
    "table_b4.csv": "Tabell B4",
    "table_b5.csv": "Tabell B5",
    "table3.csv": "Tabell 3",
    "table_b6.csv": "Tabell B6",
}


def comparison_summary(comparison: pl.DataFrame) -> str:
    """How many published values agree with ours, in words."""
    counts = dict(comparison.group_by("status").len().iter_rows())
    parts = [f"{counts.get(s, 0)} {words.value(s)}" for s in published.STATUSES]
    flagged = int(comparison["misprint"].sum())
    return (
        f"Av {comparison.height} publicerade värden (analysis-spec.md §5) är "
        + ", ".join(parts)
        + f". {flagged} av dem är tryckfel eller inkonsekvenser enligt §10 och jämförs med "
        "det rättade värdet där ett sådant finns. Antal jämförs exakt, andelar med ±1 "
        "procentenhet."
    )


def beside_published(page: Page, comparison: pl.DataFrame, values: pl.DataFrame) -> Page:
    """`page` with the comparison section and the publication's value beside ours in each
    reproduced table."""
    tables = []
    for section in page.tables:
        table = PUBLISHED_TABLE.get(f"{section.anchor}.csv")
        if table is not None:
            layout = layouts.with_published(section.layout, published.printed_cells(values, table))
            section = dataclasses.replace(section, layout=layout)
        tables.append(section)
    section = Section("publicerat", words.SECTIONS["published"], layouts.generic(comparison))
    return dataclasses.replace(
        page, tables=tables, comparison=section, comparison_summary=comparison_summary(comparison)
    )


def settings_layout(settings: pl.DataFrame) -> Layout:
    """The configuration table: key (as in conf/) and value (YAML text), as written."""
    rows = tuple(Row(k, (v,)) for k, v in settings.iter_rows())
    return Layout(((("Värde", 1),),), rows, corner="Nyckel")


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
