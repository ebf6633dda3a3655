"""Income tables: counts against a direct count, stars from the adjusted model, suppression."""

from __future__ import annotations

import polars as pl

from pipeline.income_tables import add_significance, b4_b5_table3, suppress_income_cells
from pipeline.regression import stars
from tests.test_disclosure import leaking_cells


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


def test_no_suppressed_count_can_be_recomputed_from_the_length_classes(run_dir):
    models = pl.read_parquet(run_dir / "outputs" / "models" / "income_logit.parquet")
    cells = add_significance(b4_b5_table3(_outcomes(run_dir), (3, 6, 12)), models, "adjusted_logit")
    hidden = suppress_income_cells(cells, min_count=30)  # a high threshold to force suppression
    assert hidden["suppressed"].sum() > 0
    assert hidden.filter("suppressed")["percent"].null_count() == hidden["suppressed"].sum()
    counts = cells["count"].to_list()
    indexed = cells.with_row_index("cell")
    constraints = []
    for _, part in indexed.group_by(["table", "block", "row", "group"]):
        by = {r["length_class"]: r["cell"] for r in part.iter_rows(named=True)}
        constraints.append((by["Alla"], [by["<2 år"], by["2+ år"]]))
    assert leaking_cells(counts, constraints, hidden["suppressed"].to_list()) == []
