"""§4.12 "regions target the same groups": Table 2 of the treated per region, by hand.

30 treated person rows in Uppsala (03, 12 persons), Östergötland (05, 10) and
Skåne (12, 8); the expected counts, percents and SMDs below are worked out from
these lists and the formulas, not from the module.
"""

from __future__ import annotations

import math
import statistics

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core import config
from pipeline.report.claims import region_lines
from pipeline.report.labels import TOTAL
from pipeline.report.numbers import cell as printed
from pipeline.report.table2 import (
    TABLE2_COLUMNS,
    blocks,
    ownership_labels,
    table_b3_counts,
    with_labels,
    with_percent,
)
from pipeline.report.table2 import printed_layout as table2_layout
from pipeline.stages.claims.regions import (
    ALL,
    age_by_region,
    printed_layout,
    region_of,
    region_smd,
    smd_layout,
    treated_by_region,
)
from tests.helpers import b3_counts, gated, leaking_cells

CODES = config.compose().codes


REGIONS = ["03", "05", "12"]
AGES = {
    "03": [25, 30, 35, 38, 45, 50, 50, 55, 55, 58, 62, 64],  # bands 4 / 6 / 2
    "05": [22, 28, 33, 41, 44, 47, 52, 53, 57, 59],  # bands 3 / 7 / 0
    "12": [31, 40, 42, 48, 51, 60, 63, 66],  # bands 1 / 4 / 3
}
WOMEN = {"03": 8, "05": 5, "12": 3}  # the first WOMEN[r] of each region are women
EDUCATION = {  # Alla: Förgymnasial 8, Gymnasial 19, Eftergymnasial 2, missing 1
    "03": ["saknas"] + ["Gymnasial"] * 11,
    "05": ["Eftergymnasial"] * 2 + ["Gymnasial"] * 8,
    "12": ["Förgymnasial"] * 8,
}


def band(age: int) -> str:
    return "18–39" if age <= 39 else "40–59" if age <= 59 else "60–67"


def person(lopnr, treated, lan, region_first, sex, age, education, person_row=True):
    return {
        "lopnr": lopnr,
        "treated": treated,
        "person_row": person_row,
        "lan": lan,
        "region_first": region_first,
        "ownership": "offentlig" if treated else "okand",
        "sex": sex,
        "age": age,
        "age_band": band(age),
        "birth_country_group": "Sverige och Norden",
        "civil_status_group": "Gift",
        "education_group": education,
        "diagnosis_group": "f43" if treated else "other",
        "insured_type_group": "Anställd",
    }


def cohort_rows() -> pl.DataFrame:
    """The 30 treated person rows, plus rows the table must ignore: 5 controls and 2 treated
    spells that are not person rows, all living outside the analysed regions (01)."""
    rows = []
    for region, ages in AGES.items():
        for i, age in enumerate(ages):
            # two Uppsala residents had their first GC001 in Östergötland
            first = "05" if (region, i) in {("03", 0), ("03", 1)} else region
            sex = "Kvinnor" if i < WOMEN[region] else "Män"
            rows.append(person(len(rows), True, region, first, sex, age, EDUCATION[region][i]))
    for i in range(5):
        rows.append(person(100 + i, False, "01", None, "Män", 40 + i, "Gymnasial"))
    for i in range(2):
        rows.append(person(200 + i, True, "01", "01", "Män", 40, "Gymnasial", person_row=False))
    return pl.DataFrame(rows)


def smd(p: float, q: float) -> float:
    return (p - q) / math.sqrt((p * (1 - p) + q * (1 - q)) / 2)


def cell(frame: pl.DataFrame, block: str, category: str, region: str) -> dict:
    return frame.filter(
        (pl.col("block") == block) & (pl.col("category") == category) & (pl.col("region") == region)
    ).row(0, named=True)


def table(region_basis: str = "residence", rows: pl.DataFrame | None = None) -> pl.DataFrame:
    rows = cohort_rows() if rows is None else rows
    return treated_by_region(rows, CODES, REGIONS, region_basis)


def smds(rows: pl.DataFrame | None = None) -> pl.DataFrame:
    rows = cohort_rows() if rows is None else rows
    ages = age_by_region(rows, CODES, REGIONS, "residence")
    return region_smd(table(rows=rows), ages)


