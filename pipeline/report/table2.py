"""Table 2 / B3 (analysis-spec.md §4.1): blocks, tidy counts, percents and layout.

Used by the `describe` stage (Table 2, B3) and by the `claims` stage (Table 2 by
region), so a cell shown in both is counted the same way; the publication gate hides
it the same way in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from pipeline.report.formatting import whole_percent
from pipeline.report.labels import (
    AGE_BLOCK,
    GROUP_LABEL,
    SEX_BLOCK,
    TOTAL,
    UNKNOWN_OWNERSHIP_LABEL,
)


def ownership_labels(codes: Any) -> list[str]:
    """B3's ownership columns: the labels of `codes.ownership`, then the unknown one."""
    return [*(str(v) for v in codes.ownership.values()), UNKNOWN_OWNERSHIP_LABEL]


def b3_columns(codes: Any) -> list[tuple[str, str]]:
    """Printed columns of Table B3 (group, ownership). Treated persons always have a GC001
    provider: no unknown-ownership column for them."""
    return [
        (g, o)
        for g in GROUP_LABEL.values()
        for o in [*ownership_labels(codes), TOTAL]
        if not (g == GROUP_LABEL[True] and o == UNKNOWN_OWNERSHIP_LABEL)
    ]


TABLE2_COLUMNS = [(g, TOTAL) for g in GROUP_LABEL.values()]


@dataclass(frozen=True)
class Block:
    """One block of Table 2/B3: its printed name, cohort column and categories in order."""

    name: str
    column: str
    categories: tuple[str, ...]
    in_table2: bool = True


def blocks(codes: Any) -> list[Block]:
    """The blocks of Table B3 in printed order (Table 2 is the subset with `in_table2`)."""
    diagnosis = tuple(str(g["label"]) for g in codes.diagnosis_groups)
    return [
        Block(SEX_BLOCK, "sex", tuple(str(v) for v in codes.sex.values())),
        Block(AGE_BLOCK, "age_band", tuple(str(b["label"]) for b in codes.age_bands)),
        Block("Födelseland", "birth_country_group", tuple(codes.birth_country_groups), False),
        Block("Civiltillstånd", "civil_status_group", tuple(codes.civil_status_groups), False),
        Block("Utbildningsnivå", "education_group", tuple(codes.education_groups)),
        Block("Huvuddiagnos (MiDAS)", "diagnosis_label", diagnosis),
        Block("Sysselsättningstyp", "insured_type_group", tuple(codes.insured_type_groups)),
    ]


def with_labels(person_rows: pl.DataFrame, codes: Any) -> pl.DataFrame:
    """Person rows with the printed group, ownership and diagnosis labels."""
    diagnosis = {str(g["key"]): str(g["label"]) for g in codes.diagnosis_groups}
    return person_rows.with_columns(
        pl.col("treated").replace_strict(GROUP_LABEL, return_dtype=pl.String).alias("group"),
        pl.col("ownership")
        .replace_strict(
            {str(k): str(v) for k, v in codes.ownership.items()},
            default=UNKNOWN_OWNERSHIP_LABEL,
            return_dtype=pl.String,
        )
        .alias("ownership_label"),
        pl.col("diagnosis_group")
        .replace_strict(diagnosis, default=None, return_dtype=pl.String)
        .alias("diagnosis_label"),
    )


def table_counts(
    labelled: pl.DataFrame,
    block_list: list[Block],
    column: str,
    levels: Sequence[str],
    *,
    name: str | None = None,
    column_total: str = TOTAL,
    groups: Sequence[str] = tuple(GROUP_LABEL.values()),
) -> pl.DataFrame:
    """Tidy counts: block, category (incl. `Totalt`), group, `name` (levels + total), n (int).

    The column dimension is `labelled[column]` with `levels` in order, then
    `column_total` (the row's sum over every value of `column`); `name` (default
    `column`) is its name in the output. The grid is complete: absent cells are 0.
    """
    frames = []
    columns = [*levels, column_total]
    for block in block_list:
        counted = (
            labelled.filter(pl.col(block.column).is_in(block.categories))
            .group_by("group", column, pl.col(block.column).alias("category"))
            .len("n")
        )
        by_row = counted.group_by("group", "category").agg(pl.col("n").sum())
        with_total = pl.concat(
            [
                counted,
                by_row.select("group", pl.lit(column_total).alias(column), "category", "n"),
            ]
        )
        by_column = with_total.group_by("group", column).agg(pl.col("n").sum())
        with_total = pl.concat(
            [
                with_total,
                by_column.select("group", column, pl.lit(TOTAL).alias("category"), "n"),
            ]
        )
        grid = pl.DataFrame(
            [(g, o, c) for g in groups for o in columns for c in [*block.categories, TOTAL]],
            schema=["group", column, "category"],
            orient="row",
        )
        full = grid.join(with_total, on=["group", column, "category"], how="left")
        frames.append(
            full.with_columns(
                pl.col("n").fill_null(0).cast(pl.Int64), pl.lit(block.name).alias("block")
            )
        )
    return pl.concat(frames).select(
        "block", "category", "group", pl.col(column).alias(name or column), "n"
    )


def table_b3_counts(
    labelled: pl.DataFrame, block_list: list[Block], ownerships: Sequence[str]
) -> pl.DataFrame:
    """Tidy counts: block, category (incl. `Totalt`), group, ownership (`ownerships`, the
    labels of `ownership_labels`, then `Totalt`), n (int)."""
    return table_counts(labelled, block_list, "ownership_label", list(ownerships), name="ownership")


def with_percent(counts: pl.DataFrame, column: str) -> pl.DataFrame:
    """`counts` (as from `table_counts`, column dimension `column`) whole, with `suppressed`
    false and `percent` (of the block total); the publication gate hides what it must."""
    is_total = pl.col("category") == TOTAL
    total = pl.col("n").filter(is_total).first().over("block", "group", column)
    return counts.with_columns(pl.lit(False).alias("suppressed")).with_columns(
        pl.when(total > 0).then(100 * pl.col("n") / total).alias("percent")
    )


def count_percent_text() -> pl.Expr:
    """A printed cell (String): ".." when suppressed, "n" for `Totalt` rows and withheld
    percents, else "n (percent)" with the percent as a whole number."""
    return (
        pl.when(pl.col("suppressed"))
        .then(pl.lit(".."))
        .when((pl.col("category") == TOTAL) | pl.col("percent").is_null())
        .then(pl.col("n").cast(pl.String))
        .otherwise(pl.format("{} ({})", pl.col("n"), whole_percent()))
    )


def printed_layout(tidy: pl.DataFrame, columns: list[tuple[str, str]]) -> pl.DataFrame:
    """Published layout: block, category, an "n (percent)" text column per (group, ownership)."""
    wide = tidy.with_columns(
        count_percent_text().alias("text"), pl.format("{} {}", "group", "ownership").alias("col")
    )
    names = [f"{g} {o}" for g, o in columns]
    order = tidy.select("block", "category").unique(maintain_order=True)
    pivot = wide.filter(pl.col("col").is_in(names)).pivot(
        on="col", index=["block", "category"], values="text"
    )
    return order.join(pivot, on=["block", "category"], how="left", maintain_order="left").select(
        "block", "category", *names
    )
