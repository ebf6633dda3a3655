"""`report` stage: one self-contained HTML report, one Excel workbook, `metrics.json`.

Everything shown comes from files under `outputs/tables` and `outputs/figures`,
which the stages wrote after disclosure control; the report adds no new
numbers, only layout, the configuration used, the data version from DVC, the
attrition flow, our deviations from the published method and how each known
inconsistency of the report was resolved. No timestamps: same inputs, same bytes.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from omegaconf import OmegaConf

from pipeline.core import config, io
from pipeline.report.claims import claim_lines
from pipeline.report.formatting import display
from pipeline.rules.income_cells import ALPHA

log = logging.getLogger(__name__)

CSS = """
body{font-family:Georgia,serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;font-size:.8em;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f2f2f2}
td:first-child,td:nth-child(2){text-align:left}img{max-width:100%}
.note{color:#555;font-size:.85em}code{font-size:.9em}
"""


def read_table(path: Path) -> pl.DataFrame:
    """A table CSV with every column as text, exactly as written."""
    return pl.read_csv(path, infer_schema_length=0)


def html_table(frame: pl.DataFrame) -> str:
    """`frame` as an HTML table (cells escaped, numbers by `display`)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(display(v))}</td>" for v in row) + "</tr>"
        for row in frame.iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def data_version(dvc_lock: Path, data_dir: str) -> dict[str, str]:
    """The delivery's content hash as DVC recorded it for the `stage` stage (md5 of its dir)."""
    if not dvc_lock.exists():
        return {"data_dir": data_dir, "md5": "not yet recorded by DVC"}
    lock = yaml.safe_load(dvc_lock.read_text(encoding="utf-8")) or {}
    for dep in lock.get("stages", {}).get("stage", {}).get("deps", []):
        if dep.get("path") == data_dir:
            return {"data_dir": data_dir, "md5": str(dep.get("md5"))}
    return {"data_dir": data_dir, "md5": "not found in dvc.lock"}


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


def direction_line(r: dict[str, str | None]) -> str:
    """One comparison of income_directions.csv as a sentence, its numbers as written (`display`)."""
    where = [r["table"], r["block"], r["row"], r["length_class"] or r["income"]]
    label = ", ".join(v for v in where if v)
    if r["suppressed"] == "true":
        return f"{label}: not shown (a cell is below the disclosure threshold)"
    if not r["diff_pp"]:
        return f"{label}: no comparison (a group is empty)"
    d = {k: display(v) for k, v in r.items()}
    p = f"p = {d['p_value']}{d['stars']}" if d["p_value"] not in ("", "NaN") else "no p-value"
    text = (
        f"{label}: treated {d['percent_treated']} % vs controls {d['percent_control']} %, "
        f"{d['direction']}, difference {d['diff_pp']} points "
        f"(95 % CI {d['diff_ci_low']} to {d['diff_ci_high']}), {p}"
    )
    if r["p_unadjusted"] != r["p_value"]:
        text += f"; unadjusted p = {d['p_unadjusted']}"
    if r["ame_pp"] and r["ame_pp"] != "NaN":
        text += (
            f"; adjusted AME {d['ame_pp']} points (95 % CI {d['ame_ci_low']} to {d['ame_ci_high']})"
        )
    if r["significant_for"] and r["table"] == "B6":  # a background share: larger, not better
        text += f"; significantly larger share among the {r['significant_for']} (p < {ALPHA})"
    elif r["significant_for"]:
        # the side is the tested estimate's: the AME's when stars come from the model
        basis = "adjusted, " if r["p_value"] == r["p_adjusted"] else ""
        text += f"; {basis}significant (p < {ALPHA}) in favour of the {r['significant_for']}"
    return text


def directions(rows: pl.DataFrame) -> list[str]:
    """One sentence per treated-vs-control comparison of B4, B5, B6 and Table 3 (§10 item 40),
    from income_directions.csv read as text: the report computes nothing."""
    return [direction_line(r) for r in rows.iter_rows(named=True)]


