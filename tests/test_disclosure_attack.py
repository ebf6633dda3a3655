"""The independent attacker on the income tables and Table 2/B3 (issue 16): on the shared
run, on `tiny`, with a higher threshold and on the unprotected results
(tests/reference/attack/income.py says how it reads the tables).
"""

from __future__ import annotations

import polars as pl

from tests.reference.attack.income import (
    attack,
    attack_b3,
    b3_blocks,
)


def test_the_shared_run_resists_the_attacker(run_dir):
    outcomes = pl.read_parquet(run_dir / "outputs" / "outcomes.parquet")
    assert attack(outcomes, run_dir / "outputs" / "tables", 5) == []


def test_a_higher_threshold_hides_more_and_still_resists(run_dir, tables_at_10):
    def hidden(d):
        return (
            pl.read_csv(d / "income_tables_long.csv", infer_schema=False)["count"] == ".."
        ).sum()

    assert hidden(tables_at_10) > hidden(run_dir / "outputs" / "tables")
    outcomes = pl.read_parquet(run_dir / "outputs" / "outcomes.parquet")
    assert attack(outcomes, tables_at_10, 10) == []


def test_the_tiny_run_resists_the_attacker(tiny_run):
    outcomes = pl.read_parquet(tiny_run / "outputs" / "outcomes.parquet")
    assert attack(outcomes, tiny_run / "outputs" / "tables", 5) == []


def test_the_attacker_finds_the_small_counts_of_the_unprotected_results(run_dir):
    # the same tables before the gate (outputs/results/): shown small counts, complements
    # and window differences are found, so a pass above is not for want of looking
    outcomes = pl.read_parquet(run_dir / "outputs" / "outcomes.parquet")
    found = attack(outcomes, run_dir / "outputs" / "results", 5)
    assert any("is shown" in p for p in found)
    assert any("'rest') =" in p or "'gap') =" in p for p in found)


def test_table2_and_b3_resist_the_attacker(run_dir, tiny_run):
    for base in (run_dir, tiny_run):
        cohort = pl.read_parquet(base / "outputs" / "cohort.parquet")
        assert attack_b3(cohort, base / "outputs" / "tables", 5, b3_blocks()) == []
