"""`exposure` stage: GC001 (and DV077 / AW026) inside each spell (analysis-spec.md §3.1).

The heavy step is a DuckDB range join by person and date (`sql/exposure_spells.sql`);
`sql/exposure_outside.sql` counts intervention contacts that fall outside every
spell, a registration-quality diagnostic.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core import config, io, sql

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExposureConfig:
    """The `exposure` slice of the configuration (conf/analysis/report.yaml)."""

    codes: tuple[str, ...]
    window_start: dt.date
    window_end: dt.date
    pre_start_grace_days: int
    day_origin: int
    related: tuple[str, str]  # codes.kva.related: DV077, AW026
    care_levels: tuple[str, ...]  # codes.care_level_groups, in tie-break order

    @classmethod
    def from_config(cls, cfg: Any) -> ExposureConfig:
        """Build from the composed configuration."""
        e = cfg.exposure
        return cls(
            codes=tuple(str(c).strip().upper() for c in e.codes),
            window_start=dt.date.fromisoformat(str(e.window_start)),
            window_end=dt.date.fromisoformat(str(e.window_end)),
            pre_start_grace_days=int(e.pre_start_grace_days),
            day_origin=int(cfg.spells.day_origin),
            related=tuple(str(c).strip().upper() for c in cfg.codes.kva.related),  # type: ignore[arg-type]
            care_levels=tuple(str(k) for k in cfg.codes.care_level_groups),
        )

    def params(self) -> dict[str, Any]:
        """The $params of the exposure SQL."""
        return {
            "codes": list(self.codes),
            "window_start": self.window_start,
            "window_end": self.window_end,
            "grace_days": self.pre_start_grace_days,
        }


def exposure_of_spells(
    spells: pl.DataFrame | Path, contacts: pl.DataFrame | Path, conf: ExposureConfig
) -> pl.DataFrame:
    """One row per spell: intervention timing, count and provider; DV077/AW026 flags."""
    dv077, aw026 = conf.related
    params = conf.params() | {
        "day_origin": conf.day_origin,
        "dv077": dv077,
        "aw026": aw026,
        "care_levels": list(conf.care_levels),
    }
    return sql.query("exposure_spells", params, spells=spells, contacts=contacts)


def intervention_locations(
    spells: pl.DataFrame | Path, contacts: pl.DataFrame | Path, conf: ExposureConfig
) -> pl.DataFrame:
    """Per year and care level: intervention contacts inside / outside every spell (counts)."""
    return sql.query("exposure_outside", conf.params(), spells=spells, contacts=contacts)


def run(cfg: Any) -> None:
    """Read spells and staged contacts; write outputs/exposure.parquet and the diagnostic CSV."""
    conf = ExposureConfig.from_config(cfg)
    outputs = config.resolve_path(cfg.paths.outputs)
    spells = outputs / "spells.parquet"
    contacts = config.resolve_path(cfg.paths.staged) / "vardkontakter.parquet"
    exposure = exposure_of_spells(spells, contacts, conf)
    io.write_parquet(exposure, outputs / "exposure.parquet")
    located = intervention_locations(spells, contacts, conf)
    io.write_csv(located, outputs / "exposure_outside_spells.csv")
    log.info(
        "%d spells, %d treated (codes %s); intervention contacts %d inside, %d outside spells",
        exposure.height,
        exposure["treated"].sum(),
        ",".join(conf.codes),
        located["n_inside_spell"].sum(),
        located["n_outside_spell"].sum(),
    )
