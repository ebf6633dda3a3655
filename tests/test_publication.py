"""The publication gate (`pipeline.report.publication`): fixed patterns on hand-made
tables, each rule alone, the refusal message, and the published files of a run."""

from __future__ import annotations

import math
import re

import numpy as np
import polars as pl
import pytest

from pipeline.__main__ import main
from pipeline.core import config
from pipeline.core.errors import PipelineError
from pipeline.report.publication import DisclosureError, publish
from pipeline.report.publication.check import violations
from pipeline.report.publication.gate import protect
from pipeline.report.publication.relations import column_link, margin, steps
from pipeline.report.publication.spec import DisclosureRules, Link, TableSpec, rules_from
from pipeline.report.publication.specs import SPECS
from pipeline.stages.outcomes import OutcomeConfig

RULES = DisclosureRules(min_count=5)


def text(**columns: list) -> pl.DataFrame:
    """A table as the stages write it and the gate reads it: every column text."""
    return pl.DataFrame(
        {k: [None if v is None else str(v) for v in vs] for k, vs in columns.items()},
        schema={k: pl.String for k in columns},
    )


# --- a fixed expected pattern on a hand-made table set (Tau-Argus style) ----------------

MARGINS = TableSpec(
    "margins.csv",
    "parts and their total per group",
    keys=("group", "category"),
    counts=("n",),
    derived={"percent": ("n",)},
    relations=margin(("n",), ("group",), "category", "Totalt"),
    flag="suppressed",
)
WINDOWS = TableSpec(
    "windows.csv",
    "a population and its cumulative windows: n, within 12, 6 and 3 months",
    keys=("row",),
    counts=("n", "count"),
    complements=(("count", "n"),),
    relations=steps(("count",), (), ("row", "n", "<12", "<6", "<3")),
)
NESTED = TableSpec(
    "nested.csv",
    "a subpopulation of margins.csv's group A, sharing its total",
    keys=("what",),
    counts=("n",),
    links=(Link("margins.csv", column_link("n", "n", ("what",), ("category",), {"group": "A"})),),
)


def test_a_hand_made_table_set_gets_exactly_the_expected_pattern():
    margins = text(
        group=["A", "A", "A", "A", "B", "B", "B", "B"],
        category=["x", "y", "z", "Totalt", "x", "y", "z", "Totalt"],
        n=[3, 10, 12, 25, 8, 9, 20, 37],
        percent=[12, 40, 48, 100, 22, 24, 54, 100],
        suppressed=["false"] * 8,
    )
    got, log = publish(margins, MARGINS, RULES)
    # A/x is below 5; its margin would give it back, so the smallest other part goes too
    assert got["n"].to_list() == ["..", "..", "12", "25", "8", "9", "20", "37"]
    assert got["percent"].to_list() == ["..", "..", "48", "100", "22", "24", "54", "100"]
    assert got["suppressed"].to_list() == ["true", "true"] + ["false"] * 6
    assert (log.hidden["primary"], log.hidden["secondary"], log.shown) == (1, 1, 6)

    windows = text(row=["n", "<12", "<6", "<3"], n=[40, 40, 40, 40], count=[40, 38, 30, 20])
    got, log = publish(windows, WINDOWS, RULES)
    # 40 - 38 = 2 persons without income within 12 months: the 12-month count goes
    assert got["count"].to_list() == ["40", "..", "30", "20"]
    assert got["n"].to_list() == ["40"] * 4
    assert log.hidden["complement"] == 1

    nested = text(what=["x", "y", "w"], n=[3, 10, 7])
    got, log = publish(nested, NESTED, RULES, {"margins.csv": publish(margins, MARGINS, RULES)[0]})
    # x and y are the same cells as margins.csv's A/x and A/y, hidden there
    assert got["n"].to_list() == ["..", "..", "7"]
    assert log.hidden["linked"] == 2


# --- each rule ------------------------------------------------------------------------------

SHARES = TableSpec(
    "shares.csv",
    "a share of n with its CI",
    keys=("group",),
    counts=("n",),
    implied={"percent": ("n", 100)},
    complements=(("percent", "n"),),
    derived={"ci_low": ("percent",)},
    stats={"median": "n"},
)


