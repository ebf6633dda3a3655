"""The published numbers (conf/report/published/values.csv, analysis-spec.md §5) and their
comparison with ours (pipeline/report/published.py)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from pipeline.report.publication.specs import SPECS
from pipeline.report.published import KEY, STATUSES, comparison, parse_where, read_values

ROOT = Path(__file__).resolve().parents[1]
VALUES = ROOT / "conf" / "report" / "published" / "values.csv"
SPEC = ROOT.parent / "shared" / "analysis-spec.md"

B3_COLUMNS = [f"{g} {o}" for g in ("Insats", "Kontroll") for o in ("Offentlig", "Privat", "Totalt")]
B6_COLUMNS = [
    f"{i} {g}" for i in ("Utan inkomst före", "Någon inkomst före") for g in ("Insats", "Kontroll")
]
FIGURE_SERIES = {"any income": "Någon inkomst", "no income": "Ingen inkomst"}
FIGURE_SERIES["regained"] = "Återfår tidigare inkomst"
AGE_SUMMARY = "Medelvärde (median) ålder"  # "45 (45)": the mean and the median, not a count
CELL = re.compile(r"([\d ]+?)(?: \((\d+)\))?\**")  # "34 622 (69)", "302 (56)**", "50 411"
UNITS = {"count", "percent", "days", "sek", "years", "median"}


@pytest.fixture(scope="module")
def values() -> pl.DataFrame:
    return read_values(VALUES)


# --- values.csv on its own ------------------------------------------------------------------


def test_values_have_one_row_per_printed_cell(values):
    duplicated = values.filter(pl.struct(KEY).is_duplicated()).select(KEY)
    assert duplicated.is_empty(), duplicated
    assert set(values["unit"]) <= UNITS
    assert set(values["relation"]) <= {"eq", "lt", "about"}
    assert (
        values.select("value", "reference", "tolerance").null_count().sum_horizontal().item() == 0
    )
    assert (values["tolerance"] >= 0).all()


def test_only_a_misprint_has_a_reference_other_than_its_value_and_names_its_item(values):
    corrected = values.filter(pl.col("reference") != pl.col("value"))
    assert corrected["misprint"].all(), corrected.select(KEY)
    assert (values.filter("misprint")["spec_item"] != "").all()


def test_every_mapped_value_names_a_published_file(values):
    published = {s.file for s in SPECS}
    mapped = values.filter(pl.col("file") != "")
    assert set(mapped["file"]) <= published, set(mapped["file"]) - published
    assert (mapped["column_ours"] != "").all() and (mapped["where"] != "").all()
    unmapped = values.filter(pl.col("file") == "")
    assert (unmapped["column_ours"] == "").all() and (unmapped["where"] == "").all()


def test_table2_repeats_the_totalt_columns_of_b3(values):
    """§5.1: every Table 2 cell is B3's "T totalt" / "K totalt" cell (no Totalt rows)."""
    same = ["block", "row", "unit", "printed", "reference", "misprint", "spec_item"]
    table2 = values.filter(pl.col("table") == "Tabell 2", pl.col("block") != "Anm.")
    b3 = values.filter(
        pl.col("table") == "Tabell B3",
        pl.col("column").str.ends_with(" Totalt"),
        pl.col("block").is_in(table2["block"].unique().implode()),
        ~pl.col("row").str.starts_with("Totalt"),
        pl.col("row") != AGE_SUMMARY,
    ).with_columns(pl.col("column").str.replace(" Totalt", ""))
    assert table2.height == 64
    assert sorted(table2.select("column", *same).rows()) == sorted(
        b3.select("column", *same).rows()
    )


@pytest.mark.parametrize(
    ("table", "row", "column", "item", "printed", "reference"),
    [
        ("Tabell B3", "Kvinnor", "Kontroll Offentlig", "1", 128103, 343226),
        ("Tabell B3", "18–39", "Kontroll Totalt", "2", 331398, 305367),
        ("Tabell B3", "40–59", "Kontroll Totalt", "2", 393616, 357966),
        ("Tabell B3", "60–67", "Kontroll Totalt", "2", 128122, 119701),
        ("Tabell B3", "Totalt ålder", "Kontroll Totalt", "2", 853136, 783034),
        ("Tabell 2", "18–39", "Kontroll", "2", 331398, 305367),
        ("Tabell 2", "40–59", "Kontroll", "2", 393616, 357966),
        ("Tabell 2", "60–67", "Kontroll", "2", 128122, 119701),
        ("Tabell B3", "Totalt försäkradtyp", "Kontroll Totalt", "3", 637752, 783034),
        ("Tabell B3", "Eftergymnasial", "Insats Privat", "4", 8423264, 8423),
    ],
)
def test_section_10_misprints_carry_their_item_and_the_corrected_reference(
    values, table, row, column, item, printed, reference
):
    cell = values.filter(
        pl.col("table") == table,
        pl.col("row") == row,
        pl.col("column") == column,
        pl.col("unit") == "count",
    )
    assert cell.height == 1
    assert cell["misprint"][0]
    assert item in cell["spec_item"][0].split(";")
    assert (cell["value"][0], cell["reference"][0]) == (printed, reference)