def published(
    rows: pl.DataFrame, min_count: int, codes=CODES, regions=REGIONS
) -> dict[str, pl.DataFrame]:
    """Table B3, Table 2, Table 2 by region and its SMDs as `publish` writes them (text,
    ".." hidden), built from `rows` as the describe and claims stages build them."""
    b3 = with_percent(
        table_b3_counts(
            with_labels(rows.filter("person_row"), codes), blocks(codes), ownership_labels(codes)
        ),
        "ownership",
    )
    in_table2 = {b.name for b in blocks(codes) if b.in_table2}
    t2 = b3.filter(pl.col("block").is_in(in_table2) & (pl.col("ownership") == TOTAL))
    tidy = treated_by_region(rows, codes, regions, "residence")
    ages = age_by_region(rows, codes, regions, "residence")
    frames = {
        "table_b3_long.csv": b3,
        "table2_long.csv": t2,
        "table2.csv": table2_layout(t2.filter(pl.col("category") != TOTAL), TABLE2_COLUMNS),
        "table2_by_region.csv": printed_layout(tidy),
        "table2_by_region_smd.csv": smd_layout(region_smd(tidy, ages)),
    }
    out: dict[str, pl.DataFrame] = {}
    for file, frame in frames.items():
        out[file] = gated(frame, file, min_count, out)
    return out


def hidden_region_cells(printed: pl.DataFrame) -> set[tuple[str, str, str]]:
    """(block, category, region name or Alla) of the cells the published table hides."""
    names = [c for c in printed.columns if c not in ("block", "category")]
    return {
        (r["block"], r["category"], name)
        for r in printed.iter_rows(named=True)
        for name in names
        if r[name] == ".."
    }


def with_hidden_flags(tidy: pl.DataFrame, printed: pl.DataFrame) -> pl.DataFrame:
    """`tidy` (`treated_by_region`) with `suppressed`: the cell is hidden in `printed`, the
    published Table 2 by region."""
    hidden = pl.DataFrame(
        list(hidden_region_cells(printed)),
        schema=["block", "category", "region_name"],
        orient="row",
    ).with_columns(pl.lit(True).alias("suppressed"))
    return (
        tidy.drop("suppressed")
        .join(hidden, on=["block", "category", "region_name"], how="left", maintain_order="left")
        .with_columns(pl.col("suppressed").fill_null(False))
    )


def lp_leaks(tidy: pl.DataFrame, min_count: int = 3) -> dict[str, list[int]]:
    """`leaking_cells` below `min_count` per block, with the table's constraints written out
    independently (a large secondary cell may be pinned: it discloses nobody)."""
    leaks = {}
    for (block,), part in tidy.group_by("block"):
        cells = part.with_row_index("j")
        index = {(r["category"], r["region"]): r["j"] for r in cells.iter_rows(named=True)}
        constraints = []
        for (cat, reg), j in index.items():
            if cat == TOTAL:
                constraints.append(
                    (j, [k for (c, r), k in index.items() if r == reg and c != TOTAL])
                )
            if reg == ALL:
                constraints.append((j, [k for (c, r), k in index.items() if c == cat and r != ALL]))
        hidden = cells["suppressed"].to_list()
        counts = cells["n"].to_list()
        pinned = leaking_cells(counts, constraints, hidden)
        leaks[block] = [i for i in pinned if counts[i] < min_count]
    return leaks


def test_counts_and_percents_match_a_hand_count():
    tidy = table()
    assert (cell(tidy, "Kön", "Kvinnor", "03")["n"], cell(tidy, "Kön", TOTAL, "03")["n"]) == (8, 12)
    assert math.isclose(cell(tidy, "Kön", "Kvinnor", "03")["percent"], 100 * 8 / 12)
    assert cell(tidy, "Kön", "Kvinnor", ALL)["n"] == 16
    assert math.isclose(cell(tidy, "Kön", "Kvinnor", ALL)["percent"], 100 * 16 / 30)
    assert cell(tidy, "Ålder", "60–67", "05")["n"] == 0
    assert cell(tidy, "Ålder", "40–59", ALL)["n"] == 17
    # Uppsala's missing education is left out of its percent base: 11 of 11
    assert cell(tidy, "Utbildningsnivå", TOTAL, "03")["n"] == 11
    assert cell(tidy, "Utbildningsnivå", "Gymnasial", "03")["percent"] == 100.0
    assert math.isclose(cell(tidy, "Utbildningsnivå", "Gymnasial", ALL)["percent"], 100 * 19 / 29)
    assert cell(tidy, "Kön", "Män", "12")["region_name"] == "Skåne"
    assert set(tidy["block"]) == {b.name for b in blocks(CODES) if b.in_table2}


