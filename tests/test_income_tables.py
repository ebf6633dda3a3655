"""Income tables: counts against a direct count, stars from the adjusted model, suppression."""

from __future__ import annotations

import math

import polars as pl
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep

from pipeline.report.formatting import stars
from pipeline.rules.income_cells import ModelSpec
from pipeline.stages.income_tables.cells import (
    add_significance,
    b4_b5_table3,
)
from pipeline.stages.income_tables.directions import (
    adjusted_effects,
    compare_shares,
    income_directions,
    significant_for,
)
from tests.helpers import gated

B6_COLUMNS = ("block", "category", "income", "group", "n", "percent", "block_total")
LONG_KEYS = ("table", "block", "row", "length_class", "group", "n", "count")
NUMBERS = ("percent_treated", "percent_control", "diff_pp", "diff_ci_low", "diff_ci_high")
NUMBERS += ("p_unadjusted", "ame_pp", "ame_ci_low", "ame_ci_high", "p_adjusted", "p_value")


def _outcomes(run_dir):
    return pl.read_parquet(run_dir / "outputs" / "outcomes.parquet")


def _cell(cells: pl.DataFrame, **where: str) -> dict:
    mask = pl.all_horizontal(pl.col(k) == v for k, v in where.items())
    return cells.filter(mask).row(0, named=True)


def test_b4_cells_equal_a_direct_count(run_dir):
    outcomes = _outcomes(run_dir)
    cells = b4_b5_table3(outcomes, (3, 6, 12))
    population = outcomes.filter(
        pl.col("in_income_tables") & pl.col("income_before").fill_null(False)
    )
    for treated, group in ((True, "Insats"), (False, "Kontroll")):
        part = population.filter(pl.col("treated") == treated)
        where = {"table": "B4", "length_class": "Alla", "group": group}
        cell = _cell(cells, block="Någon inkomst", row="<12 mån", **where)
        assert cell["n"] == part.height
        assert cell["count"] == part["any_income_12"].sum()
        regained = part.filter("regained_applies")
        cell = _cell(cells, block="Tidigare inkomstnivå", row="n", **where)
        assert cell["n"] == regained.height
    # <2 år + 2+ år = Alla for every count
    wide = cells.pivot(on="length_class", index=["table", "block", "row", "group"], values="count")
    assert (wide["<2 år"] + wide["2+ år"] == wide["Alla"]).all()


def test_stars_on_treated_cells_come_from_the_adjusted_model(run_dir):
    models = pl.read_parquet(run_dir / "outputs" / "models" / "income_logit.parquet")
    cells = add_significance(b4_b5_table3(_outcomes(run_dir), (3, 6, 12)), models, "adjusted_logit")
    treated_p = models.filter(pl.col("term") == "treated").select("model", "p_value")
    joined = (
        cells.filter(pl.col("group") == "Insats").drop_nulls("model").join(treated_p, on="model")
    )
    assert joined.height > 0
    for row in joined.iter_rows(named=True):
        assert row["stars"] == stars(row["p_value_right"])
    assert (cells.filter(pl.col("group") == "Kontroll")["stars"] == "").all()


def _persons(treated: bool, length: str, n: int, any_12: int, regained_12: int) -> list[dict]:
    """`n` spells of one group and length class: the first `any_12` with income within 12
    months, the first `regained_12` back at their earlier level."""
    return [
        {
            "treated": treated,
            "length_class": length,
            "any_income_12": i < any_12,
            "regained_12": i < regained_12,
        }
        for i in range(n)
    ]


def _hand_outcomes() -> pl.DataFrame:
    """B4 spells only (all with income before, none in Table 3): controls do better in
    `<2 år` any income (54/60 = 90 % vs 24/40 = 60 %), treated in `2+ år` (36/40 vs 30/50);
    treated `2+ år` regained is 3, below a threshold of 5."""
    rows = [
        *_persons(True, "<2 år", 40, any_12=24, regained_12=20),
        *_persons(False, "<2 år", 60, any_12=54, regained_12=30),
        *_persons(True, "2+ år", 40, any_12=36, regained_12=3),
        *_persons(False, "2+ år", 50, any_12=30, regained_12=25),
    ]
    flags = ("in_income_tables", "income_before", "regained_applies")
    return pl.DataFrame(rows).with_columns(
        *(pl.lit(True).alias(c) for c in flags),
        *(pl.lit(False).alias(c) for c in ("in_table3", "no_income_before")),
        *(pl.lit(False).alias(c) for c in ("durable_any", "durable_regained")),
    )


