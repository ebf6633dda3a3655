"""`spells` stage: chain staged benefit periods into sick-leave spells (analysis-spec.md §2).

A period joins the person's current spell when it starts at most `max_gap_days`
days after the latest end so far (overlaps always join). A calendar day covered
by several periods counts once, at its highest extent, so duplicated, nested
and overlapping periods never count a day twice.

Everything ends at the extract date (`data.end_date`; issue 17): a period running past
it is cut there, a period starting after it is set aside (counted in
`outputs/spells_cut.json` with its reason), so spells, gross and net days, length
classes and every later time end there too; a spell reaching it is censored.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import polars as pl

from pipeline.core import config, io
from pipeline.rules import coverage

log = logging.getLogger(__name__)

SPELL_COLUMNS = [
    "spell_id", "lopnr", "start", "end", "gross_days", "net_days", "n_periods",
    "diagnos", "diagnosis_group", "forsakradtyp", "censored",
]  # fmt: skip


@dataclass(frozen=True)
class SpellConfig:
    """The `spells` slice of the configuration (conf/analysis/report.yaml)."""

    max_gap_days: int
    employer_period_offset_days: int
    end_date: dt.date | None  # data.end_date; None = the largest tom_datum
    employed: str  # codes.employed: the insured type with an employer period

    @classmethod
    def from_config(cls, cfg: Any) -> SpellConfig:
        """Build from the composed configuration."""
        end = cfg.data.end_date
        return cls(
            max_gap_days=int(cfg.spells.max_gap_days),
            employer_period_offset_days=int(cfg.spells.employer_period_offset_days),
            end_date=dt.date.fromisoformat(str(end)) if end else None,
            employed=str(cfg.codes.employed),
        )


def chain_periods(periods: pl.LazyFrame, max_gap_days: int) -> pl.LazyFrame:
    """Periods with `spell_seq` (int, 0-based per person), in (lopnr, from, tom) order.

    A period starts a new spell when `from_datum - (latest tom_datum so far) - 1 >
    max_gap_days`.

    >>> p = pl.LazyFrame({"lopnr": [1, 1, 1], "from_datum": [1, 8, 20], "tom_datum": [2, 10, 21]})
    >>> p = p.with_columns(pl.col("from_datum", "tom_datum").cast(pl.Date))
    >>> chain_periods(p, 5).collect()["spell_seq"].to_list()  # gap 5 joins, gap 9 does not
    [0, 0, 1]
    """
    latest_end = pl.col("tom_datum").cum_max().shift(1).over("lopnr")
    gap = (pl.col("from_datum") - latest_end).dt.total_days() - 1
    new_spell = latest_end.is_null() | (gap > max_gap_days)
    return (
        periods.sort("lopnr", "from_datum", "tom_datum")
        .with_columns(new_spell.alias("_new"))
        .with_columns(
            (pl.col("_new").cum_sum().over("lopnr") - 1).cast(pl.Int32).alias("spell_seq")
        )
        .drop("_new")
    )


def net_days(chained: pl.LazyFrame) -> pl.LazyFrame:
    """Per spell: net days (float, days), each covered day weighted by its highest extent / 100
    (`rules.coverage.net_days`: four interval unions in one pass, no day-by-day expansion)."""
    keys = ["lopnr", "spell_seq"]
    return coverage.net_days(chained, keys).select(*keys, "net_days")


def diagnosis_group(icd: pl.Expr, groups: list[dict[str, Any]], missing: str) -> pl.Expr:
    """Diagnosis group key of a normalised ICD-10 code (no dot, upper case); `missing` if none.

    >>> groups = [{"key": "f43", "prefixes": ["F43"]}, {"key": "psych", "ranges": [["F00", "F99"]]}]
    >>> s = pl.Series(["F438", "F32", "M54", None])
    >>> pl.select(diagnosis_group(pl.lit(s), groups, "saknas")).to_series().to_list()
    ['f43', 'psych', 'saknas', 'saknas']
    """
    head = icd.str.slice(0, 3)
    valid = icd.str.contains(r"^[A-Z][0-9]{2}")
    expr = pl.lit(missing)
    for group in reversed(groups):  # first matching rule wins
        match = pl.lit(False)
        for prefix in group.get("prefixes", []):
            match = match | icd.str.starts_with(prefix)
        for lo, hi in group.get("ranges", []):
            match = match | ((head >= lo) & (head <= hi))
        expr = pl.when(valid & match).then(pl.lit(group["key"])).otherwise(expr)
    return pl.when(icd.is_null()).then(pl.lit(missing)).otherwise(expr)


def cut_at_end(periods: pl.LazyFrame, end_date: dt.date) -> pl.LazyFrame:
    """The periods as observed up to `end_date`: those starting after it left out, the
    others' `tom_datum` cut to it; grain: one period.

    >>> p = pl.LazyFrame({"from_datum": [1, 5, 9], "tom_datum": [3, 12, 10]})
    >>> p = p.with_columns(pl.col("from_datum", "tom_datum").cast(pl.Date))
    >>> end = dt.date(1970, 1, 9)  # day 8 since the epoch
    >>> cut_at_end(p, end).collect()["tom_datum"].dt.day().to_list()
    [4, 9]
    """
    end = pl.lit(end_date)
    return periods.filter(pl.col("from_datum") <= end).with_columns(
        pl.min_horizontal("tom_datum", end).alias("tom_datum")
    )


def cut_counts(periods: pl.LazyFrame, end_date: dt.date) -> dict[str, Any]:
    """What `cut_at_end` does to `periods`: periods in, set aside (starting after the
    extract date), cut (running past it) and the calendar days removed (days)."""
    end = pl.lit(end_date)
    after = pl.col("from_datum") > end
    running = ~after & (pl.col("tom_datum") > end)
    days_after = (pl.col("tom_datum") - pl.max_horizontal("from_datum", end)).dt.total_days()
    row = periods.select(
        pl.len().alias("periods_in"),
        after.sum().alias("set_aside_starting_after_end_date"),
        running.sum().alias("cut_at_end_date"),
        pl.when(after)
        .then(days_after + 1)
        .when(running)
        .then(days_after)
        .otherwise(0)
        .sum()
        .alias("calendar_days_removed"),
    ).collect()
    return {
        "end_date": end_date.isoformat(),
        **{k: int(v) for k, v in row.row(0, named=True).items()},
    }


def build_spells(
    periods: pl.LazyFrame,
    max_gap_days: int,
    end_date: dt.date,
    groups: list[dict[str, Any]],
    missing_group: str,
    employer_period_offset_days: int = 0,
    employed: str | None = None,
) -> pl.LazyFrame:
    """One row per spell (SPELL_COLUMNS) by lopnr and start; day counts int, `net_days` float.

    `diagnos`/`forsakradtyp` are those of the earliest period (ties: highest extent,
    then the smallest `diagnos`, then the smallest `forsakradtyp`, nulls last, so the
    choice never depends on row order). Periods are first cut at `end_date` (`cut_at_end`);
    `censored` is true when the spell reaches it. With `employer_period_offset_days`,
    spells of insured type `employed` (codes.employed) start that many days earlier.
    """
    chained = chain_periods(cut_at_end(periods, end_date), max_gap_days)
    keys = ["lopnr", "spell_seq"]
    order = [*keys, "from_datum", "omfattning", "diagnos", "forsakradtyp"]
    spells = (
        chained.sort(order, descending=[False, False, False, True, False, False], nulls_last=True)
        .group_by(keys, maintain_order=True)
        .agg(
            pl.col("from_datum").min().alias("start"),
            pl.col("tom_datum").max().alias("end"),
            pl.len().cast(pl.Int32).alias("n_periods"),
            pl.col("diagnos").first(),
            pl.col("forsakradtyp").first(),
            pl.col("omfattning").first().alias("_first_extent"),
        )
        .join(net_days(chained), on=keys, how="left")
    )
    if employer_period_offset_days:
        if employed is None:
            raise ValueError("employer_period_offset_days needs the employed insured type")
        is_employed = pl.col("forsakradtyp") == employed
        offset = pl.duration(days=employer_period_offset_days)
        spells = spells.with_columns(
            pl.when(is_employed).then(pl.col("start") - offset).otherwise(pl.col("start")),
            pl.when(is_employed)
            .then(pl.col("net_days") + employer_period_offset_days * pl.col("_first_extent") / 100)
            .otherwise(pl.col("net_days")),
        )
    return (
        spells.sort("lopnr", "start")
        .with_row_index("spell_id")
        .with_columns(
            pl.col("spell_id").cast(pl.Int64),
            ((pl.col("end") - pl.col("start")).dt.total_days() + 1)
            .cast(pl.Int32)
            .alias("gross_days"),
            diagnosis_group(pl.col("diagnos"), groups, missing_group).alias("diagnosis_group"),
            (pl.col("end") >= pl.lit(end_date)).alias("censored"),
        )
        .select(SPELL_COLUMNS)
    )


def run(cfg: Any) -> None:
    """Read staged `sjukpenning`, write outputs/spells.parquet."""
    spell_cfg = SpellConfig.from_config(cfg)
    staged = config.resolve_path(cfg.paths.staged)
    periods = pl.scan_parquet(staged / "sjukpenning.parquet")
    end_date = spell_cfg.end_date or periods.select(pl.col("tom_datum").max()).collect().item()
    groups = [dict(g) for g in cfg.codes.diagnosis_groups]
    spells = build_spells(
        periods,
        spell_cfg.max_gap_days,
        end_date,
        groups,
        cfg.codes.diagnosis_missing,
        spell_cfg.employer_period_offset_days,
        spell_cfg.employed,
    ).collect()
    outputs = config.resolve_path(cfg.paths.outputs)
    io.write_parquet(spells, outputs / "spells.parquet")
    cut = cut_counts(periods, end_date)
    io.write_json(outputs / "spells_cut.json", cut)
    log.info(
        "extract date %s: %d of %d periods set aside (start after it), %d cut at it",
        end_date,
        cut["set_aside_starting_after_end_date"],
        cut["periods_in"],
        cut["cut_at_end_date"],
    )
    log.info(
        "%d periods -> %d spells of %d persons (gap <= %d days, end %s, %d censored)",
        periods.select(pl.len()).collect().item(),
        spells.height,
        spells["lopnr"].n_unique(),
        spell_cfg.max_gap_days,
        end_date,
        spells["censored"].sum(),
    )
