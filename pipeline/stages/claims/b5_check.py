"""Why are employees without income before? A prior spell (§4.12, report L1481).

The report explains Table B5's population (employed at the start, no income in
the reference months) by "in most cases a spell within three months before":
sickness benefit is not AGI income. Among B5's persons, this is the share with
another spell of their own ending in the `months` calendar months before the
start month, per length class and group, beside B5.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from pipeline.report.income_tables import ANY_INCOME, GROUPS
from pipeline.report.labels import ALL_LENGTHS, LENGTH_CLASSES
from pipeline.rules.income_cells import ModelSpec, model_rows
from pipeline.stats.disclosure import suppressed_cells
from pipeline.stats.proportions import wilson_ci


def with_prior_spell(b5: pl.DataFrame, spells: pl.DataFrame, months: int) -> pl.DataFrame:
    """B5 rows with `prior_spell`: another spell of the person ends in the `months` calendar
    months before the spell's start month."""
    start_month = pl.col("start").dt.month_start()
    window = b5.select(
        "spell_id",
        "lopnr",
        start_month.dt.offset_by(f"-{months}mo").alias("from"),
        (start_month - pl.duration(days=1)).alias("to"),
    )
    found = (
        window.join(spells.select("lopnr", pl.col("spell_id").alias("other"), "end"), on="lopnr")
        .filter((pl.col("other") != pl.col("spell_id")) & pl.col("end").is_between("from", "to"))
        .select("spell_id")
        .unique()
    )
    found_ids = found["spell_id"].implode()
    return b5.with_columns(pl.col("spell_id").is_in(found_ids).alias("prior_spell"))


def b5_n_suppression(income_cells: pl.DataFrame) -> dict[tuple[str, str], bool]:
    """B5's decision on its n cells, {(length class, group): hidden}, from the long income
    table (`income_tables_long.csv`): the check prints the same n's."""
    rows = income_cells.filter(
        (pl.col("table") == "B5") & (pl.col("row") == "n") & (pl.col("block") == ANY_INCOME)
    )
    return {
        (r["length_class"], r["group"]): bool(r["suppressed"]) for r in rows.iter_rows(named=True)
    }


def prior_spell_shares(
    outcomes: pl.DataFrame,
    spells: pl.DataFrame,
    months: int,
    min_count: int,
    b5_hidden: dict[tuple[str, str], bool] | None = None,
) -> pl.DataFrame:
    """Per length class and group of B5's population: n, count with a prior spell, percent and
    Wilson 95 % CI (percent); small cells and their complements (`<2 år + 2+ år = Alla`) hidden,
    and the n's hidden exactly where B5 hides them (`b5_hidden`)."""
    cells: list[dict[str, Any]] = []
    for length in LENGTH_CLASSES:
        b5 = model_rows(outcomes, ModelSpec("B4/B5", "no_income_before", length, "any_income_3"))
        flagged = with_prior_spell(b5, spells, months)
        for label, treated in GROUPS:
            part = flagged.filter(pl.col("treated") == treated)
            n, count = part.height, int(part["prior_spell"].sum())
            lo, hi = wilson_ci(count, n) if n else (math.nan, math.nan)
            cells.append(
                {
                    "length_class": length,
                    "group": label,
                    "months_before": months,
                    "n": n,
                    "count": count,
                    "percent": 100 * count / n if n else math.nan,
                    "ci_low": 100 * lo,
                    "ci_high": 100 * hi,
                }
            )
    table = pl.DataFrame(cells).with_columns((pl.col("n") - pl.col("count")).alias("without"))
    hidden = _suppress(table, min_count, b5_hidden or {})
    return (
        table.with_columns(
            pl.Series("suppressed", hidden["count"] | hidden["without"]),
            pl.Series("n_hidden", hidden["n"]),
        )
        .with_columns(
            *(
                pl.when(~pl.col("suppressed")).then(pl.col(c)).alias(c)
                for c in ("count", "percent", "ci_low", "ci_high")
            ),
            pl.when(~pl.col("n_hidden")).then(pl.col("n")).alias("n"),
        )
        .drop("without", "n_hidden")
        .with_columns(pl.col("percent", "ci_low", "ci_high").fill_nan(None))
    )


def _suppress(
    table: pl.DataFrame, min_count: int, b5_hidden: dict[tuple[str, str], bool]
) -> dict[str, pl.Series]:
    """Hidden flags of the `count`, `without` and `n` cells of each row: primary and secondary
    under n = count + without and `<2 år + 2+ år = Alla` within each group; n cells that B5
    also prints keep B5's decision."""
    kinds = ("count", "without", "n")
    rows = table.height
    values = [v for kind in kinds for v in table[kind].to_list()]
    decided = [b5_hidden.get((r["length_class"], r["group"])) for r in table.iter_rows(named=True)]
    forced = [False] * (2 * rows) + [d is True for d in decided]
    shown_elsewhere = [False] * (2 * rows) + [d is False for d in decided]

    def cell(kind: str, row: int) -> int:
        return kinds.index(kind) * rows + row

    constraints = [(cell("n", r), [cell("count", r), cell("without", r)]) for r in range(rows)]
    for label, _ in GROUPS:
        index = {
            row["length_class"]: i
            for i, row in enumerate(table.iter_rows(named=True))
            if row["group"] == label
        }
        parts = [index[c] for c in LENGTH_CLASSES if c != ALL_LENGTHS]
        for kind in kinds:
            constraints.append((cell(kind, index[ALL_LENGTHS]), [cell(kind, p) for p in parts]))
    hidden = suppressed_cells(values, constraints, min_count, forced, shown_elsewhere)
    return {k: pl.Series(hidden[i * rows : (i + 1) * rows]) for i, k in enumerate(kinds)}