@pytest.mark.parametrize(
    ("row", "columns", "category", "item"),
    [
        # item 16: in the control columns "Övriga psykiska" and "Övriga" are swapped
        ("Övriga psykiska", ("Kontroll",), "Övriga", "16"),
        ("Övriga", ("Kontroll",), "Övriga psykiska", "16"),
        ("Övriga psykiska", ("Insats",), "Övriga psykiska", None),
        # item 17: the printed Förgym/Gym/Eftergym are read as Eftergym/Förgym/Gym
        ("Förgymnasial", ("Insats", "Kontroll"), "Eftergymnasial", "17"),
        ("Gymnasial", ("Insats", "Kontroll"), "Förgymnasial", "17"),
        ("Eftergymnasial", ("Insats", "Kontroll"), "Gymnasial", "17"),
    ],
)
def test_b6_labels_are_read_as_section_10_items_16_and_17_say(values, row, columns, category, item):
    cells = values.filter(
        pl.col("table") == "Tabell B6",
        pl.col("row") == row,
        pl.col("column").str.extract(r"(\w+)$").is_in(list(columns)),
    )
    assert cells.height == 4 * len(columns)  # two income groups, count and percent
    for r in cells.iter_rows(named=True):
        assert parse_where(r["where"])["category"] == category
        assert r["misprint"] == (item is not None)
        assert r["spec_item"] == (item or "")


# --- values.csv against the spec's tables ---------------------------------------------------


def spec_tables(text: str) -> dict[str, list[list[str]]]:
    """The first markdown table under each `### 5.x` heading: its rows of cells, header first
    (the separator row left out)."""
    tables: dict[str, list[list[str]]] = {}
    section, ended = None, set()
    for line in text.splitlines():
        if line.startswith("#"):
            found = re.match(r"### (5\.\d)\b", line)
            section = found[1] if found else None
        elif section and line.startswith("|") and section not in ended:
            if not line.startswith("| ---"):
                tables.setdefault(section, []).append(
                    [c.strip() for c in line.strip("| ").split("|")]
                )
        elif section in tables:
            ended.add(section)
    return tables


def cell_values(
    text: str, units: tuple[str, str] = ("count", "percent")
) -> list[tuple[str, float]]:
    """The numbers of one printed cell: "34 622 (69)" -> [(count, 34622), (percent, 69)]."""
    found = CELL.fullmatch(text)
    assert found, text
    numbers = [found[1].replace(" ", ""), found[2]]
    return [(u, float(n)) for u, n in zip(units, numbers, strict=True) if n is not None]


def printed_cells(tables: dict[str, list[list[str]]]) -> list[tuple]:
    """(table, block or None, row, column, unit, value) for each number of §5.2–§5.7's tables;
    the block only where the table prints it as a row of its own (B4, B5, Table 3)."""
    out = []
    header, *rows = tables["5.2"]  # Table B3
    for label, *cells in rows:
        label = label.rstrip("¹²")
        units = ("years", "median") if label == AGE_SUMMARY else ("count", "percent")
        for column, text in zip(B3_COLUMNS, cells, strict=True):
            out += [("Tabell B3", None, label, column, u, v) for u, v in cell_values(text, units)]
    for section, table in (("5.3", "Tabell B4"), ("5.4", "Tabell B5"), ("5.5", "Tabell 3")):
        header, *rows = tables[section]
        columns = [re.sub(r" \(n=.*\)$", "", h) for h in header[1:]]
        block = "Någon inkomst"  # B5 prints only this block, its n's in the header
        for column, h in zip(columns, header[1:], strict=True):
            if n := re.search(r"\(n=([\d ]+)\)", h):
                out.append((table, block, "n", column, "count", float(n[1].replace(" ", ""))))
        for label, *cells in rows:
            if label.endswith(", n"):
                block, label = label.removesuffix(", n"), "n"
            for column, text in zip(columns, cells, strict=True):
                out += [(table, block, label, column, u, v) for u, v in cell_values(text)]
    header, *rows = tables["5.6"]  # Figures 13 and 14
    for label, *cells in rows:
        figure = "Figur 13" if label.startswith("Fig 13") else "Figur 14"
        series = next(s for key, s in FIGURE_SERIES.items() if key in label)
        for column, text in zip(header[1:], cells, strict=True):
            out.append((figure, None, series, column, "percent", float(text)))
    header, *rows = tables["5.7"]  # Table B6
    for label, *cells in rows:
        for column, text in zip(B6_COLUMNS, cells, strict=True):
            out += [("Tabell B6", None, label, column, u, v) for u, v in cell_values(text)]
    return out


