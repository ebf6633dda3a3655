"""`riskset` stage: the matched sets of the sick-days analysis (analysis-spec.md §6.2).

The sampling itself is `pipeline.rules.riskset`; this stage reads the cohort and
writes outputs/riskset.parquet.
"""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from pipeline.core import config, io
from pipeline.rules.riskset import RiskSetConfig, build_riskset

log = logging.getLogger(__name__)


def run(cfg: Any) -> None:
    """Read the cohort; write outputs/riskset.parquet."""
    conf = RiskSetConfig.from_config(cfg)
    outputs = config.resolve_path(cfg.paths.outputs)
    cohort = pl.read_parquet(outputs / "cohort.parquet")
    riskset = build_riskset(cohort, conf)
    io.write_parquet(riskset, outputs / "riskset.parquet")
    sets = riskset.filter("case")
    log.info(
        "%d matched sets (k = %d, %s), %d control rows of %d distinct spells; %d sets with "
        "fewer than k eligible, %d with none",
        sets.height,
        conf.k,
        conf.control_mode,
        riskset.height - sets.height,
        riskset.filter(~pl.col("case"))["spell_id"].n_unique(),
        (sets["n_eligible"] < conf.k).sum(),
        (sets["n_eligible"] == 0).sum(),
    )