def test_smd_matches_the_formula_by_hand():
    out = smds()
    # Uppsala women: p = 8/12, pooled 16/30 -> (2/15) / sqrt((2/9 + 56/225) / 2) = 2 / sqrt(53)
    assert math.isclose(cell(out, "Kön", "Kvinnor", "03")["smd"], 2 / math.sqrt(53))
    assert math.isclose(cell(out, "Kön", "Män", "03")["smd"], -2 / math.sqrt(53))
    # Östergötland women: p = 1/2 -> -(1/30) / sqrt(449/1800) = -sqrt(2/449)
    assert math.isclose(cell(out, "Kön", "Kvinnor", "05")["smd"], -math.sqrt(2 / 449))
    # Skåne, all Förgymnasial: p = 1, pooled 8/29 -> 21 / sqrt(84) = sqrt(21) / 2
    assert math.isclose(cell(out, "Utbildningsnivå", "Förgymnasial", "12")["smd"], 21**0.5 / 2)
    assert math.isclose(cell(out, "Ålder", "60–67", "12")["smd"], smd(3 / 8, 5 / 30))
    # everyone F43: shares 1 vs 1 and 0 vs 0 have no SMD, and nothing is hidden
    for category in ["Stressreaktioner (F43)", "Övriga diagnoser"]:
        row = cell(out, "Huvuddiagnos (MiDAS)", category, "05")
        assert row["smd"] is None
    every = [a for ages in AGES.values() for a in ages]
    mean_r, var_r = statistics.mean(AGES["12"]), statistics.variance(AGES["12"])
    mean_all, var_all = statistics.mean(every), statistics.variance(every)
    expected_age = (mean_r - mean_all) / math.sqrt((var_r + var_all) / 2)
    assert math.isclose(cell(out, "Ålder", "Medelålder", "12")["smd"], expected_age)
    # Skåne's largest |SMD| is Förgymnasial (Gymnasial: 19 / sqrt(95), age bands and mean smaller)
    assert abs(expected_age) < 21**0.5 / 2 and 19 / math.sqrt(95) < 21**0.5 / 2
    (line,) = region_lines(smd_layout(out, decimals=6), 0.1)
    assert f"Skåne {printed(str(round(21**0.5 / 2, 6)), 'stat')} (9 av 9)" in line
    assert ALL not in out["region"].to_list()


def test_report_summarises_only_the_smds_the_table_shows():
    wide = pl.DataFrame(
        {
            "block": ["Kön", "Kön", "Ålder"],
            "category": ["Kvinnor", "Män", "18–39"],
            "Uppsala": ["0.3", "-0.3", ".."],
            "Skåne": ["..", "..", ".."],
            "Kalmar": ["0.05", "-0.2", "0.1"],
        }
    )
    (line,) = region_lines(wide, 0.1)
    assert "Uppsala 0,3 (2 av 2)" in line and "Kalmar 0,2 (1 av 3)" in line
    assert "Skåne" not in line  # nothing shown: nothing said


def test_alla_is_table2s_treated_column():
    rows = cohort_rows()
    b3 = with_percent(
        table_b3_counts(
            with_labels(rows.filter("person_row"), CODES), blocks(CODES), ownership_labels(CODES)
        ),
        "ownership",
    )
    table2 = {b.name for b in blocks(CODES) if b.in_table2}
    treated_column = b3.filter(
        pl.col("block").is_in(table2)
        & (pl.col("group") == "Insats")
        & (pl.col("ownership") == TOTAL)
    ).select("block", "category", "n", "percent")
    alla = table().filter(pl.col("region") == ALL).select("block", "category", "n", "percent")
    assert alla.equals(treated_column)
    # published, the Alla column hides what Table 2 hides, and shows what it shows
    for min_count in (3, 5):
        tables = published(rows, min_count)
        t2 = tables["table2.csv"].select("block", "category", "Insats Totalt")
        by_region = tables["table2_by_region.csv"].select("block", "category", ALL)
        both = t2.join(by_region, on=["block", "category"])
        assert both.height == t2.height
        assert (both["Insats Totalt"] == both[ALL]).all()