def _hand_models(spec: ModelSpec, ame: float, p: float) -> pl.DataFrame:
    """A models frame with one fitted model: its treatment term, OR and AME (pp)."""
    terms = [("treated", -1.0, p), ("OR(treated)", math.exp(-1.0), p), ("AME_pp(treated)", ame, p)]
    return pl.DataFrame(
        [
            {
                "model": spec.name,
                "term": term,
                "estimate": estimate,
                "std_err": 0.1,
                "ci_low": estimate - 1,
                "ci_high": estimate + 1,
                "p_value": p_value,
                "n": 100,
                "table": spec.table,
                "income_group": spec.income_group,
                "length_class": spec.length_class,
                "outcome": spec.outcome,
            }
            for term, estimate, p_value in terms
        ]
    )


def _hand_directions() -> pl.DataFrame:
    spec = ModelSpec("B4/B5", "income_before", "<2 år", "any_income_12")
    models = _hand_models(spec, ame=-28.0, p=0.0004)
    cells = add_significance(b4_b5_table3(_hand_outcomes(), (12,)), models, "adjusted_logit")
    cells = cells.with_columns(pl.lit(False).alias("suppressed"))  # as the stage writes them
    empty_b6 = pl.DataFrame(
        schema={
            "block": pl.String,
            "category": pl.String,
            "income": pl.String,
            "group": pl.String,
            "n": pl.Int64,
            "block_total": pl.Int64,
            "suppressed": pl.Boolean,
        }
    )
    adjusted = adjusted_effects(models, cells)
    return income_directions(cells, adjusted, empty_b6, "adjusted_logit")


def test_a_cell_where_the_controls_do_better_says_treated_lower():
    directions = _hand_directions()
    where = {"table": "B4", "block": "Någon inkomst", "row": "<12 mån"}
    row = _cell(directions, length_class="<2 år", **where)
    assert row["direction"] == "treated lower"
    assert row["diff_pp"] == pytest.approx(60.0 - 90.0)
    assert (row["percent_treated"], row["percent_control"]) == pytest.approx((60.0, 90.0))
    assert row["diff_ci_high"] < 0  # 24/40 vs 54/60: the CI excludes zero
    assert row["ame_pp"] == -28.0 and row["p_value"] == row["p_adjusted"] == 0.0004
    assert row["stars"] == "***" and row["significant_for"] == "controls"
    other = _cell(directions, length_class="2+ år", **where)
    assert other["direction"] == "treated higher"
    assert other["diff_pp"] == pytest.approx(90.0 - 60.0)
    assert other["significant_for"] == ""  # no model for it: the stars' p is missing


def test_a_comparison_with_a_cell_the_gate_hides_shows_nothing():
    from pipeline.report.publication import DisclosureRules, publish
    from pipeline.report.publication.specs import SPECS

    spec = ModelSpec("B4/B5", "income_before", "<2 år", "any_income_12")
    models = _hand_models(spec, ame=-28.0, p=0.0004)
    cells = add_significance(b4_b5_table3(_hand_outcomes(), (12,)), models, "adjusted_logit")
    as_text = lambda f: pl.read_csv(f.write_csv().encode(), infer_schema=False)  # noqa: E731
    specs = {s.file: s for s in SPECS}
    long, _ = publish(as_text(cells), specs["income_tables_long.csv"], DisclosureRules())
    no_b6 = pl.DataFrame(schema=dict.fromkeys(B6_COLUMNS, pl.String))
    directions, _ = publish(
        as_text(_hand_directions()),
        specs["income_directions.csv"],
        DisclosureRules(),
        {"income_tables_long.csv": long, "table_b6.csv": no_b6},
    )
    where = {"table": "B4", "block": "Tidigare inkomstnivå", "row": "<12 mån"}
    row = _cell(directions, length_class="2+ år", **where)  # treated count 3 < 5
    assert row["suppressed"] == "true" and row["percent_treated"] == ".."
    hidden = ("diff_pp", "diff_ci_low", "diff_ci_high", "p_unadjusted", "p_value", "direction")
    assert all(row[c] in ("..", None) for c in hidden)
    # 36 of 40 treated 2+ år have income (4 without: hidden) and the margin takes <2 år
    # with it; the pooled class is shown
    shown = _cell(directions, length_class="Alla", table="B4", block="Någon inkomst", row="<12 mån")
    assert shown["suppressed"] == "false" and shown["diff_pp"] not in ("..", None)


