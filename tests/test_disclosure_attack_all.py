"""The independent attacker on all tables of a run together (issue 16).

The families of tests/reference/attack/ that count cohort spells — the income tables,
Table 2 / B3 and Table 2 by region block by block, the FK
registrations and their timing, spell lengths by FK registration, Figures 8-9 with the
GC001 timing tables, and the attrition flow — read as one linear program, linked through
the cohort's cells (tests/reference/attack/lp.py says why the link is exact). A number one table
hides and another gives back through the cohort (a total shown in one family, a step of
the flow, a group's person rows) is found here even when every family alone resists.
The life table (spells before the exposure filters), the register counts (GC001
contacts, not spells) and the prior-days shares count other populations and share no
count with these; their attackers run alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from tests.reference.attack.claims import (
    attrition_family,
    fk_registrations_family,
    fk_spell_length_family,
    gc001_timing_family,
)
from tests.reference.attack.income import b3_blocks, b3_families, income_family
from tests.reference.attack.lp import Family, pinned
from tests.reference.attack.regions import region_families


def families(base: Path, tables: Path, threshold: int) -> list[Family]:
    """Every linked family of the run under `base`, as published in `tables`."""
    outputs, staged = base / "outputs", base / "staged"
    cohort = pl.read_parquet(outputs / "cohort.parquet")
    return [
        income_family(pl.read_parquet(outputs / "outcomes.parquet"), tables, threshold),
        *b3_families(cohort, tables, threshold, b3_blocks()),
        *region_families(cohort, tables, threshold, b3_blocks()),
        fk_registrations_family(outputs, staged, tables, threshold),
        fk_spell_length_family(outputs, staged, tables, threshold),
        gc001_timing_family(outputs, tables, threshold),
        # the flow before the gate is outputs/attrition.csv
        attrition_family(
            tables if (tables / "attrition.csv").exists() else outputs, outputs, threshold
        ),
    ]


def attack_all(base: Path, tables: Path, threshold: int) -> list[str]:
    """Every small count shown by any family, and every target the families together pin."""
    together = families(base, tables, threshold)
    return [p for f in together for p in f.problems] + pinned(together)


def test_all_tables_together_resist_the_attacker(run_dir, tiny_run):
    for base in (run_dir, tiny_run):
        assert attack_all(base, base / "outputs" / "tables", 5) == []


def test_a_higher_threshold_resists_together_and_the_unprotected_results_do_not(
    run_dir, tables_at_10
):
    assert attack_all(run_dir, tables_at_10, 10) == []
    assert attack_all(run_dir, run_dir / "outputs" / "results", 5)


def test_only_the_tables_together_pin_the_persons_a_block_total_leaves_out(tiny_run, tmp_path):
    # B3's education and diagnosis totals count the persons with a value; the age block
    # counts everyone. Show again one block total the gate hid for a few persons without a
    # value: no family alone pins them (the blocks are separate families), together they do
    outputs = tiny_run / "outputs"
    full = pl.read_csv(outputs / "results" / "table_b3_long.csv", infer_schema=False)
    totals = {
        (r["block"], r["group"]): int(r["n"])
        for r in full.filter(
            (pl.col("category") == "Totalt") & (pl.col("ownership") == "Totalt")
        ).iter_rows(named=True)
    }
    few = [(b, g) for (b, g), n in totals.items() if 0 < totals[("Ålder", g)] - n < 5]
    assert few, "the tiny delivery has a block with 1-4 persons without a value"
    block, group = few[0]
    tables = tmp_path / "tables"
    shutil.copytree(outputs / "tables", tables)
    cell = (
        (pl.col("block") == block)
        & (pl.col("category") == "Totalt")
        & (pl.col("group") == group)
        & (pl.col("ownership") == "Totalt")
    )
    total = full.filter(cell)["n"].item()
    published = pl.read_csv(tables / "table_b3_long.csv", infer_schema=False)
    assert published.filter(cell)["n"].item() == "..", "the gate hides the total"
    published.with_columns(
        pl.when(cell).then(pl.lit(total)).otherwise(pl.col("n")).alias("n")
    ).write_csv(tables / "table_b3_long.csv")
    target = f"B3 {block} ('missing', '{group}', 'Totalt')"
    each = families(tiny_run, tables, 5)
    assert not any(p.startswith(target) for f in each for p in f.findings())
    assert any(p.startswith(target) for p in pinned(each))