def test_a_share_and_its_n_imply_a_count_and_its_complement():
    frame = text(
        group=["a", "b", "c", "d"],
        n=[35, 35, 200, 3],
        percent=[5.714285714285708, 94.28571428571429, 50.0, 100.0],
        ci_low=[1.6, 81.4, 43.0, 40.0],
        median=[27505, 27505, 30000, 25000],
    )
    got, log = publish(frame, SHARES, RULES)
    # 2 of 35 (5.7 %) and, as complement, 33 of 35 (94.3 %) go with their CIs; the n of 3
    # goes with everything on its row (its 100 % is a count of 3 too), the median of 3 as well
    assert got["percent"].to_list() == ["..", "..", "50.0", ".."]
    assert got["ci_low"].to_list() == ["..", "..", "43.0", ".."]
    assert got["n"].to_list() == ["35", "35", "200", ".."]
    assert got["median"].to_list() == ["27505", "27505", "30000", ".."]
    assert (log.hidden["primary"], log.hidden["complement"]) == (3, 1)


def test_without_the_complement_rule_a_count_of_n_minus_few_is_shown():
    frame = text(group=["a"], n=[35], percent=[94.28571428571429], ci_low=[81.4], median=[1])
    got, _ = publish(frame, SHARES, DisclosureRules(min_count=5, complement=False))
    assert got["percent"].to_list() == ["94.28571428571429"]
    assert violations(got, SHARES, RULES) != []  # the default rules would refuse it


def test_zeros_are_shown_or_hidden_as_configured():
    frame = text(group=["a", "b", "Totalt"], n=[0, 9, 9])
    spec = TableSpec("z.csv", "", keys=("group",), counts=("n",))
    assert publish(frame, spec, RULES)[0]["n"].to_list() == ["0", "9", "9"]
    hide = DisclosureRules(min_count=5, zeros="hide")
    assert protect(frame, spec, hide)[0]["n"].to_list() == ["..", "9", "9"]


def test_a_cell_shown_here_but_hidden_in_a_table_sharing_it_is_hidden_and_an_inf_emptied():
    register = text(
        region=["01", "01", "03"], year=["2023", "2024", "2023"], registered=[3, 16, 66]
    )
    spec = TableSpec("reg.csv", "", keys=("region", "year"), counts=("registered",))
    register_out, _ = publish(register, spec, RULES)
    change = text(region=["01"], registered_2023=[3], registered_2024=[16], pct=["inf"])
    change_spec = TableSpec(
        "change.csv",
        "",
        keys=("region",),
        counts=("registered_2023", "registered_2024"),
        derived={"pct": ("registered_2023", "registered_2024")},
        links=(
            Link(
                "reg.csv",
                column_link(
                    "registered_2023", "registered", ("region",), ("region",), {"year": "2023"}
                ),
            ),
        ),
    )
    got, log = publish(change, change_spec, RULES, {"reg.csv": register_out})
    assert got.row(0) == ("01", "..", "16", None)
    assert log.non_finite == 1


def test_a_table_it_cannot_protect_is_refused_with_file_column_and_row():
    frame = text(group=["a", "b"], n=[2, 40])
    spec = TableSpec("small.csv", "", keys=("group",), counts=("n",))
    found = violations(frame, spec, RULES)
    assert found == ["small.csv: column 'n', data row 1 (group=a): count 2 is below 5"]
    # a margin whose other cells another published table shows pins the small one
    other = text(group=["b", "all"], n=[10, 12])
    pinned = TableSpec(
        "pinned.csv",
        "",
        keys=("group",),
        counts=("n",),
        relations=margin(("n",), (), "group", "all"),
        links=(Link("other.csv", column_link("n", "n", ("group",), ("group",), {})),),
    )
    frame = text(group=["a", "b", "all"], n=[2, 10, 12])
    refusal = r"pinned\.csv: column 'n', data row 1 \(group=a\) cannot be protected"
    with pytest.raises(DisclosureError, match=refusal):
        publish(frame, pinned, RULES, {"other.csv": other})
    # a small count never printed (n - count) is named by the printed cells it follows from
    shared = text(group=["a"], n=[40], count=[38])
    with pytest.raises(DisclosureError, match=r"the unprinted count \(2\) between column"):
        publish(
            text(group=["a"], n=[40], count=[38]),
            TableSpec(
                "few.csv",
                "",
                keys=("group",),
                counts=("n", "count"),
                complements=(("count", "n"),),
                links=(
                    Link("shared.csv", column_link("n", "n", ("group",), ("group",), {})),
                    Link("shared.csv", column_link("count", "count", ("group",), ("group",), {})),
                ),
            ),
            RULES,
            {"shared.csv": shared},
        )


