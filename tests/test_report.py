"""The report: the workbook opens with every sheet, the HTML shows every table and figure with
the numbers of its CSV, and no output file holds a person id of the input."""

from __future__ import annotations

import html
import re
import zipfile
from html.parser import HTMLParser

import openpyxl
import polars as pl

from pipeline.core import config
from pipeline.report.formatting import display
from pipeline.report.html import build_html, directions
from pipeline.report.tables import read_table

REPORT = config.compose().report


class Tables(HTMLParser):
    """Collects the HTML tables as lists of rows of cell texts, and the image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_every_table_and_figure_is_in_the_html_with_the_numbers_of_its_csv(run_dir):
    parser = Tables()
    parser.feed((run_dir / "outputs" / "report.html").read_text(encoding="utf-8"))
    assert len(parser.images) == len(REPORT.figures)
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    shown = parser.tables[1 : 1 + len(REPORT.tables)]  # after the attrition table
    for entry, table in zip(REPORT.tables, shown, strict=True):
        csv = read_table(run_dir / "outputs" / "tables" / entry.file)
        assert table[0] == csv.columns, entry.file
        expected = [[display(v) for v in row] for row in csv.iter_rows()]
        assert table[1:] == expected, entry.file


def test_the_workbook_opens_with_a_sheet_per_table_and_a_notes_row(run_dir):
    book = openpyxl.load_workbook(run_dir / "outputs" / "report.xlsx", read_only=True)
    expected = ["attrition", *(t.file.removesuffix(".csv")[:31] for t in REPORT.tables)]
    assert book.sheetnames == expected
    sheet = book["table2"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == REPORT.tables[0].title
    assert "docs/methods.md" in rows[1][0]
    csv = read_table(run_dir / "outputs" / "tables" / "table2.csv")
    assert list(rows[3][: len(csv.columns)]) == csv.columns


def test_no_output_file_contains_a_person_id_of_the_input(run_dir):
    ids = set(
        pl.read_parquet(run_dir / "staged" / "bakgrund.parquet")["lopnr"].cast(pl.String).to_list()
    )
    token = re.compile(r"(?<![0-9A-Za-z+/])[0-9]{6,}(?![0-9A-Za-z+/])")
    texts = {}
    for path in [*(run_dir / "outputs").rglob("*.csv"), *(run_dir / "outputs").rglob("*.json"),
                 run_dir / "outputs" / "report.html"]:  # fmt: skip
        if path.parent.name != "staged":
            texts[path.name] = path.read_text(encoding="utf-8")
    with zipfile.ZipFile(run_dir / "outputs" / "report.xlsx") as book:
        for name in book.namelist():
            texts[f"report.xlsx:{name}"] = book.read(name).decode("utf-8", errors="replace")
    assert texts
    for name, text in texts.items():
        assert not (set(token.findall(text)) & ids), name


def test_a_real_delivery_shows_the_published_numbers_beside_ours(run_dir, tmp_path):
    import shutil

    from pipeline.__main__ import main

    outputs = tmp_path / "outputs"
    shutil.copytree(run_dir / "outputs", outputs)
    assert main(["report", f"paths.outputs={outputs}", "data.name=mydelivery"]) == 0
    html_text = (outputs / "report.html").read_text(encoding="utf-8")
    assert "Publicerade värden och våra" in html_text
    comparison = read_table(outputs / "published_comparison.csv")
    assert comparison.height == len(REPORT.published)
    parser = Tables()
    parser.feed(html_text)
    shown = parser.tables[0]  # the comparison comes first
    assert shown[0] == comparison.columns
    assert [row[2] for row in shown[1:]] == [display(v) for v in comparison["published"]]
    synthetic = (run_dir / "outputs" / "report.html").read_text(encoding="utf-8")
    assert "Publicerade värden och våra" not in synthetic


def _direction_items(document: str) -> list[str]:
    """The <li> texts of the report's direction section."""
    section = document.split("<h2>Riktning för varje jämförelse")[1].split("</ul>")[0]
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", section)]


def test_the_html_states_the_direction_of_every_comparison_of_income_directions(run_dir):
    document = (run_dir / "outputs" / "report.html").read_text(encoding="utf-8")
    rows = read_table(run_dir / "outputs" / "tables" / "income_directions.csv")
    items = _direction_items(document)
    assert len(items) == rows.height  # one line per comparison, B6 included
    shown = rows.filter((pl.col("suppressed") == "false") & (pl.col("diff_pp") != ""))
    assert shown.height > 0 and shown.filter(pl.col("table") == "B6").height > 0
    stated = [i for i in items if " % vs controls " in i]
    assert len(stated) == shown.height  # numbers only for the shown rows with both groups
    for row, item in zip(shown.iter_rows(named=True), stated, strict=True):
        assert item.startswith(f"{row['table']}, {row['block']}, {row['row']}, ")
        assert f", {row['direction']}, difference {display(row['diff_pp'])} points" in item
        ci = f"(95 % CI {display(row['diff_ci_low'])} to {display(row['diff_ci_high'])})"
        assert ci in item
    hidden = rows.filter(pl.col("suppressed") == "true").height
    assert sum("not shown (a cell is below the disclosure threshold)" in i for i in items) == hidden
    empty = rows.height - shown.height - hidden
    assert sum("no comparison (a group is empty)" in i for i in items) == empty


def test_a_line_favouring_the_controls_says_so_and_a_suppressed_one_shows_no_number():
    row = {
        "table": "Tabell 3",
        "block": "Haft inkomst före",
        "row": "Återfår tidigare inkomst efter",
        "length_class": "Alla",
        "income": "",
        "percent_treated": "58.67",
        "percent_control": "63.75",
        "diff_pp": "-5.08",
        "diff_ci_low": "-5.77",
        "diff_ci_high": "-4.38",
        "p_unadjusted": "2.1e-44",
        "ame_pp": "-4.9",
        "ame_ci_low": "-5.6",
        "ame_ci_high": "-4.2",
        "p_adjusted": "3.3e-40",
        "p_value": "3.3e-40",
        "stars": "***",
        "direction": "treated lower",
        "significant_for": "controls",
        "suppressed": "false",
    }
    hidden = {**row, "length_class": "2+ år", "suppressed": "true"}
    hidden |= {k: "" for k in ("percent_treated", "percent_control", "diff_pp", "p_value")}
    lines = directions(pl.DataFrame([row, hidden]))
    assert lines[0] == (
        "Tabell 3, Haft inkomst före, Återfår tidigare inkomst efter, Alla: treated 58.67 % vs "
        "controls 63.75 %, treated lower, difference -5.08 points (95 % CI -5.77 to -4.38), "
        "p = 3.3e-40***; unadjusted p = 2.1e-44; adjusted AME -4.9 points (95 % CI -5.6 to "
        "-4.2); adjusted, significant (p < 0.05) in favour of the controls"
    )
    assert lines[1].endswith("2+ år: not shown (a cell is below the disclosure threshold)")
    empty = pl.DataFrame({"a": []})
    version = {"data_dir": "d", "md5": "m"}
    document = build_html("t", "s", [], [], empty, empty, version, [], [], lines)
    assert _direction_items(document) == lines
