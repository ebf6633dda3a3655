"""The report: in Swedish, in the publication's layouts, every table and figure of the
configuration present, numbers in Swedish format taken from the published tables, the
workbook with a formatted sheet per table, and no person id in any output file."""

from __future__ import annotations

import base64
import re
import zipfile
from html.parser import HTMLParser

import openpyxl
import polars as pl
import pytest

from pipeline.core import config
from pipeline.report.layouts import whole
from pipeline.report.numbers import cell, interval, significant, sv
from pipeline.report.sentences import directions
from pipeline.report.tables import read_table

REPORT = config.compose().report
SNAKE = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")


class Sections(HTMLParser):
    """The report's sections by id: header cells, body rows (label first), images, text."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.ids: set[str] = set()
        self.links: list[str] = []
        self._section: dict | None = None
        self._cell: list[str] | None = None
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href", "").startswith("#"):
            self.links.append(a["href"][1:])
        if tag == "section":
            self._section = {"head": [], "rows": [], "images": [], "text": []}
            self.sections[a["id"]] = self._section
        elif self._section is None:
            return
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._section["head" if self._in_head else "rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self._section["images"].append(a["src"])
        elif tag == "span" and self._cell is not None:
            self._cell.append("\n")  # the published value goes on its own line

    def handle_endtag(self, tag):
        if tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None and self._section is not None:
            rows = self._section["head" if self._in_head else "rows"]
            rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "section":
            self._section = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._section is not None:
            self._section["text"].append(data)


def parse(path) -> Sections:
    parser = Sections()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def page(run_dir) -> Sections:
    return parse(run_dir / "outputs" / "report.html")


# --- numbers in Swedish format --------------------------------------------------------------


def test_numbers_print_in_swedish_format():
    assert sv(48741) == "48\u202f741"  # narrow no-break space between thousands
    assert cell("12.46", "percent") == "12,5"
    assert cell("-5.08", "pp") == "\u22125,1"  # a true minus sign
    assert cell("9.2e-60", "p") == "<0,001" and cell("0.0092", "p") == "0,009"
    assert cell("0.1257", "share") == "12,6"  # a 0-1 share printed as a percent
    assert cell("..", "count") == ".." and cell("", "count") == ""
    assert cell("2019", "code") == "2019"  # a year keeps no separator
    assert cell("true", "flag") == "ja" and cell("primary_care", "text") == "Primärvård"
    assert interval("1.1", "5.64", "pp") == "1,1–5,6"
    assert interval("-5.77", "-4.38", "pp") == "\u22125,8 – \u22124,4"
    assert significant(0.0004998) == "0,0005" and whole("69.5") == "70"


def test_a_printed_table2_cell_is_the_long_tables_count_and_whole_percent(run_dir, page):
    long = read_table(run_dir / "outputs" / "tables" / "table2_long.csv")
    row = long.filter(
        (pl.col("block") == "Kön")
        & (pl.col("category") == "Kvinnor")
        & (pl.col("group") == "Insats")
    ).row(0, named=True)
    expected = f"{sv(float(row['n']))} ({whole(row['percent'])})"
    shown = {r[0]: r[1:] for r in page.sections["table2"]["rows"]}
    assert shown["Kvinnor"][0] == expected
    assert "\u202f" in expected or float(row["n"]) < 1000


# --- the publication's layouts --------------------------------------------------------------

TABLE2_ROWS = [
    "Kön", "Kvinnor", "Män", "Ålder", "18–39", "40–59", "60–67",
    "Utbildningsnivå", "Förgymnasial", "Gymnasial", "Eftergymnasial",
    "Huvuddiagnos från Försäkringskassan (MiDAS)", "Stressreaktioner (F43)",
    "Övriga psykiatriska diagnoser", "Rörelseorganens sjukdomar", "Övriga diagnoser",
    "Sysselsättningstyp", "Anställd", "Anställd dag 1 – omfattas ej", "Arbetslös", "Övriga",
]  # fmt: skip
B3_ROWS = [
    "Kön", "Kvinnor", "Män", "Totalt", "Ålder", "18–39", "40–59", "60–67", "Totalt",
    "Medelvärde (median) ålder", "Födelseland", "Sverige och Norden", "Övriga länder",
    "Civiltillstånd", "Gift", "Ogift", "Skild/änka/änkeman", "Övrigt",
    "Utbildningsnivå", "Förgymnasial", "Gymnasial", "Eftergymnasial", "Totalt",
    "Huvuddiagnos från Försäkringskassan (MiDAS)", "Stressreaktioner (F43)",
    "Övriga psykiatriska diagnoser", "Rörelseorganens sjukdomar", "Övriga diagnoser", "Totalt",
    "Sysselsättningstyp", "Anställd", "Anställd dag 1 – omfattas ej", "Arbetslös", "Övriga",
    "Totalt",
]  # fmt: skip
LENGTHS = ["Sjukperiod <2 år", "Sjukperiod 2+ år", "Alla sjukperioder"]
INCOME_COLUMNS = [(length, g) for length in LENGTHS for g in ("Insats", "Kontroll")]
LAYOUTS = {
    "table2": (
        [["Koordineringsinsatser", "Kontroller"], ["Antal (%)"] * 2],
        TABLE2_ROWS,
    ),
    "table_b3": (
        [
            ["Koordineringsinsats", "Kontroller"],
            ["Offentlig", "Privat", "Totalt insats", "Offentlig", "Privat", "Totalt kontroller"],
        ],
        B3_ROWS,
    ),
    "table_b4": (
        [LENGTHS, ["Insats", "Kontroll"] * 3, ["Antal (%)"] * 6],
        [
            "Någon inkomst",
            "<3 mån",
            "<6 mån",
            "<12 mån",
            "Tidigare inkomstnivå",
            "<3 mån",
            "<6 mån",
            "<12 mån",
        ],
    ),
    "table_b5": (
        [LENGTHS, ["Insats", "Kontroll"] * 3],
        ["Någon inkomst", "<3 mån", "<6 mån", "<12 mån"],
    ),
    "table3": (
        [LENGTHS, ["Insats Antal (%)", "Kontroll Antal (%)"] * 3],
        [
            "Haft inkomst före",
            "Någon inkomst efter",
            "Återfår tidigare inkomst efter, n",
            "Återfår tidigare inkomst efter",
            "Ingen inkomst före",
            "Någon inkomst efter",
        ],
    ),
    "table_b6": (
        [
            ["Utan arbetsinkomst före sjukperiod", "Någon inkomst före sjukperiod"],
            ["Insats", "Kontroll"] * 2,
            ["Antal (%)"] * 4,
        ],
        [
            "Kön",
            "Kvinna",
            "Man",
            "Ålder",
            "18–39 år",
            "40–59 år",
            "60–67 år",
            "Diagnos",
            "Muskuloskeletala",
            "Stressrelaterade",
            "Övriga psykiska",
            "Övriga",
            "Utbildning",
            "Förgymnasial",
            "Gymnasial",
            "Eftergymnasial",
        ],
    ),
}


def _without_n(text: str) -> str:
    """A header cell without its group size: "Insats (n = 2 013)" -> "Insats"."""
    return re.sub(r"\s*\(n = [^)]*\)", "", text).strip()


@pytest.mark.parametrize("anchor", sorted(LAYOUTS))
def test_each_reproduced_table_has_the_publications_rows_and_columns(page, anchor):
    headers, rows = LAYOUTS[anchor]
    section = page.sections[anchor]
    shown_headers = [[_without_n(c) for c in row] for row in section["head"]]
    assert shown_headers[0][0] == ""  # the corner over the row labels
    assert [shown_headers[0][1:], *shown_headers[1:]] == headers
    labels = [r[0] for r in section["rows"]]
    if anchor == "table3" and "Återfår tidigare inkomst efter, n" not in labels:
        rows = [r for r in rows if r != "Återfår tidigare inkomst efter, n"]
    assert labels == rows
    width = sum(len(h) for h in headers[-1:])
    assert all(len(r) == 1 + width for r in section["rows"])


def test_b4_and_b5_print_no_stars_and_table3_does(page, run_dir):
    long = read_table(run_dir / "outputs" / "tables" / "income_tables_long.csv")
    starred = long.filter(pl.col("stars") != "")
    assert set(starred["table"]) & {"B4", "B5"}  # the run has stars to drop
    for anchor in ("table_b4", "table_b5"):
        assert not any("*" in c for r in page.sections[anchor]["rows"] for c in r[1:])
    if "Tabell 3" in set(starred.filter(pl.col("suppressed") == "false")["table"]):
        assert any("*" in c for r in page.sections["table3"]["rows"] for c in r[1:])


def test_table3s_regained_row_has_its_own_n(page, run_dir):
    long = read_table(run_dir / "outputs" / "tables" / "income_tables_long.csv")
    t3 = long.filter(
        (pl.col("table") == "Tabell 3") & (pl.col("block") == "Haft inkomst före")
        & (pl.col("length_class") == "Alla") & (pl.col("group") == "Kontroll")
    )  # fmt: skip
    n_any = t3.filter(pl.col("row") == "n")["n"][0]
    n_regained = t3.filter(pl.col("row") == "Återfår tidigare inkomst efter")["n"][0]
    rows = {r[0]: r[1:] for r in page.sections["table3"]["rows"]}
    assert rows["Haft inkomst före"][5] == f"n = {cell(n_any, 'count')}"
    if n_regained != n_any:
        assert rows["Återfår tidigare inkomst efter, n"][5] == f"n = {cell(n_regained, 'count')}"


# --- Swedish for readers --------------------------------------------------------------------


def test_no_snake_case_header_and_no_english_code_in_the_tables(page):
    for anchor, section in page.sections.items():
        for row in section["head"]:
            assert not [c for c in row if SNAKE.search(c)], (anchor, row)
        if anchor in ("konfiguration", "rojandekontroll"):  # config keys and file names
            continue
        for row in section["rows"]:
            assert not [c for c in row if SNAKE.search(c)], (anchor, row)
            assert not {c for c in row} & {"true", "false", "NaN"}, (anchor, row)


def test_every_configured_table_and_figure_is_a_section_with_a_decodable_image(page):
    for entry in REPORT.tables:
        anchor = entry.file.removesuffix(".csv")
        assert anchor in page.sections, anchor
        assert page.sections[anchor]["rows"], anchor
    for entry in REPORT.figures:
        images = page.sections[f"fig-{entry.file.removesuffix('.png')}"]["images"]
        assert len(images) == 1
        data = base64.b64decode(images[0].removeprefix("data:image/png;base64,"))
        assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_first_page_links_every_headline_and_the_contents_to_a_section(page):
    front = page.sections["sammanfattning"]["rows"]
    assert len(front) >= 7  # population, three income, two sick-day, FK, registered
    assert all(len(r) == 5 for r in front)
    assert set(page.links) <= page.ids
    assert {e.file.removesuffix(".csv") for e in REPORT.tables} <= set(page.links)


def test_every_table_has_a_note_with_what_was_hidden(page):
    for entry in REPORT.tables:
        text = " ".join(page.sections[entry.file.removesuffix(".csv")]["text"])
        assert "Röjandekontroll:" in text, entry.file


def test_directions_are_sentences_in_swedish():
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
    lines = directions(pl.DataFrame([row, hidden]))
    m = "\u2212"
    assert lines[0] == (
        "Tabell 3, Haft inkomst före, Återfår tidigare inkomst efter, Alla: insats 58,7 % mot "
        f"kontroll 63,8 %, insats lägre, skillnad {m}5,1 procentenheter (95 % KI {m}5,8 – "
        f"{m}4,4), p < 0,001***; ojusterat p < 0,001; justerad skillnad {m}4,9 procentenheter "
        f"(95 % KI {m}5,6 – {m}4,2); justerat, signifikant (p < 0,05) till förmån för "
        "kontrollgruppen"
    )
    assert lines[1].endswith("2+ år: visas inte (en cell är under gränsen för röjandekontroll)")


def test_the_html_states_the_direction_of_every_comparison(page, run_dir):
    rows = read_table(run_dir / "outputs" / "tables" / "income_directions.csv")
    items = page.sections["riktning"]["text"]
    stated = [t for t in items if ": insats " in t]
    hidden = [t for t in items if "visas inte" in t]
    assert len(stated) + len(hidden) + sum("ingen jämförelse" in t for t in items) == rows.height
    assert len(hidden) == rows.filter(pl.col("suppressed") == "true").height


# --- the workbook ---------------------------------------------------------------------------


def test_the_workbook_has_a_formatted_sheet_per_table(run_dir):
    book = openpyxl.load_workbook(run_dir / "outputs" / "report.xlsx")
    expected = ["urval", *(t.file.removesuffix(".csv")[:31] for t in REPORT.tables)]
    assert book.sheetnames == expected
    sheet = book["gc001_timing"]
    assert sheet["A1"].value == REPORT.tables[2].title
    assert sheet.freeze_panes is not None
    header_row = int(re.sub(r"[A-Z]", "", sheet.freeze_panes)) - 1
    headers = [c.value for c in sheet[header_row]]
    assert "Medel (dagar)" in headers and not [h for h in headers if h and SNAKE.search(h)]
    numbers = [c for c in sheet[header_row + 1] if isinstance(c.value, float | int)]
    assert numbers and all(c.number_format != "General" for c in numbers)
    b3 = book["table_b3"]
    texts = [c.value for row in b3.iter_rows() for c in row if isinstance(c.value, str)]
    assert any(re.fullmatch(r"[\d\u202f]+ \(\d+\)", t) for t in texts)


# --- privacy and the published numbers ------------------------------------------------------


def test_no_output_file_contains_a_person_id_of_the_input(run_dir):
    ids = set(
        pl.read_parquet(run_dir / "staged" / "bakgrund.parquet")["lopnr"].cast(pl.String).to_list()
    )
    token = re.compile(r"(?<![0-9A-Za-z+/])[0-9]{6,}(?![0-9A-Za-z+/])")
    texts = {}
    for path in [*(run_dir / "outputs").rglob("*.csv"), *(run_dir / "outputs").rglob("*.json"),
                 run_dir / "outputs" / "report.html"]:  # fmt: skip
        if path.parent.name != "staged":
            texts[path.name] = path.read_text(encoding="utf-8").replace("\u202f", "")
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
    real = parse(outputs / "report.html")
    assert "publicerat" in real.sections and "publicerat" in real.links
    comparison = read_table(outputs / "published_comparison.csv")
    assert len(real.sections["publicerat"]["rows"]) == comparison.height
    summary = " ".join(real.sections["publicerat"]["text"])
    assert f"Av {comparison.height} publicerade värden" in summary
    rows = {r[0]: r[1:] for r in real.sections["table_b3"]["rows"]}
    assert rows["Kvinnor"][0].endswith("\npubl. 34 622 (69)")  # the report's cell, as printed
    t3 = {r[0]: r[1:] for r in real.sections["table3"]["rows"]}
    assert t3["Haft inkomst före"][0].endswith("publ. 19 757")  # the block's printed n
    synthetic = parse(run_dir / "outputs" / "report.html")
    assert "publicerat" not in synthetic.sections