def test_rounding_instead_of_suppression():
    rules = DisclosureRules(min_count=5, method="round")
    frame = text(
        group=["a", "b", "c"],
        n=[7, 20, 1234],
        percent=[100.0, 50.0, 10.0],
        ci_low=[1, 2, 3],
        median=[4, 5, 6],
    )
    got, log = publish(frame, SHARES, rules)
    assert got["n"].to_list() == ["0", "20", "1235"]  # <= 7 to 0, the rest to the nearest 5
    # shares recomputed from the rounded counts (10 of 20; 123 -> 125 of 1235), none of 0
    assert got["percent"].to_list() == [None, repr(10 / 20 * 100), repr(125 / 1235 * 100)]
    assert got["ci_low"].to_list() == [None, None, None]
    assert log.rounded > 0


def test_the_rules_come_from_config_and_an_unknown_choice_is_refused():
    section = dict(config.compose([])["disclosure"])
    assert rules_from(section) == DisclosureRules()
    with pytest.raises(ValueError, match=r"disclosure\.method"):
        rules_from({**section, "method": "perturb"})


def test_every_table_a_spec_links_to_or_follows_is_published_before_it():
    # the gate reads a linked table as published; one published later would be skipped
    before: set[str] = set()
    for spec in SPECS:
        for other in [link.other for link in spec.links] + [f.other for f in spec.follows]:
            assert other in before, (spec.file, other)
        before.add(spec.file)


def test_publish_refuses_a_results_file_it_has_no_spec_for(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "new_table.csv").write_text("n\n3\n")
    from pipeline.stages import publish as stage

    with pytest.raises(PipelineError, match=r"new_table\.csv: no publication spec"):
        stage.run(config.compose([f"paths.outputs={tmp_path}"]))


# --- the published files of the shared end-to-end run ---------------------------------------


def _tables(run_dir) -> dict[str, pl.DataFrame]:
    out = run_dir / "outputs" / "tables"
    return {spec.file: pl.read_csv(out / spec.file, infer_schema=False) for spec in SPECS}


def test_every_published_table_passes_the_attacker_check_of_its_spec(run_dir):
    published: dict[str, pl.DataFrame] = {}
    for spec in SPECS:
        frame = _tables(run_dir)[spec.file]
        assert violations(frame, spec, RULES, published) == []
        published[spec.file] = frame
    written = {p.name for p in (run_dir / "outputs" / "tables").glob("*.csv")}
    assert written == {spec.file for spec in SPECS}


COUNT_COLUMN = re.compile(
    r"^(n|count|n_.*|registered(_\d{4}|_primary_care|_survey_years)?|events|censored|observed"
    r"|block_total)$"
)
PAIRS = (
    ("count", "n"),
    ("n_events", "n"),
    ("n_censored", "n"),
    ("n_persons_only_outside", "n_persons"),
)


def _num(value: str | None) -> float | None:
    try:
        return None if value in (None, "", "..") else float(value)
    except ValueError:
        return None


def test_no_published_csv_shows_or_implies_a_small_count_by_a_plain_scan(run_dir):
    """A second reading, without the specs: count-like columns, known (count, n) pairs,
    percent/share columns beside an n, and printed "n (percent)" cells."""
    small = lambda v: v is not None and math.isfinite(v) and 0 < round(v) < 5  # noqa: E731
    for path in sorted((run_dir / "outputs" / "tables").glob("*.csv")):
        frame = pl.read_csv(path, infer_schema=False)
        for row in frame.iter_rows(named=True):
            for column, value in row.items():
                if COUNT_COLUMN.match(column) and column not in ("n_strata", "n_sets"):
                    assert not small(_num(value)), (path.name, column, row)
                printed = re.match(r"^(\d[\d ]*) \(", value or "")
                if printed:
                    assert not small(float(printed.group(1).replace(" ", ""))), (
                        path.name,
                        column,
                        row,
                    )
            for count, n in PAIRS:
                a, b = _num(row.get(count)), _num(row.get(n))
                if a is not None and b is not None:
                    assert not small(b - a), (path.name, count, n, row)
            # where rows are categories of a block, n is the category's own count (scanned
            # above) and percent its share of the block; elsewhere n is the denominator
            n = None if "category" in frame.columns else _num(row.get("n"))
            for column in ("percent", "share_after_late_day", "share_censored"):
                p = _num(row.get(column))
                if n is not None and p is not None:
                    implied = p * n / (100 if column == "percent" else 1)
                    assert not small(implied) and not small(n - implied), (path.name, column, row)


