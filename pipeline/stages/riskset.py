"""`riskset` stage: the matched sets of the sick-days analysis (analysis-spec.md §6.2).

The sampling itself is `pipeline.rules.riskset`; this stage reads the `riskset`
configuration and draws the sets of both control modes with the same k,
matching variables and seed, among two candidate frames:

- the cohort spells (cohort.parquet): outputs/riskset_<mode>.parquet for each
  mode, and outputs/riskset.parquet, the sets of the configured
  `riskset.control_mode` (the file nb_model, survival and claims analyse);
- the spells at risk of a first GC001 (cohort_at_risk.parquet):
  outputs/riskset_at_risk_<mode>.parquet, the sets of claims' length-rank test
  (`claims.rank_control_mode` picks the mode).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import polars as pl

from pipeline.core import config, io
from pipeline.core.errors import PipelineError
from pipeline.rules.riskset import MODES, RiskSetConfig, build_riskset

log = logging.getLogger(__name__)


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
    config.check_choices({"riskset.control_mode": (conf.control_mode, MODES)})
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


def run(cfg: Any) -> None:
    """Read the cohort and the at-risk spells; write the sets of both control modes."""
    conf = riskset_config(cfg)
    outputs = config.resolve_path(cfg.paths.outputs)
    candidates = {
        "riskset": pl.read_parquet(outputs / "cohort.parquet"),
        "riskset_at_risk": pl.read_parquet(outputs / "cohort_at_risk.parquet"),
    }
    drawn = {
        f"{prefix}_{mode}.parquet": build_riskset(frame, replace(conf, control_mode=mode))
        for prefix, frame in candidates.items()
        for mode in MODES
    }
    drawn["riskset.parquet"] = drawn[f"riskset_{conf.control_mode}.parquet"]
    for name, riskset in drawn.items():
        io.write_parquet(riskset, outputs / name)
        log_sets(name, riskset, conf.k)
