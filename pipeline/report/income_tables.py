"""The income tables' printed words and layout (analysis-spec.md §4.5-4.10).

Tables B4, B5, 3 and B6 keep these labels as data values in their tidy cells
(table, block, row, group, income), so changing a word here changes outputs.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.report.formatting import whole_percent
from pipeline.report.labels import AGE_BLOCK, GROUP_LABEL, LENGTH_CLASSES, SEX_BLOCK

GROUPS = tuple((GROUP_LABEL[t], t) for t in (True, False))  # (printed group, treated)
TABLE3 = "Tabell 3"
WINDOW_LABEL = "<{} mån"
ANY_INCOME = "Någon inkomst"  # B4/B5 block, and Figures 13-14's series
REGAINED = "Tidigare inkomstnivå"  # B4 block: the previous income level regained
HAD_INCOME, NO_INCOME = "Haft inkomst före", "Ingen inkomst före"  # Table 3's blocks
SERIES = {"any": ANY_INCOME, "none": "Ingen inkomst", "regained": "Återfår tidigare inkomst"}
B6_INCOME = ("Utan inkomst före", "Någon inkomst före")  # (no income before, income before)
B6_SEX = {"Kvinnor": "Kvinna", "Män": "Man"}


def flag_label(flag: str, yes: str, no: str) -> pl.Expr:
    """Bool column `flag` as text: `yes` where true, else `no`."""
    return pl.when(pl.col(flag)).then(pl.lit(yes)).otherwise(pl.lit(no))


def group_label() -> pl.Expr:
    """The printed group of column `treated` (Insats / Kontroll)."""
    return flag_label("treated", GROUP_LABEL[True], GROUP_LABEL[False])


B6_DIAGNOSIS_ORDER = ("musculoskeletal", "f43", "other_psych")  # as printed (L2078); others last


def _b6_position(key: str) -> int:
    """A diagnosis group's place in B6's printed order."""
    return B6_DIAGNOSIS_ORDER.index(key) if key in B6_DIAGNOSIS_ORDER else len(B6_DIAGNOSIS_ORDER)


def b6_blocks(codes: Any) -> list[tuple[str, pl.Expr, list[str]]]:
    """Table B6's blocks in printed order: (block, its category as a text expression on the
    outcomes' columns, the categories in printed order)."""
    labels = {str(g["key"]): str(g["label_b6"]) for g in codes.diagnosis_groups}
    as_b6 = {"default": None, "return_dtype": pl.String}
    return [
        (SEX_BLOCK, pl.col("sex").replace_strict(B6_SEX, **as_b6), list(B6_SEX.values())),
        (
            AGE_BLOCK,
            pl.format("{} år", pl.col("age_band")),
            [f"{b['label']} år" for b in codes.age_bands],
        ),
        (
            "Diagnos",
            pl.col("diagnosis_group").replace_strict(labels, **as_b6),
            [labels[k] for k in sorted(labels, key=_b6_position)],
        ),
        ("Utbildning", pl.col("education_group"), list(codes.education_groups)),
    ]


def table_layout(windows: tuple[int, ...]) -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    """(table, block, income group, [(row label, outcome)]) in printed order (§4.5-4.9)."""
    any_rows = [(WINDOW_LABEL.format(w), f"any_income_{w}") for w in windows]
    regained_rows = [(WINDOW_LABEL.format(w), f"regained_{w}") for w in windows]
    any_after = ("Någon inkomst efter", "durable_any")
    regained_after = ("Återfår tidigare inkomst efter", "durable_regained")
    return [
        ("B4", ANY_INCOME, "income_before", any_rows),
        ("B4", REGAINED, "income_before", regained_rows),
        ("B5", ANY_INCOME, "no_income_before", any_rows),
        (TABLE3, HAD_INCOME, "income_before", [any_after, regained_after]),
        (TABLE3, NO_INCOME, "no_income_before", [any_after]),
    ]


def printed_layout(cells: pl.DataFrame, table: str) -> pl.DataFrame:
    """Printed layout of one table, whole: block, row, then `count (pct)` per length class x
    group (the gate hides the printed cells whose counts it hides in the long table)."""
    text = (
        pl.when(pl.col("row") == "n")
        .then(pl.col("n").cast(pl.String))
        .when(pl.col("percent").fill_nan(None).is_null())  # no persons: no share to print
        .then(pl.col("count").cast(pl.String))
        .otherwise(
            pl.format(
                "{} ({}){}",
                pl.col("count"),
                whole_percent(),
                pl.col("stars"),
            )
        )
    )
    part = cells.filter(pl.col("table") == table).with_columns(
        text.alias("text"), pl.format("{} {}", "length_class", "group").alias("column")
    )
    order = part.select("block", "row").unique(maintain_order=True)
    wide = part.pivot(on="column", index=["block", "row"], values="text")
    columns = [f"{length} {g}" for length in LENGTH_CLASSES for g, _ in GROUPS]
    return order.join(wide, on=["block", "row"], how="left", maintain_order="left").select(
        "block", "row", *columns
    )