def test_the_known_leaks_are_closed(run_dir):
    t = _tables(run_dir)
    change = t["region_change_2023_2024.csv"]
    assert not change["registered_change_pct"].is_in(["inf", "NaN", "-inf"]).any()
    register = t["registered_vs_reported.csv"]
    for year in (2023, 2024):
        hidden = register.filter((pl.col("year") == str(year)) & (pl.col("registered") == ".."))
        shown_here = change.join(hidden.select("region"), on="region").filter(
            pl.col(f"registered_{year}") != ".."
        )
        assert shown_here.height == 0, year
    outside = t["exposure_outside_spells.csv"]
    for column in ("n_persons", "n_persons_only_outside"):
        assert not outside[column].map_elements(lambda v: small_value(v), pl.Boolean).any()
    figures = (
        t["figures13_14.csv"]
        .drop_nulls(["percent", "n"])
        .filter((pl.col("percent") != "..") & (pl.col("n") != ".."))
    )
    implied = figures["percent"].cast(pl.Float64) * figures["n"].cast(pl.Float64) / 100
    counts = np.round(implied.to_numpy())
    rest = figures["n"].cast(pl.Float64).to_numpy() - counts
    assert not ((counts > 0) & (counts < 5)).any() and not ((rest > 0) & (rest < 5)).any()
    for name, count, n in (
        ("income_tables_long.csv", "count", "n"),
        ("income_directions.csv", "percent_treated", "n_treated"),
    ):
        frame = t[name].filter((pl.col(count) != "..") & (pl.col(n) != "..")).drop_nulls([count, n])
        c = frame[count].cast(pl.Float64).to_numpy()
        size = frame[n].cast(pl.Float64).to_numpy()
        c = np.round(c * size / 100) if count.startswith("percent") else c
        assert not (((size - c) > 0) & ((size - c) < 5)).any(), name


def test_tables_that_repeat_a_cohort_total_show_it_alike(run_dir, tiny_run):
    # the treated and control person rows (Table 2/B3's unit) are printed by the attrition
    # flow, Table 2/B3's age block, B3's ages, the FK registrations and the GC001 timing;
    # the cohort's spells by the flow, the timing and the spell lengths: each is one
    # value, shown everywhere or hidden everywhere
    for base in (run_dir, tiny_run):
        t = _tables(base)
        flow = {r["step"]: r for r in t["attrition.csv"].iter_rows(named=True)}
        steps = list(flow)
        cohort = flow[steps[steps.index("person_row") - 1]]

        def cells(frame: pl.DataFrame, column: str, **where: str) -> list[str]:
            test = pl.lit(True)
            for key, value in where.items():
                test = test & (pl.col(key) == value)
            return frame.filter(test)[column].to_list()

        b3 = dict(block="Ålder", category="Totalt", ownership="Totalt")
        for group, side in (("Insats", "treated"), ("Kontroll", "control")):
            persons = [
                flow["person_row"][f"n_spells_{side}"],
                flow["person_row"][f"n_persons_{side}"],
                *cells(t["table_b3_long.csv"], "n", group=group, **b3),
                *cells(t["table2_long.csv"], "n", group=group, **b3),
                *cells(t["table_b3_age.csv"], "n", group=group, ownership="Totalt"),
                *cells(t["fk_registrations.csv"], "n", group=group),
            ]
            spells = [cohort[f"n_spells_{side}"]]
            if side == "treated":
                persons += cells(t["gc001_timing.csv"], "n", unit="person_rows")
                spells += cells(t["gc001_timing.csv"], "n", unit="spells")
            else:
                spells += cells(t["spell_length_by_care_level.csv"], "n", group=group)
            for values in (persons, spells):
                assert len(set(values)) == 1, (base.name, group, values)