def test_hidden_cells_cannot_be_recomputed_and_hide_their_smd():
    tidy = table()
    tables = published(cohort_rows(), min_count=3)
    printed = tables["table2_by_region.csv"]
    hidden = hidden_region_cells(printed)
    names = {"03": "Uppsala", "05": "Östergötland", "12": "Skåne", ALL: ALL}
    # 03 60–67 (2), 12 18–39 (1), 05 and Alla Eftergymnasial (2): the small counts, hidden
    for block, category, region in [
        ("Ålder", "60–67", "03"),
        ("Ålder", "18–39", "12"),
        ("Utbildningsnivå", "Eftergymnasial", "05"),
        ("Utbildningsnivå", "Eftergymnasial", ALL),
    ]:
        assert (block, category, names[region]) in hidden
    assert not {h for h in hidden if h[0] == "Kön"}  # every sex cell >= 3
    flags = with_hidden_flags(tidy, printed)
    assert lp_leaks(flags) == {block: [] for block in tidy["block"].unique()}
    kvinnor = printed.filter((pl.col("block") == "Kön") & (pl.col("category") == "Kvinnor"))
    assert kvinnor["Uppsala"].item() == "8 (67)" and kvinnor[ALL].item() == "16 (53)"

    wide = tables["table2_by_region_smd.csv"]
    assert wide.columns == ["block", "category", "Uppsala", "Östergötland", "Skåne"]
    for r in wide.filter(pl.col("category") != "Medelålder").iter_rows(named=True):
        for name in ("Uppsala", "Östergötland", "Skåne"):
            sources = [(r["block"], r["category"]), (r["block"], TOTAL)]
            expected = any((b, c, n) in hidden for b, c in sources for n in (name, ALL))
            assert (r[name] == "..") == expected, (r["block"], r["category"], name)
    assert wide.filter(pl.col("category") == "Kvinnor")["Uppsala"].item() == str(
        round(2 / math.sqrt(53), 2)
    )


def test_mean_age_smd_is_hidden_below_min_count():
    ages = age_by_region(cohort_rows(), CODES, REGIONS, "residence")
    assert ages["n"].to_list() == [12, 10, 8, 30]
    assert math.isclose(ages.filter(pl.col("region") == "12")["mean_age"].item(), 401 / 8)
    tables = published(cohort_rows(), min_count=9)
    wide = tables["table2_by_region_smd.csv"]
    age = wide.filter(pl.col("category") == "Medelålder").row(0, named=True)
    assert age["Skåne"] == ".."  # 8 persons
    # hidden exactly where the region's age total is (Skåne's, and one more beside it,
    # since the pooled total is shown)
    totals = tables["table2_by_region.csv"].filter(
        (pl.col("block") == "Ålder") & (pl.col("category") == TOTAL)
    )
    for name in ("Uppsala", "Östergötland", "Skåne"):
        assert (age[name] == "..") == (totals[name].item() == ".."), name
    assert [age[n] for n in ("Uppsala", "Östergötland")].count("..") == 1


def test_region_basis_provider_uses_the_first_gc001_region_for_treated():
    frame = pl.DataFrame(
        {"treated": [True, False], "lan": ["03", "03"], "region_first": ["05", None]}
    )
    assert frame.select(region_of("provider"))["region"].to_list() == ["05", "03"]
    assert frame.select(region_of("residence"))["region"].to_list() == ["03", "03"]
    residence, provider = table("residence"), table("provider")
    # the two moved Uppsala residents are women
    assert [cell(residence, "Kön", c, "03")["n"] for c in ("Kvinnor", TOTAL)] == [8, 12]
    assert [cell(provider, "Kön", c, "03")["n"] for c in ("Kvinnor", TOTAL)] == [6, 10]
    assert [cell(provider, "Kön", c, "05")["n"] for c in ("Kvinnor", TOTAL)] == [7, 12]
    assert cell(provider, "Kön", TOTAL, ALL)["n"] == 30


def test_treated_outside_the_regions_is_an_error():
    try:
        treated_by_region(cohort_rows(), CODES, ["03", "05"], "residence")
    except ValueError as error:
        assert "outside the regions" in str(error)
    else:
        raise AssertionError("expected a ValueError")