@pytest.mark.parametrize(
    "counts", [(24, 40, 54, 60), (36, 40, 30, 50), (0, 10, 5, 20), (10, 10, 3, 20), (7, 9, 7, 9)]
)
def test_the_difference_ci_equals_statsmodels_newcombe(counts):
    compared = compare_shares(*counts)
    low, high = confint_proportions_2indep(*counts, method="newcomb", compare="diff")
    assert compared["diff_ci_low"] / 100 == pytest.approx(low, abs=1e-10)
    assert compared["diff_ci_high"] / 100 == pytest.approx(high, abs=1e-10)
    x1, n1, x2, n2 = counts
    assert compared["diff_pp"] == pytest.approx(100 * (x1 / n1 - x2 / n2), abs=1e-10)
    expected = "treated higher" if x1 / n1 > x2 / n2 else "treated lower"
    assert compared["direction"] == ("equal" if x1 / n1 == x2 / n2 else expected)


@pytest.mark.parametrize(
    ("p", "estimate", "expected"),
    [
        (0.049, -3.0, "controls"),
        (0.049, 3.0, "treated"),
        (0.05, -3.0, ""),  # the threshold is strict: p < 0.05
        (0.001, 0.0, ""),
        (float("nan"), -3.0, ""),  # a model that could not be fitted
        (0.001, float("nan"), ""),
        (None, 3.0, ""),
    ],
)
def test_significant_for_is_p_below_0_05_in_the_direction_of_the_estimate(p, estimate, expected):
    assert significant_for(p, estimate) == expected


def test_b6_directions_compare_category_shares_and_the_gate_hides_small_ones():
    b6 = pl.DataFrame(
        [
            ("Kön", "Kvinna", "Någon inkomst före", "Insats", 30, 100),
            ("Kön", "Kvinna", "Någon inkomst före", "Kontroll", 120, 200),
            ("Kön", "Man", "Någon inkomst före", "Insats", 70, 100),
            ("Kön", "Man", "Någon inkomst före", "Kontroll", 80, 200),
            ("Kön", "Kvinna", "Utan inkomst före", "Insats", 3, 12),
            ("Kön", "Kvinna", "Utan inkomst före", "Kontroll", 40, 90),
            ("Kön", "Man", "Utan inkomst före", "Insats", 9, 12),
            ("Kön", "Man", "Utan inkomst före", "Kontroll", 50, 90),
        ],
        schema=["block", "category", "income", "group", "n", "block_total"],
        orient="row",
    ).with_columns((100 * pl.col("n") / pl.col("block_total")).alias("percent"))
    cells = b4_b5_table3(_hand_outcomes(), (12,)).head(0)
    empty = pl.DataFrame({"model": []}, schema={"model": pl.String})
    directions = income_directions(cells, empty, b6, "adjusted_logit")
    women = _cell(directions, table="B6", row="Kvinna", income="Någon inkomst före")
    assert women["direction"] == "treated lower"
    assert women["diff_pp"] == pytest.approx(30 - 60)
    assert women["significant_for"] == "controls"  # 30/100 vs 120/200, z p < 0.05
    assert women["p_value"] == women["p_unadjusted"] and women["ame_pp"] is None
    # published: 3 treated women without income before are hidden in B6, with their
    # complement (9 men of 12), and so are both comparisons of that column
    no_long = pl.DataFrame(schema=dict.fromkeys(LONG_KEYS, pl.String))
    published_b6 = gated(b6, "table_b6.csv", published={"income_tables_long.csv": no_long})
    published = gated(
        directions,
        "income_directions.csv",
        published={"income_tables_long.csv": no_long, "table_b6.csv": published_b6},
    )
    for sex in ("Kvinna", "Man"):
        hidden = _cell(published, table="B6", row=sex, income="Utan inkomst före")
        assert hidden["suppressed"] == "true" and hidden["percent_treated"] == ".."
        assert hidden["diff_pp"] == ".." and hidden["p_value"] == ".."
    shown = _cell(published, table="B6", row="Kvinna", income="Någon inkomst före")
    assert shown["suppressed"] == "false" and shown["diff_pp"] != ".."