def test_a_block_total_hidden_for_persons_without_a_value_takes_its_percents(run_dir, tiny_run):
    # a block's total counts the persons with a value; the age block's everyone. Where the
    # difference is small the gate hides the total, and a category's percent (of the
    # total) would give it back with the category's n: hidden in the long table, dropped
    # from the printed "n (percent)" cell
    hidden_somewhere = False
    for base in (run_dir, tiny_run):
        t = _tables(base)
        full = pl.read_csv(base / "outputs" / "results" / "table_b3_long.csv", infer_schema=False)
        everyone = {
            (r["group"], r["ownership"]): int(r["n"])
            for r in full.filter(
                (pl.col("block") == "Ålder") & (pl.col("category") == "Totalt")
            ).iter_rows(named=True)
        }
        long = t["table_b3_long.csv"]
        for r in full.filter(pl.col("category") == "Totalt").iter_rows(named=True):
            key = (r["block"], r["group"], r["ownership"])
            missing = everyone[key[1:]] - int(r["n"])
            shown = long.filter(
                (pl.col("block") == key[0])
                & (pl.col("category") == "Totalt")
                & (pl.col("group") == key[1])
                & (pl.col("ownership") == key[2])
            )["n"].item()
            assert not (0 < missing < 5 and shown != ".."), key
            if shown != "..":
                continue
            hidden_somewhere = True
            column = long.filter(
                (pl.col("block") == key[0]) & (pl.col("group") == key[1])
                & (pl.col("ownership") == key[2]) & (pl.col("category") != "Totalt")
            )  # fmt: skip
            assert column["percent"].drop_nulls().is_in(["..", ""]).all(), key
            for name in ("table_b3.csv", "table2.csv"):
                printed = t[name].filter(pl.col("block") == key[0])
                header = f"{key[1]} {key[2]}"
                if header in printed.columns:
                    assert not printed[header].drop_nulls().str.contains(r"\(").any(), key
    assert hidden_somewhere  # the tiny run hides the education total of the treated


def small_value(value: str | None) -> bool:
    number = _num(value)
    return number is not None and 0 < number < 5


def test_the_html_and_the_workbook_print_no_small_count(run_dir):
    import zipfile

    html = (run_dir / "outputs" / "report.html").read_text(encoding="utf-8")
    cells = re.findall(r"<td>(\d[\d\u00a0 ]*) \(\d+\)", html)
    assert cells and not any(0 < int(re.sub(r"\D", "", c)) < 5 for c in cells)  # zeros shown
    with zipfile.ZipFile(run_dir / "outputs" / "report.xlsx") as book:
        strings = book.read("xl/sharedStrings.xml").decode("utf-8")
    printed = re.findall(r">(\d[\d\u00a0 ]*) \(\d+\)", strings)
    assert printed and not any(0 < int(re.sub(r"\D", "", c)) < 5 for c in printed)
    assert "Röjandekontroll" in html


def test_the_export_holds_only_checked_files_with_a_true_manifest(run_dir):
    import hashlib

    export = run_dir / "outputs" / "export"
    manifest = pl.read_csv(export / "manifest.csv")
    on_disk = {str(p.relative_to(export)) for p in export.rglob("*") if p.is_file()}
    assert on_disk == {*manifest["file"].to_list(), "manifest.csv"}
    for row in manifest.iter_rows(named=True):
        data = (export / row["file"]).read_bytes()
        assert (len(data), hashlib.md5(data).hexdigest()) == (row["bytes"], row["md5"])
    assert (export / "tables" / "attrition.csv").exists()


def test_the_export_refuses_a_server_path_a_person_id_column_and_a_date(tmp_path):
    from pipeline.stages.export import file_problems

    limits = config.compose([])["export"]
    (tmp_path / "a.csv").write_text("lopnr,start\n1,2020-01-03\n")
    (tmp_path / "b.html").write_text("<p>data in /home/user/mona/lev1</p>")
    (tmp_path / "c.txt").write_text("x")
    problems = {p.name: file_problems(p, p.name, limits) for p in tmp_path.iterdir()}
    assert any("identifier" in p for p in problems["a.csv"])
    assert any("calendar dates" in p for p in problems["a.csv"])
    assert any("server path" in p for p in problems["b.html"])
    assert any("file type" in p for p in problems["c.txt"])
    assert main(["export", f"paths.outputs={tmp_path}"]) == 2  # nothing to export: refused