def build_html(
    title: str,
    subtitle: str,
    tables: list[tuple[str, str, pl.DataFrame]],
    figures: list[tuple[str, Path]],
    attrition: pl.DataFrame,
    settings: pl.DataFrame,
    version: dict[str, str],
    deviations: list[dict[str, str]],
    inconsistencies: list[dict[str, Any]],
    direction_lines: list[str],
    claims: list[str] | None = None,
) -> str:
    """The whole report as one HTML document (figures embedded as base64 PNG)."""
    parts = [
        "<!DOCTYPE html><html lang='sv'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>",
        "<p class='note'>Data: <code>"
        + html.escape(version["data_dir"])
        + "</code>, DVC md5 <code>"
        + html.escape(version["md5"])
        + "</code>. Counts below the disclosure threshold are shown as empty or '..'.</p>",
        "<h2>Urval (attrition)</h2>",
        html_table(attrition),
    ]
    for name, frame_title, frame in tables:
        parts += [
            f"<h2 id='{html.escape(name)}'>{html.escape(frame_title)}</h2>",
            html_table(frame),
        ]
    for figure_title, path in figures:
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        parts += [
            f"<h2>{html.escape(figure_title)}</h2>",
            f"<img alt='{html.escape(figure_title)}' src='data:image/png;base64,{encoded}'>",
        ]
    parts += ["<h2>Riktning för varje jämförelse insats − kontroll (B4–B6, Tabell 3)</h2><ul>"]
    parts += [f"<li>{html.escape(line)}</li>" for line in direction_lines]
    parts += ["</ul><h2>Påståenden i rapportens text och underlaget (§4.12)</h2><ul>"]
    parts += [f"<li>{html.escape(line)}</li>" for line in claims or []]
    parts += ["</ul><h2>Avvikelser från den publicerade metoden</h2><ul>"]
    parts += [
        f"<li><code>{html.escape(d['key'])}</code>: {html.escape(d['text'])}</li>"
        for d in deviations
    ]
    parts += ["</ul><h2>Kända inkonsekvenser i rapporten och hur de hanteras</h2><ul>"]
    parts += [
        f"<li>§10 item {i['item']}: {html.escape(i['text'])} → {html.escape(i['resolution'])}</li>"
        for i in inconsistencies
    ]
    parts += ["</ul><h2>Konfiguration</h2>", html_table(settings), "</body></html>"]
    return "\n".join(parts)


def write_workbook(
    path: Path, tables: list[tuple[str, str, pl.DataFrame]], notes: dict[str, str]
) -> Path:
    """One sheet per table: title row, notes row (definitions, config keys), the table."""
    import datetime as dt

    import xlsxwriter

    with io.atomic_path(path) as tmp:
        book = xlsxwriter.Workbook(str(tmp), {"strings_to_numbers": True})
        created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # fixed, not now: byte-stable files
        book.set_properties({"created": created.replace(tzinfo=None)})
        bold = book.add_format({"bold": True})
        used: set[str] = set()
        for name, title, frame in tables:
            sheet_name = name.removesuffix(".csv")[:31]
            while sheet_name in used:
                sheet_name = sheet_name[:29] + f"_{len(used)}"
            used.add(sheet_name)
            sheet = book.add_worksheet(sheet_name)
            sheet.write(0, 0, title, bold)
            sheet.write(1, 0, notes.get(name, ""))
            sheet.write_row(3, 0, frame.columns, bold)
            for i, row in enumerate(frame.iter_rows(), start=4):
                sheet.write_row(i, 0, [display(v) for v in row])
        book.close()
    return path


def _value(frame: pl.DataFrame, column: str, **where: str) -> float | None:
    """One numeric cell of a text table (None when missing or suppressed)."""
    rows = frame.filter(pl.all_horizontal(pl.col(k) == v for k, v in where.items()))
    if rows.height != 1 or rows[column][0] in (None, ""):
        return None
    return float(rows[column][0])


def published_comparison(tables_dir: Path, entries: list[dict[str, Any]]) -> pl.DataFrame:
    """Published numbers (analysis-spec.md §5) beside ours: label, source, published, ours,
    difference (ours − published); ours is null where the cell is missing or suppressed."""
    rows = []
    for entry in entries:
        ours = _value(read_table(tables_dir / entry["file"]), entry["column"], **entry["where"])
        published = float(entry["value"])
        rows.append(
            {
                "label": entry["label"],
                "source": entry["source"],
                "published": published,
                "ours": ours,
                "difference": None if ours is None else ours - published,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "label": pl.String,
            "source": pl.String,
            "published": pl.Float64,
            "ours": pl.Float64,
            "difference": pl.Float64,
        },
    )


