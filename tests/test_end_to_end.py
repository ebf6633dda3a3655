"""The whole chain on a synthetic delivery: the planted truth comes out at the end.

`run_dir` (tests/conftest.py) runs every stage once per session through the CLI
entry point, into a temporary directory, on 20 000 synthetic persons.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from pipeline.core import config
from pipeline.core.contract import TABLES


def test_every_planted_bad_row_is_quarantined_with_its_reason(run_dir):
    counts = json.loads((run_dir / "staged" / "row_counts.json").read_text())["tables"]
    truth = json.loads((run_dir / "truth" / "bad_rows.json").read_text())
    for table in TABLES:
        assert counts[table]["by_reason"] == truth["planted"][table], table
        assert counts[table]["rows_in"] == truth["rows_delivered"][table]
        assert counts[table]["staged"] == truth["rows_clean"][table]
        quarantine = pl.read_parquet(run_dir / "quarantine" / f"{table}.parquet")
        assert quarantine.height == counts[table]["quarantined"]


def test_spells_and_exposure_recover_the_planted_spells(run_dir):
    truth = pl.read_parquet(run_dir / "truth" / "spells.parquet")
    spells = pl.read_parquet(run_dir / "outputs" / "spells.parquet")
    exposure = pl.read_parquet(run_dir / "outputs" / "exposure.parquet")
    assert spells.height == truth.height
    joined = spells.join(exposure, on="spell_id").join(truth, on=["lopnr", "start"])
    assert joined.height == truth.height
    assert (joined["end"] == joined["end_right"]).all()
    assert (joined["treated"] == joined["treated_right"]).all()
    treated = joined.filter("treated")
    assert (treated["day_first_gc001"] == treated["gc001_day"]).all()


def test_the_planted_return_to_income_effect_is_recovered(run_dir):
    """Among B4's persons (income before, ending 2020-2022), the adjusted AME of treatment
    on returning within 12 months covers the planted effect on the same persons."""
    truth = pl.read_parquet(run_dir / "truth" / "spells.parquet")
    outcomes = pl.read_parquet(run_dir / "outputs" / "outcomes.parquet")
    models = pl.read_parquet(run_dir / "outputs" / "models" / "income_logit.parquet")
    population = outcomes.filter(
        pl.col("in_income_tables") & pl.col("income_before").fill_null(False)
    )
    with_truth = population.join(truth, on=["lopnr", "start"], how="inner")
    assert with_truth.height == population.height
    # Planted: return within 12 months = returns and first paid month <= 12 after the end month.
    within = pl.col("return_month") <= 12
    effect = (
        with_truth.select(
            (
                (pl.col("returns_if_treated") & within).cast(int)
                - (pl.col("returns_if_control") & within).cast(int)
            ).mean()
        ).item()
        * 100
    )
    ame = models.filter(
        (pl.col("model") == "B4/B5|income_before|Alla|any_income_12")
        & (pl.col("term") == "AME_pp(treated)")
    ).row(0, named=True)
    assert ame["ci_low"] <= effect <= ame["ci_high"]
    assert effect > 0
    # Unadjusted shares match the generator's truth: the observed outcome is the planted
    # potential outcome of the arm the spell was in, up to months without work.
    observed = with_truth.select(pl.col("any_income_12").mean()).item()
    planted = with_truth.select(
        pl.when(pl.col("treated"))
        .then(pl.col("returns_if_treated"))
        .otherwise(pl.col("returns_if_control"))
        .and_(within)
        .mean()
    ).item()
    assert observed == pytest.approx(planted, abs=0.01)


def test_every_output_file_is_written_and_tables_hold_no_person_ids(run_dir):
    lopnr = set(
        pl.read_parquet(run_dir / "staged" / "bakgrund.parquet")["lopnr"].unique().to_list()
    )
    tables = sorted((run_dir / "outputs" / "tables").glob("*.csv"))
    assert len(tables) >= 10
    for path in tables:
        frame = pl.read_csv(path, infer_schema_length=0)
        for column in frame.columns:
            values = frame[column].drop_nulls()
            numbers = {int(v) for v in values.to_list() if v.isdigit()}
            assert not (numbers & lopnr), (path.name, column)
    pngs = sorted((run_dir / "outputs" / "figures").glob("*.png"))
    listed = {f.file for f in config.compose().report.figures}
    assert listed <= {p.name for p in pngs}
    assert all(np.fromfile(p, dtype=np.uint8)[:4].tolist() == [137, 80, 78, 71] for p in pngs)