# --- regressions from a review of the gate ---------------------------------------------------


def test_a_difference_between_the_groups_goes_with_either_groups_hidden_count():
    spec = {s.file: s for s in SPECS}["fk_registrations.csv"]
    frame = text(
        registration=["a", "a", "b", "b"],
        group=["Insats", "Kontroll", "Insats", "Kontroll"],
        n=[2013, 17223, 2013, 17223],
        count=[3, 389, 176, 389],
        percent=[0.15, 2.26, 8.74, 2.26],
        ci_low=[0.1, 2.0, 7.6, 2.0],
        ci_high=[0.4, 2.5, 10.1, 2.5],
        diff_pp=[-2.1, -2.1, 6.5, 6.5],
        diff_ci_low=[-2.4, -2.4, 5.3, 5.3],
        diff_ci_high=[-1.8, -1.8, 7.8, 7.8],
        p_value=[0.001, 0.001, 0.0, 0.0],
        count_suppressed=["false"] * 4,
    )
    got, _ = publish(frame, spec, RULES)
    # diff + the control percent would give the treated count 3 back: hidden on both rows
    assert got["diff_pp"].to_list() == ["..", "..", "6.5", "6.5"]
    assert got["p_value"].to_list() == ["..", "..", "0.0", "0.0"]


def test_a_share_of_an_n_the_stage_hid_is_hidden():
    spec = TableSpec(
        "s.csv", "", keys=("g",), counts=("n",), implied={"share": ("n", 1)}, flag="suppressed"
    )
    got, _ = publish(text(g=["a"], n=[None], share=[0.667], suppressed=["true"]), spec, RULES)
    assert got["share"].to_list() == [".."]


def test_a_count_hidden_by_the_stage_is_never_left_known_to_be_small():
    # x + y = 4 with both hidden by the stage and the total shown: each lies in [0, 4]
    spec = TableSpec(
        "m.csv",
        "",
        keys=("k",),
        counts=("n",),
        relations=margin(("n",), (), "k", "all"),
        flag="suppressed",
    )
    frame = text(
        k=["x", "y", "z", "all"], n=["", "", 40, 44], suppressed=["true", "true", "false", "false"]
    )
    got, _ = publish(frame, spec, RULES)
    # z (the smallest shown member) goes too, so x and y each range over [0, 44]
    assert got["n"].to_list() == ["..", "..", "..", "44"]
    assert violations(frame, spec, RULES) != []  # as delivered it would be refused


def test_a_region_total_is_hidden_when_one_of_its_years_is():
    specs = {s.file: s for s in SPECS}
    years = text(
        region=["12", "12", "12"],
        year=["2019", "2020", "2021"],
        registered=[196, 178, 3],
        registered_primary_care=[192, 175, 0],
        antal_insatser=[None, 280, 320],
        region_name=["Skåne"] * 3,
        register_share=[None, 178 / 280, 3 / 320],
    )
    published_years, _ = publish(years, specs["registered_vs_reported.csv"], RULES)
    # 196 - 192 = 4 and 178 - 175 = 3: a cell of each pair is hidden; 3 in 2021 is small
    for year in (0, 1):
        row = published_years.row(year, named=True)
        assert ".." in (row["registered"], row["registered_primary_care"])
    assert published_years["registered"][2] == ".."
    totals = text(
        region=["12"],
        region_name=["Skåne"],
        registered_primary_care=[367],
        registered_survey_years=[181],  # the survey years 2020 and 2021
        reported_survey_years=[600],
        register_share=[181 / 600],
        drop_reason=[None],
        in_cohort_regions=["true"],
    )
    got, _ = publish(
        totals,
        specs["region_exclusion.csv"],
        RULES,
        {"registered_vs_reported.csv": published_years},
    )
    row = got.row(0, named=True)
    hidden = published_years.select(pl.all() == "..")
    # each total is hidden when one of the cells it sums is: primary care over all years,
    # all care over the survey years (a total less the shown years gives the hidden one)
    assert (row["registered_primary_care"] == "..") == hidden["registered_primary_care"].any()
    assert hidden["registered"][1:].any()
    assert row["registered_survey_years"] == row["register_share"] == ".."
    assert row["reported_survey_years"] == "600"