def test_every_number_of_the_spec_tables_is_one_value(values):
    if not SPEC.exists():
        pytest.skip(f"the analysis spec is not at {SPEC} (../shared beside the repository)")
    printed = printed_cells(spec_tables(SPEC.read_text(encoding="utf-8")))
    with_block = {"Tabell B4", "Tabell B5", "Tabell 3"}
    ours = values.filter(
        pl.col("table").is_in(["Tabell B3", *with_block, "Figur 13", "Figur 14", "Tabell B6"]),
        ~pl.col("table").str.starts_with("Figur") | (pl.col("unit") == "percent"),
    )
    listed = [
        (t, b if t in with_block else None, r, c, u, v)
        for t, b, r, c, u, v in ours.select("table", "block", *KEY[2:], "value").iter_rows()
    ]
    assert len(printed) == 596  # B3 306, B4 84, B5 42, Table 3 48, figures 20, B6 96
    missing, extra = Counter(printed) - Counter(listed), Counter(listed) - Counter(printed)
    assert not missing and not extra, (missing, extra)


# --- the comparison -------------------------------------------------------------------------

COLUMNS = "table,block,row,column,unit,printed,value,decimals,reference,misprint,spec_item,"
COLUMNS += "source,relation,tolerance,file,where,column_ours"


def _values(tmp_path: Path, rows: list[str]) -> pl.DataFrame:
    path = tmp_path / "values.csv"
    path.write_text("\n".join([COLUMNS, *rows]) + "\n", encoding="utf-8")
    return read_values(path)


def test_comparison_gives_each_value_its_status(tmp_path):
    values = _values(
        tmp_path,
        [
            "T,B,exact count,C,count,100,100,0,100,false,,L1,eq,0,t.csv,g=a;k=n,n",
            "T,B,rounded percent,C,percent,50,50,0,50,false,,L1,eq,1,t.csv,g=b;k=p,p",
            "T,B,0.8 off,C,percent,50,50,0,50,false,,L1,eq,1,t.csv,g=c;k=p,p",
            "T,B,2 off,C,percent,50,50,0,50,false,,L1,eq,1,t.csv,g=d;k=p,p",
            "T,B,suppressed,C,percent,50,50,0,50,false,,L1,eq,1,t.csv,g=e;k=p,p",
            "T,B,no file,C,percent,75,75,0,75,false,30,L1,about,2,,,",
            "T,B,below one,C,percent,< 1,1,0,1,false,,L1,lt,0.5,t.csv,g=f;k=p,p",
            "T,B,not below one,C,percent,< 1,1,0,1,false,,L1,lt,0.5,t.csv,g=g;k=p,p",
            "T,B,misprint,C,count,8 423 264,8423264,0,8423,true,4,L1,eq,0,t.csv,g=h;k=n,n",
        ],
    )
    table = pl.DataFrame(
        {
            "g": list("abcdefgh"),
            "k": ["n", "p", "p", "p", "p", "p", "p", "n"],
            "n": ["100", "", "", "", "..", "", "", "8423"],
            "p": ["", "50.4", "50.8", "52", "..", "0.4", "1.6", ""],
        }
    )
    result = comparison(values, {"t.csv": table})
    assert result.columns == [
        *KEY,
        "printed",
        "published",
        "reference",
        "ours",
        "difference",
        "status",
        "misprint",
        "spec_item",
        "source",
    ]
    assert dict(zip(result["row"], result["status"], strict=True)) == {
        "exact count": "within_rounding",
        "rounded percent": "within_rounding",
        "0.8 off": "within_tolerance",
        "2 off": "differs",
        "suppressed": "hidden",
        "no file": "not_computed",
        "below one": "within_rounding",
        "not below one": "differs",
        "misprint": "within_rounding",
    }
    misprint = result.filter(pl.col("row") == "misprint").row(0, named=True)
    assert (misprint["published"], misprint["ours"], misprint["difference"]) == (8423264, 8423, 0)
    assert result.filter(pl.col("status").is_in(["hidden", "not_computed"]))["ours"].is_null().all()
    assert result["difference"][3] == pytest.approx(2)


def test_comparison_refuses_a_filter_that_matches_several_rows(tmp_path):
    values = _values(tmp_path, ["T,B,R,C,count,1,1,0,1,false,,L1,eq,0,t.csv,g=a,n"])
    with pytest.raises(ValueError, match="matches 2 rows"):
        comparison(values, {"t.csv": pl.DataFrame({"g": ["a", "a"], "n": ["1", "2"]})})


# --- values.csv against a run's tables ------------------------------------------------------


def test_every_mapped_value_finds_one_cell_of_its_table(run_dir, values):
    tables_dir = run_dir / "outputs" / "tables"
    mapped = values.filter(pl.col("file") != "")
    tables = {
        f: pl.read_csv(tables_dir / f, infer_schema_length=0) for f in mapped["file"].unique()
    }
    problems = []
    for r in mapped.iter_rows(named=True):
        table, where = tables[r["file"]], parse_where(r["where"])
        absent = {r["column_ours"], *where} - set(table.columns)
        if absent:
            problems.append((r["file"], r["where"], f"no column {sorted(absent)}"))
            continue
        height = table.filter(**where).height
        if height != 1:
            problems.append((r["file"], r["where"], f"{height} rows"))
    assert not problems, problems
    result = comparison(values, tables)
    assert result.height == values.height
    assert set(result["status"]) <= set(STATUSES)
    unmapped = result.filter(values["file"] == "")
    assert (unmapped["status"] == "not_computed").all()