def test_written_directions_match_the_long_cells(run_dir):
    tables = run_dir / "outputs" / "results"
    directions = pl.read_csv(tables / "income_directions.csv")
    long = pl.read_csv(tables / "income_tables_long.csv").filter(pl.col("row") != "n")
    keys = ["table", "block", "row", "length_class"]
    pairs = long.pivot(on="group", index=keys, values=["percent"])
    joined = directions.join(pairs, on=keys, how="inner")
    assert joined.height == pairs.height  # one comparison per B4/B5/Table 3 row and class
    both = pl.col("Insats").is_not_nan() & pl.col("Kontroll").is_not_nan()
    shown = joined.filter(both)  # a group without persons: no share
    assert (shown["percent_treated"] == shown["Insats"]).all()
    assert (shown["percent_control"] == shown["Kontroll"]).all()
    sign = (shown["Insats"] - shown["Kontroll"]).sign()
    word = {1: "treated higher", -1: "treated lower", 0: "equal"}
    assert shown["direction"].to_list() == [word[int(s)] for s in sign]
    assert directions.filter(pl.col("table") == "B6").height > 0


def test_b6_hides_a_small_block_total_and_every_share_of_its_column(run_dir):
    # B6's column total is B4/B5's n: below the threshold it must be hidden like B5's n, with
    # every share of that column (n / share gives the total back), and its comparisons.
    from pipeline.core import config
    from pipeline.stages.income_tables.cells import table_b6

    outcomes = _outcomes(run_dir)
    in_b6 = pl.col("in_income_tables") & pl.col("income_before").is_not_null()
    without = outcomes.filter(in_b6 & ~pl.col("income_before") & pl.col("treated"))
    keep = without.head(3)["spell_id"]
    small = outcomes.filter(
        ~(in_b6 & ~pl.col("income_before") & pl.col("treated"))
        | pl.col("spell_id").is_in(keep.implode())
    )
    b6 = table_b6(small, config.compose([]).codes)
    no_long = pl.DataFrame(schema=dict.fromkeys(LONG_KEYS, pl.String))
    b6 = gated(b6, "table_b6.csv", published={"income_tables_long.csv": no_long})
    column = b6.filter((pl.col("income") == "Utan inkomst före") & (pl.col("group") == "Insats"))
    assert column.height > 0
    assert (column["block_total"] == "..").all()
    # every share that with its n would give the total back is hidden (a 0 % of 0 does not)
    assert (column.filter(pl.col("percent") != "0.0")["percent"] == "..").all()
    assert (column["suppressed"] == "true").all()
    shown_totals = b6.filter(pl.col("block_total") != "..")["block_total"].cast(pl.Int64)
    assert not ((shown_totals > 0) & (shown_totals < 5)).any()


def test_a_misspelt_significance_method_stops_the_stage_with_one_line(run_dir, caplog):
    # a typo used to give the unadjusted test silently (issue 18)
    from pipeline.__main__ import main
    from tests.helpers import scratch_paths

    code = main(["income_tables", *scratch_paths(run_dir), "significance.method=adjusted-logit"])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "income_tables: config significance.method='adjusted-logit': expected one of "
        "['adjusted_logit', 'two_proportion_z']"
    ]