def test_deciles_that_add_up_to_ten_times_the_expected_count_protect_a_small_one():
    spec = {s.file: s for s in SPECS}["gc001_length_rank_deciles.csv"]
    observed = [100] * 8 + [97, 3]  # 1000 sets: 10 x the expected 100
    frame = text(
        design=["d"] * 10,
        decile=list(range(1, 11)),
        observed=observed,
        expected=[100.0] * 10,
        suppressed=["false"] * 10,
    )
    got, log = publish(frame, spec, RULES)
    assert got["observed"].to_list() == ["100"] * 8 + ["..", ".."]  # 3, and 97 with it
    assert (log.hidden["primary"], log.hidden["secondary"]) == (1, 1)


# --- the income tables: shares, tests and populations inside others ---------------------

INCOME = {s.file: s for s in SPECS}["income_tables_long.csv"]
LONG_COLUMNS = ("percent", "ci_low", "ci_high", "p_unadjusted", "p_adjusted", "p_value", "stars")


def income_rows(*rows: tuple) -> pl.DataFrame:
    """income_tables_long rows of (table, block, row, length_class, group, n, count, p)
    with the percent and CI a stage writes; a None n or count is hidden by the stage."""
    columns: dict[str, list] = {k: [] for k in (*ROW_KEYS, "n", "count", *LONG_COLUMNS)}
    columns["suppressed"] = []
    for *key, n, count, p in rows:
        for k, v in zip(ROW_KEYS, key, strict=True):
            columns[k].append(v)
        columns["n"].append(n)
        columns["count"].append(count)
        share = None if key[2] == "n" or None in (n, count) or not n else 100 * count / n
        columns["percent"].append(share)
        columns["ci_low"].append(None if share is None else max(0.0, share - 5))
        columns["ci_high"].append(None if share is None else min(100.0, share + 5))
        for c in ("p_unadjusted", "p_adjusted", "p_value"):
            columns[c].append(p)
        columns["stars"].append("")
        columns["suppressed"].append("true" if None in (n, count) else "false")
    return text(**columns)


ROW_KEYS = ("table", "block", "row", "length_class", "group")


def test_a_share_and_a_test_go_with_a_hidden_n_or_a_hidden_count_of_either_group():
    cell = ("B5", "Någon inkomst", "<12 mån", "Alla")
    frame = income_rows(
        (*cell, "Insats", 34, 32, 0.605),  # 34 - 32 = 2: hidden as a complement
        (*cell, "Kontroll", 251, 241, 0.605),
        ("B4", "Någon inkomst", "<3 mån", "Alla", "Insats", 691, 540, 0.7),
        ("B4", "Någon inkomst", "<3 mån", "Alla", "Kontroll", 6093, 4800, 0.7),
    ).with_columns(  # the treated n hidden upstream, its count and percent written
        pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise("n").alias("n"),
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("true")).otherwise("suppressed"),
    )
    got, _ = publish(frame, INCOME, RULES)
    # the control row's p-value with its count and n gives the treated 32 of 34 back; a
    # shown 540 and its percent give the hidden n back (540 / 0.78 = 691)
    assert got["count"].to_list()[:2] == ["..", "241"]
    for column in ("p_unadjusted", "p_adjusted", "p_value"):
        assert got[column].to_list() == [".."] * 4, column
    for column in ("percent", "ci_low", "ci_high"):
        assert got[column].to_list()[1:] == [got[column][1], "..", got[column][3]], column
        assert got[column][1] not in ("..", None) and got[column][2] == ".."
    assert violations(frame, INCOME, RULES) != []  # as the stage wrote it, refused