def show_published(setting: str, data_name: str) -> bool:
    """Whether the report compares with the published numbers (`report.compare_published`)."""
    if setting == "auto":
        return data_name != "synthetic"
    return str(setting).lower() == "true"


def key_metrics(tables_dir: Path) -> dict[str, Any]:
    """Key estimates for `dvc metrics show` / `dvc exp show` (rounded, suppressed cells as null)."""
    split = read_table(tables_dir / "ownership_split.csv")
    timing = read_table(tables_dir / "gc001_timing.csv")
    fk = read_table(tables_dir / "fk_registrations.csv")
    adjusted = read_table(tables_dir / "income_adjusted.csv")
    metrics: dict[str, Any] = {
        "persons_treated": _value(split, "n", group="Insats", ownership="Totalt"),
        "persons_control": _value(split, "n", group="Kontroll", ownership="Totalt"),
        "first_gc001_mean_day": _value(timing, "mean_days", unit="spells"),
        "first_gc001_median_day": _value(timing, "median_days", unit="spells"),
        "any_fk_treated_pct": _value(fk, "percent", registration="any_fk", group="Insats"),
        "any_fk_control_pct": _value(fk, "percent", registration="any_fk", group="Kontroll"),
    }
    for model, key in (
        ("B4/B5|income_before|Alla|any_income_12", "ame_pp_any_income_12_income_before"),
        ("B4/B5|income_before|Alla|regained_12", "ame_pp_regained_12_income_before"),
        ("Table 3|income_before|Alla|durable_any", "ame_pp_durable_any_income_before"),
    ):
        metrics[key] = _value(adjusted, "ame_pp", model=model)
    extra = read_table(tables_dir / "nb_extra_days.csv")
    for design in ("riskset", "report"):
        for prior in ("0.0", "180.0"):
            key = f"nb_extra_days_{design}_prior_{prior.split('.')[0]}"
            metrics[key] = _value(extra, "extra_days", design=design, prior_days=prior)
    rank = read_table(tables_dir / "gc001_length_rank.csv")
    primary = rank["design"][0] if rank.height else ""
    metrics["length_rank_gehan_z"] = _value(rank, "gehan_z", design=primary)
    metrics["length_rank_gehan_p"] = _value(rank, "gehan_p", design=primary)
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in metrics.items()}


def run(cfg: Any) -> None:
    """Write outputs/report.html, outputs/report.xlsx and outputs/metrics.json."""
    outputs = config.resolve_path(cfg.paths.outputs)
    tables_dir, figures_dir = outputs / "tables", outputs / "figures"
    rep = cfg.report
    tables = [(t.file, t.title, read_table(tables_dir / t.file)) for t in rep.tables]
    figures = [(f.title, figures_dir / f.file) for f in rep.figures]
    min_count = int(cfg.disclosure.min_count)
    attrition = read_table(outputs / "attrition.csv").with_columns(
        pl.when(pl.col(c).cast(pl.Int64, strict=False).is_between(1, min_count - 1))
        .then(pl.lit(".."))
        .otherwise(pl.col(c))
        .alias(c)
        for c in (
            "n_rows",
            "n_spells",
            "n_persons",
            "n_spells_treated",
            "n_persons_treated",
            "n_spells_control",
            "n_persons_control",
        )
    )
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
        claim_lines(tables_dir),
    )
    # Always written (on synthetic data it shows how far the planted shapes are from the
    # published ones); shown in the HTML for a real delivery (`report.compare_published`).
    entries = [OmegaConf.to_container(e) for e in rep.published]
    comparison = published_comparison(tables_dir, entries)
    io.write_csv(comparison, outputs / "published_comparison.csv")
    if show_published(str(rep.compare_published), str(cfg.data.name)):
        section = html_table(comparison.with_columns(pl.all().cast(pl.String)))
        document = document.replace(
            "<h2>Urval (attrition)</h2>",
            "<h2>Publicerade värden och våra</h2>" + section + "<h2>Urval (attrition)</h2>",
        )
    io.write_text_atomic(outputs / "report.html", document)
    notes = {
        t.file: f"Källa: outputs/tables/{t.file}. Definitioner: docs/methods.md."
        for t in rep.tables
    }
    write_workbook(outputs / "report.xlsx", [("attrition.csv", "Urval", attrition), *tables], notes)
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
