"""`income_models` stage: adjusted regressions for the income outcomes (analysis-spec.md §7).

One model per outcome x income-before group x length class (and `Alla`), as the
report's tables are laid out: B4/B5 (`income.end_years`) and Table 3
(`table3.end_years`). Each is `pipeline.stats.logit.fit_logit` of the outcome on
`treated` plus the configured covariates, cluster-robust by person. Results go
to `outputs/models/income_logit.parquet` (tidy, design.md) and the fit notes
(n, dropped rows, warnings, reference levels) to `income_logit.json`.
"""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from pipeline.core import config, io
from pipeline.rules.income_cells import model_rows, model_specs
from pipeline.stats.logit import FAMILIES, fit_logit

log = logging.getLogger(__name__)


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
    config.check_choices({"regression.family": (str(cfg.regression.family), FAMILIES)})
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
