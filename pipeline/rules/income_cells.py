"""The cells of the income tables (B4/B5, Table 3): which rows each model and cell counts.

Shared by `income_models` (one adjusted model per cell), `income_tables` (the
printed shares) and `claims` (the B5 prior-spell check), so the three agree on
every population.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl

from pipeline.report.labels import ALL_LENGTHS, LENGTH_CLASSES


@dataclass(frozen=True)
class ModelSpec:
    """One adjusted model: which table, population, outcome and cell."""

    table: str  # "B4/B5" or "Table 3"
    income_group: str  # "income_before" | "no_income_before"
    length_class: str  # "<2 år" | "2+ år" | "Alla"
    outcome: str

    @property
    def name(self) -> str:
        """The model's name in the `model` column."""
        return f"{self.table}|{self.income_group}|{self.length_class}|{self.outcome}"


def model_specs(windows: tuple[int, ...]) -> Iterator[ModelSpec]:
    """Every model the income tables need, in table order."""
    for length in LENGTH_CLASSES:
        for w in windows:
            yield ModelSpec("B4/B5", "income_before", length, f"any_income_{w}")
            yield ModelSpec("B4/B5", "income_before", length, f"regained_{w}")
            yield ModelSpec("B4/B5", "no_income_before", length, f"any_income_{w}")
        yield ModelSpec("Table 3", "income_before", length, "durable_any")
        yield ModelSpec("Table 3", "income_before", length, "durable_regained")
        yield ModelSpec("Table 3", "no_income_before", length, "durable_any")


def model_rows(outcomes: pl.DataFrame, spec: ModelSpec) -> pl.DataFrame:
    """The rows of `outcomes` (one per spell) in one model's table population, income group
    and length class."""
    population = "in_income_tables" if spec.table == "B4/B5" else "in_table3"
    rows = outcomes.filter(pl.col(population) & pl.col(spec.income_group).fill_null(False))
    if spec.length_class != ALL_LENGTHS:
        rows = rows.filter(pl.col("length_class") == spec.length_class)
    return rows
