"""`income_models` stage: adjusted regressions for the income outcomes (analysis-spec.md §7).

One model per outcome x income-before group x length class (and `Alla`), as the
report's tables are laid out: B4/B5 (`income.end_years`) and Table 3
(`table3.end_years`). Each is `pipeline.regression.fit_logit` of the outcome on
`treated` plus the configured covariates, cluster-robust by person. Results go
to `outputs/models/income_logit.parquet` (tidy, design.md) and the fit notes
(n, dropped rows, warnings, reference levels) to `income_logit.json`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl

from pipeline import config, io
from pipeline.regression import fit_logit

log = logging.getLogger(__name__)

ALL_LENGTHS = "Alla"
LENGTH_CLASSES = ("<2 år", "2+ år", ALL_LENGTHS)


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
    """The analysis rows of one model: its table's population, income group and length class."""
    population = "in_income_tables" if spec.table == "B4/B5" else "in_table3"
    rows = outcomes.filter(pl.col(population) & pl.col(spec.income_group).fill_null(False))
    if spec.length_class != ALL_LENGTHS:
        rows = rows.filter(pl.col("length_class") == spec.length_class)
    return rows


def fit_income_models(
    outcomes: pl.DataFrame,
    windows: tuple[int, ...],
    covariates: list[str],
    family: str,
    cluster: str | None,
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Tidy estimates of every income model (with table/cell columns) and their fit notes."""
    frames, notes = [], []
    for spec in model_specs(windows):
        rows = model_rows(outcomes, spec)
        result = fit_logit(
            rows, spec.outcome, "treated", covariates, cluster=cluster, model=family, name=spec.name
        )
        frames.append(
            result.summary.with_columns(
                pl.lit(spec.table).alias("table"),
                pl.lit(spec.income_group).alias("income_group"),
                pl.lit(spec.length_class).alias("length_class"),
                pl.lit(spec.outcome).alias("outcome"),
            )
        )
        notes.append(result.metadata())
    return pl.concat(frames, how="diagonal_relaxed"), notes


def run(cfg: Any) -> None:
    """Read outcomes; write outputs/models/income_logit.parquet and .json."""
    outputs = config.resolve_path(cfg.paths.outputs)
    outcomes = pl.read_parquet(outputs / "outcomes.parquet")
    covariates = [*cfg.regression.covariates, *cfg.regression.extra]
    cluster = cfg.regression.cluster or None
    windows = tuple(int(w) for w in cfg.income.windows)
    estimates, notes = fit_income_models(
        outcomes, windows, covariates, str(cfg.regression.family), cluster
    )
    io.write_parquet(estimates, outputs / "models" / "income_logit.parquet")
    io.write_json(outputs / "models" / "income_logit.json", {"models": notes})
    n_warned = sum(bool(n["warnings"]) for n in notes)
    log.info(
        "%d income models (%s, covariates %s); %d with warnings",
        len(notes),
        cfg.regression.family,
        covariates,
        n_warned,
    )
