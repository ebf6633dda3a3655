"""`riskset` stage: the matched sets of the sick-days analysis (analysis-spec.md §6.2).

The sampling itself is `pipeline.rules.riskset`; this stage reads the `riskset`
configuration and draws the sets of both control modes with the same k,
matching variables and seed, every spell's time at risk ending at the data end
(`data.end_date`; null = the largest `tom_datum` of staged sjukpenning, as the
spells stage censors), for two groups of cases:

- the cohort's treated spells (cohort.parquet): outputs/riskset_<mode>.parquet
  for each mode, and outputs/riskset.parquet, the sets of the configured
  `riskset.control_mode` (the file nb_model, survival and claims analyse). Their
  controls come from cohort_at_risk.parquet (`control_pool`): never-treated persons'
  spells, or every spell at risk (`not_yet_treated`), of any length
  (`riskset.control_length_rule: at_index`) or passing the 30-day rule (`whole_spell`);
- the spells at risk of a first GC001 (cohort_at_risk.parquet):
  outputs/riskset_at_risk_<mode>.parquet, the sets of claims' length-rank test
  (`claims.rank_control_mode` picks the mode).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace
from typing import Any

import polars as pl

from pipeline.core import config, io
from pipeline.core.errors import PipelineError
from pipeline.rules.riskset import MODES, RiskSetConfig, build_riskset

log = logging.getLogger(__name__)

LENGTH_RULES = ("at_index", "whole_spell")


def riskset_config(cfg: Any) -> RiskSetConfig:
    """The `riskset` configuration as typed settings, the choices checked."""
    r = cfg.riskset
    conf = RiskSetConfig(
        int(r.k),
        str(r.control_mode),
        tuple(str(m) for m in r.match_on),
        int(r.seed),
        bool(r.reuse_controls),
    )
    config.check_choices(
        {
            "riskset.control_mode": (conf.control_mode, MODES),
            "riskset.control_length_rule": (str(r.control_length_rule), LENGTH_RULES),
        }
    )
    if conf.k < 1:
        raise PipelineError(f"config riskset.k={conf.k}: expected at least 1")
    return conf


def log_sets(name: str, riskset: pl.DataFrame, k: int) -> None:
    """Log the sizes of the matched sets in `riskset` (the file `name`)."""
    sets = riskset.filter("case")
    log.info(
        "%s: %d matched sets (k = %d), %d control rows of %d distinct spells; %d sets with "
        "fewer than k eligible, %d with none",
        name,
        sets.height,
        k,
        riskset.height - sets.height,
        riskset.filter(~pl.col("case"))["spell_id"].n_unique(),
        (sets["n_eligible"] < k).sum(),
        (sets["n_eligible"] == 0).sum(),
    )


def data_end(cfg: Any) -> dt.date:
    """The last day of data: `data.end_date`, else the largest staged `tom_datum` (a date)."""
    end = cfg.data.end_date
    if end:
        return dt.date.fromisoformat(str(end))
    periods = config.resolve_path(cfg.paths.staged) / "sjukpenning.parquet"
    return pl.scan_parquet(periods).select(pl.col("tom_datum").max()).collect().item()


def control_pool(at_risk: pl.DataFrame, mode: str, rule: str) -> pl.DataFrame:
    """The spells (rows of `at_risk`) the cohort's controls are drawn from under
    `riskset.control_mode` and `riskset.control_length_rule`.

    `never_treated` (the report's rule) draws from the spells of persons never treated
    (the population but for the 30-day rule); `not_yet_treated` from every spell at risk,
    also the untreated spells of persons treated in another spell: "any spell without
    GC001 up to day t" (analysis-spec.md §6.2). Leaving those out selects on the future,
    since only a spell that ends has room for a later, treated one. `whole_spell` keeps
    only spells that pass the 30-day rule as a whole; `at_index` any length.
    """
    keep = pl.col("population_any_length") if mode == "never_treated" else pl.lit(True)
    if rule == "whole_spell":
        keep = keep & pl.col("long_enough")
    return at_risk.filter(keep)


def run(cfg: Any) -> None:
    """Read the cohort and the at-risk spells; write the sets of both control modes."""
    conf = riskset_config(cfg)
    end = data_end(cfg)
    outputs = config.resolve_path(cfg.paths.outputs)
    cohort = pl.read_parquet(outputs / "cohort.parquet")
    at_risk = pl.read_parquet(outputs / "cohort_at_risk.parquet")
    rule = str(cfg.riskset.control_length_rule)
    drawn: dict[str, pl.DataFrame] = {}
    for mode in MODES:
        mode_conf = replace(conf, control_mode=mode)
        pool = control_pool(at_risk, mode, rule)
        drawn[f"riskset_{mode}.parquet"] = build_riskset(cohort, mode_conf, pool, end)
        drawn[f"riskset_at_risk_{mode}.parquet"] = build_riskset(at_risk, mode_conf, None, end)
        log.info(
            "riskset %s: controls %s (%d candidate spells), at risk until %s",
            mode,
            rule,
            pool.height,
            end,
        )
    drawn["riskset.parquet"] = drawn[f"riskset_{conf.control_mode}.parquet"]
    for name, riskset in drawn.items():
        io.write_parquet(riskset, outputs / name)
        log_sets(name, riskset, conf.k)
