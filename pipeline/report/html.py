"""The report's HTML: one self-contained document (tables, embedded figures, the direction of
each comparison, the claims, deviations, known inconsistencies and the configuration).

Cells are shown as written (`formatting.display`); nothing here computes a new number.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.report.formatting import ALPHA, display
from pipeline.report.labels import DISCLOSURE_COLUMNS, DISCLOSURE_NOTE, DISCLOSURE_TITLE

CSS = """
body{font-family:Georgia,serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;font-size:.8em;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f2f2f2}
td:first-child,td:nth-child(2){text-align:left}img{max-width:100%}
.note{color:#555;font-size:.85em}code{font-size:.9em}
"""


def html_table(frame: pl.DataFrame) -> str:
    """`frame` as an HTML table (cells escaped, numbers by `display`)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(display(v))}</td>" for v in row) + "</tr>"
        for row in frame.iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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
    disclosure: pl.DataFrame | None = None,
) -> str:
    """The whole report as one HTML document (figures embedded as base64 PNG); with
    `disclosure` (outputs/disclosure_log.csv, text columns) the output checker's section."""
    parts = [
        "<!DOCTYPE html><html lang='sv'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>",
        "<p class='note'>Data: <code>"
        + html.escape(version["data_dir"])
        + "</code>, DVC md5 <code>"
        + html.escape(version["md5"])
        + "</code>. Counts below the disclosure threshold, and what would reveal them, are"
        " shown as '..' (see the disclosure section).</p>",
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
    parts += ["</ul>"]
    if disclosure is not None:
        parts += disclosure_section(disclosure)
    parts += ["<h2>Konfiguration</h2>", html_table(settings), "</body></html>"]
    return "\n".join(parts)


def disclosure_section(log: pl.DataFrame) -> list[str]:
    """The output-checking section: the rules in words and, per file, the cells shown and
    hidden by reason (the disclosure log's columns, Swedish headers)."""
    rules = {c.removeprefix("rule_"): log[c][0] for c in log.columns if c.startswith("rule_")}
    note = DISCLOSURE_NOTE.format(
        min_count=rules.get("min_count", "?"),
        rules=", ".join(f"{k} = {v}" for k, v in rules.items()),
    )
    shown = log.select(
        [pl.col(c).alias(label) for c, label in DISCLOSURE_COLUMNS.items() if c in log.columns]
    )
    return [
        f"<h2 id='disclosure'>{html.escape(DISCLOSURE_TITLE)}</h2>",
        f"<p class='note'>{html.escape(note)}</p>",
        html_table(shown),
    ]


def with_published(document: str, comparison: pl.DataFrame) -> str:
    """`document` with the published-vs-ours table (`tables.published_comparison`) as the
    section before the attrition."""
    section = html_table(comparison.with_columns(pl.all().cast(pl.String)))
    return document.replace(
        "<h2>Urval (attrition)</h2>",
        "<h2>Publicerade värden och våra</h2>" + section + "<h2>Urval (attrition)</h2>",
    )
