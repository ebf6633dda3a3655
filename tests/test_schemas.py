"""Every parquet file the pipeline writes matches its section in docs/schemas.md."""

from __future__ import annotations

import polars as pl
import pytest

from tests.helpers import documented_columns

DOCUMENTED = [
    "outputs/spells.parquet",
    "outputs/exposure.parquet",
    "outputs/income_monthly.parquet",
    "outputs/outcomes.parquet",
    "outputs/models/income_logit.parquet",
    "outputs/riskset.parquet",
    "outputs/models/nb_data.parquet",
    "outputs/models/nb.parquet",
    "outputs/models/survival.parquet",
]


@pytest.mark.parametrize("relative", DOCUMENTED)
def test_written_schema_equals_the_documented_one(relative, run_dir):
    path = run_dir / relative
    written = [(name, str(dtype)) for name, dtype in pl.read_parquet_schema(path).items()]
    assert documented_columns(relative) == written


def test_cohort_documents_every_column_beyond_spells_and_exposure(run_dir):
    written = pl.read_parquet_schema(run_dir / "outputs/cohort.parquet")
    inherited = {
        *pl.read_parquet_schema(run_dir / "outputs/spells.parquet"),
        *pl.read_parquet_schema(run_dir / "outputs/exposure.parquet"),
    }
    own = [(n, str(t)) for n, t in written.items() if n not in inherited]
    assert documented_columns("outputs/cohort.parquet") == own


def test_at_risk_spells_have_the_cohort_columns_before_the_unit_flags(run_dir):
    cohort = list(pl.read_parquet_schema(run_dir / "outputs/cohort.parquet").items())
    at_risk = list(pl.read_parquet_schema(run_dir / "outputs/cohort_at_risk.parquet").items())
    before_flags = cohort[: [n for n, _ in cohort].index("care_level_group") + 1]
    flags = [("population_any_length", pl.Boolean), ("long_enough", pl.Boolean)]
    assert at_risk == [*before_flags, *flags]