def test_table3s_persons_among_b5s_keep_a_small_length_class_hidden():
    # B5's controls: 8 + 1 = 9; Table 3 follows 6 of the 8 (its end years are B5's)
    frame = income_rows(
        *(("B5", "Någon inkomst", "n", length, "Kontroll", n, n, None)
          for length, n in (("<2 år", 8), ("2+ år", 1), ("Alla", 9))),
        *(("Tabell 3", "Ingen inkomst före", "n", length, "Kontroll", n, n, None)
          for length, n in (("<2 år", 6), ("2+ år", 0), ("Alla", 6))),
    )  # fmt: skip
    got, _ = publish(frame, INCOME, RULES)
    n = dict(zip(got["table"] + " " + got["length_class"], got["n"], strict=True))
    assert n["B5 2+ år"] == ".." and n["B5 <2 år"] == ".."
    # shown 9 and 6 would put the hidden 1 in [0, 3] (at least 6 of the 9 are <2 år)
    assert ".." in (n["B5 Alla"], n["Tabell 3 <2 år"], n["Tabell 3 Alla"])
    naive = frame.with_columns(
        pl.when((pl.col("table") == "B5") & (pl.col("length_class") != "Alla"))
        .then(pl.lit(".."))
        .otherwise(pl.col(c))
        .alias(c)
        for c in ("n", "count")
    )
    assert any("implies" in v for v in violations(naive, INCOME, RULES))


def test_table3s_end_years_must_be_among_the_income_tables():
    with pytest.raises(PipelineError, match=r"table3\.end_years=\[2019\].*income\.end_years"):
        OutcomeConfig.from_config(config.compose(["table3.end_years=[2019]"]))


def test_a_value_computed_from_a_share_of_a_hidden_n_goes_and_so_does_an_empty_star():
    # the treated n of 3 is small: its share goes (implied), and with it the difference,
    # the p-value and the stars, also where the stars are "" (not significant): "" beside
    # ".." would tell which rows were significant
    spec = TableSpec(
        "d.csv",
        "",
        keys=("g",),
        counts=("n_treated", "n_control"),
        implied={"percent_treated": ("n_treated", 100), "percent_control": ("n_control", 100)},
        derived={
            c: ("percent_treated", "percent_control", "n_treated", "n_control")
            for c in ("diff_pp", "stars")
        },
        flag="suppressed",
    )
    frame = text(
        g=["a", "b"],
        n_treated=[3, 40],
        n_control=[200, 200],
        percent_treated=[66.7, 50.0],
        percent_control=[50.0, 50.0],
        diff_pp=[16.7, 0.0],
        stars=["", ""],
        suppressed=["false", "false"],
    )
    got, _ = publish(frame, spec, RULES)
    assert got["percent_treated"].to_list() == ["..", "50.0"]
    assert got["diff_pp"].to_list() == ["..", "0.0"]
    assert got["stars"].to_list() == ["..", ""]
    unsafe = frame.with_columns(pl.Series("n_treated", ["..", "40"]))
    assert violations(unsafe, spec, RULES) != []  # percent and difference still shown


def test_the_printed_income_tables_lose_a_percent_whose_n_the_long_table_hides():
    specs = {s.file: s for s in SPECS}
    long = income_rows(
        ("B4", "Tidigare inkomstnivå", "n", "Alla", "Insats", 32, 32, None),
        ("B4", "Tidigare inkomstnivå", "<3 mån", "Alla", "Insats", 32, 21, None),
    ).with_columns(pl.Series("n", ["..", ".."]))  # hidden in the long table
    printed = text(
        block=["Tidigare inkomstnivå"] * 2,
        row=["n", "<3 mån"],
        **{"Alla Insats": ["32", "21 (66)"]},
    )
    got, _ = publish(printed, specs["table_b4.csv"], RULES, {"income_tables_long.csv": long})
    # 21 (66 %) fits only n = 32: the count stays (the long table shows it), the percent goes
    assert got["Alla Insats"].to_list()[1] == "21"


def test_b6s_block_totals_keep_the_persons_without_a_value_hidden():
    spec = {s.file: s for s in SPECS}["table_b6.csv"]
    rows = [("Ålder", "18–39 år", 120), ("Ålder", "40–59 år", 125)]
    rows += [("Utbildning", "Gymnasial", 130), ("Utbildning", "Eftergymnasial", 114)]
    frame = text(
        block=[b for b, _, _ in rows],
        category=[c for _, c, _ in rows],
        income=["Utan inkomst före"] * 4,
        group=["Kontroll"] * 4,
        n=[n for _, _, n in rows],
        percent=[48.98, 51.02, 53.28, 46.72],
        block_total=[245, 245, 244, 244],
        suppressed=["false"] * 4,
    )
    got, _ = publish(frame, spec, RULES)
    # 245 - 244 = 1 person without an education level: a total goes
    totals = got["block_total"].to_list()
    assert ".." in totals
    assert violations(frame, spec, RULES) != []
