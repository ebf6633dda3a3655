"""The report: the workbook opens with every sheet, the HTML shows every table and figure with
the numbers of its CSV, and no output file holds a person id of the input."""

from __future__ import annotations

import re
import zipfile
from html.parser import HTMLParser

import openpyxl
import polars as pl

from pipeline import config
from pipeline.report import display, read_table

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