@settings(max_examples=25, deadline=None)
@given(
    people=st.lists(
        st.tuples(
            st.sampled_from(REGIONS),
            st.sampled_from(["Kvinnor", "Män"]),
            st.integers(18, 67),
            st.sampled_from(["Förgymnasial", "Gymnasial", "Eftergymnasial", "saknas"]),
        ),
        min_size=1,
        max_size=60,
    ),
    min_count=st.sampled_from([3, 5]),
)
def test_random_tables_do_not_leak_and_alla_is_the_sum(people, min_count):
    rows = pl.DataFrame(
        [person(i, True, r, r, sex, age, edu) for i, (r, sex, age, edu) in enumerate(people)]
    )
    tidy = treated_by_region(rows, CODES, REGIONS, "residence")
    if rows.height >= 5:  # Table 2 has its own rules for fewer persons than a threshold
        flags = with_hidden_flags(tidy, published(rows, min_count)["table2_by_region.csv"])
        assert all(leaks == [] for leaks in lp_leaks(flags, min_count).values())
    sums = tidy.filter(pl.col("region") != ALL).group_by("block", "category").agg(pl.col("n").sum())
    alla = tidy.filter(pl.col("region") == ALL).select("block", "category", "n")
    assert (
        alla.join(sums, on=["block", "category"])
        .filter(pl.col("n") != pl.col("n_right"))
        .is_empty()
    )
    assert cell(tidy, "Kön", TOTAL, ALL)["n"] == len(people)


def test_region_table_and_table_b3_read_together_reveal_no_hidden_cell(run_dir):
    # One linear system over both tables: B3's treated cells (ownership columns and
    # `Totalt`) and the region table's cells, sharing the `Alla` = B3 treated `Totalt`
    # cells. The independent LP must pin none of the hidden counts.
    cfg = config.compose([])
    rows = pl.read_parquet(run_dir / "outputs" / "cohort.parquet").filter("person_row")
    min_count = 30  # a high threshold, so that many cells are hidden
    regions = [str(r) for r in cfg.cohort.regions]
    tidy = treated_by_region(rows, cfg.codes, regions, "residence")
    tables = published(rows, min_count, cfg.codes, regions)
    tidy = with_hidden_flags(tidy, tables["table2_by_region.csv"])
    b3 = with_percent(b3_counts(rows, cfg.codes), "ownership")
    b3 = b3.with_columns(
        pl.Series("suppressed", tables["table_b3_long.csv"]["n"].to_list()) == ".."
    ).filter(pl.col("group") == "Insats")
    table2 = {b.name for b in blocks(cfg.codes) if b.in_table2}
    b3 = b3.filter(pl.col("block").is_in(table2))
    cells: dict[tuple, int] = {}
    counts, hidden = [], []

    def cell(key: tuple, n: int, is_hidden: bool) -> int:
        if key not in cells:
            cells[key] = len(counts)
            counts.append(n)
            hidden.append(is_hidden)
        assert counts[cells[key]] == n and hidden[cells[key]] == is_hidden, key
        return cells[key]

    for r in b3.iter_rows(named=True):
        column = "Alla" if r["ownership"] == TOTAL else f"own:{r['ownership']}"
        cell((r["block"], r["category"], column), r["n"], r["suppressed"])
    for r in tidy.iter_rows(named=True):
        column = "Alla" if r["region"] == "Alla" else f"reg:{r['region']}"
        cell((r["block"], r["category"], column), r["n"], r["suppressed"])
    constraints = []
    columns = {k[2] for k in cells}
    for block in table2:
        categories = {k[1] for k in cells if k[0] == block} - {TOTAL}
        for column in columns:
            parts = [cells[(block, c, column)] for c in categories if (block, c, column) in cells]
            if (block, TOTAL, column) in cells:
                constraints.append((cells[(block, TOTAL, column)], parts))
        for category in [*categories, TOTAL]:
            for prefix in ("own:", "reg:"):
                parts = [
                    i
                    for k, i in cells.items()
                    if k[:2] == (block, category) and k[2].startswith(prefix)
                ]
                constraints.append((cells[(block, category, "Alla")], parts))
    assert any(hidden)
    # a large secondary cell may be pinned (it discloses nobody); a small one must not be
    leaks = [i for i in leaking_cells(counts, constraints, hidden) if counts[i] < min_count]
    keys = {i: k for k, i in cells.items()}
    assert [(keys[i], counts[i]) for i in leaks] == []
