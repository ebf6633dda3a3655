"""The report's HTML: one self-contained document rendered from a Jinja2 template
(templates/report.html.j2, every text escaped), figures embedded as base64 PNG.

The parts are built elsewhere (`layouts`, `sentences`, `claims`, `headlines`); nothing
here computes a number.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import polars as pl

from pipeline.report import words
from pipeline.report.layouts import Layout, generic

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Section:
    """A table of the report: its anchor (the file's stem), title, layout and notes."""

    anchor: str
    title: str
    layout: Layout
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Figure:
    """A figure of the report: anchor, title, the PNG as base64, a note."""

    anchor: str
    title: str
    data: str
    note: str = ""

    @classmethod
    def from_png(cls, path: Path, title: str, note: str = "") -> Figure:
        """The figure at `path`, embedded."""
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return cls(f"fig-{path.stem}", title, data, note)


@dataclass(frozen=True)
class Headline:
    """One line of the first page: the analysis, what is estimated, the estimate, its 95 % CI,
    its n (all printed text) and the anchor of its table."""

    analysis: str
    what: str
    estimate: str
    ci: str
    n: str
    anchor: str


@dataclass(frozen=True)
class Page:
    """Everything the template shows."""

    title: str
    subtitle: str
    version: dict[str, str]
    config_hash: str
    run_date: str
    min_count: str
    headlines: list[Headline]
    attrition: Section
    tables: list[Section]
    figures: list[Figure]
    directions: list[str]
    claims: list[str]
    deviations: list[dict[str, str]]
    inconsistencies: list[dict[str, object]]
    settings: Section
    disclosure: Section | None = None
    comparison: Section | None = None
    comparison_summary: str = ""
    sections: dict[str, str] = field(default_factory=lambda: dict(words.SECTIONS))

    def toc(self) -> list[tuple[str, str]]:
        """(anchor, text) of every section in page order: the table of contents."""
        entries = [("sammanfattning", self.sections["front"])]
        if self.comparison is not None:
            entries.append(("publicerat", self.sections["published"]))
        entries.append(("urval", self.sections["attrition"]))
        entries += [(t.anchor, t.title) for t in self.tables]
        entries += [(f.anchor, f.title) for f in self.figures]
        entries += [
            ("riktning", self.sections["directions"]),
            ("pastaenden", self.sections["claims"]),
            ("avvikelser", self.sections["deviations"]),
            ("inkonsekvenser", self.sections["inconsistencies"]),
        ]
        if self.disclosure is not None:
            entries.append(("rojandekontroll", self.sections["disclosure"]))
        entries.append(("konfiguration", self.sections["config"]))
        return entries


def environment() -> jinja2.Environment:
    """The template environment: autoescaped, undefined names are errors."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )


def render(page: Page) -> str:
    """The whole report as one HTML document."""
    return environment().get_template("report.html.j2").render(page=page)


def disclosure_section(log: pl.DataFrame) -> Section:
    """The output-checking section: the rules in words and, per file, the cells shown and
    hidden by reason (the disclosure log's columns under Swedish headers)."""
    rules = {c.removeprefix("rule_"): log[c][0] for c in log.columns if c.startswith("rule_")}
    note = words.DISCLOSURE_NOTE.format(
        min_count=rules.get("min_count", "?"),
        rules=", ".join(f"{k} = {v}" for k, v in rules.items()),
    )
    shown = log.select([c for c in words.DISCLOSURE_COLUMNS if c in log.columns])
    layout = generic(shown)
    header = tuple((words.DISCLOSURE_COLUMNS[c], 1) for c in shown.columns[1:])
    return Section(
        "rojandekontroll",
        words.SECTIONS["disclosure"],
        Layout((header,), layout.rows, corner=words.DISCLOSURE_COLUMNS["file"]),
        (note,),
    )
