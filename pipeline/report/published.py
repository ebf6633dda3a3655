"""The report's published numbers (analysis-spec.md §5) beside ours.

`conf/report/published/values.csv` holds one row per printed value: where it is printed
(`table`, `block`, `row`, `column`, `unit`), as printed (`printed`) and as a number (`value`),
the number ours is compared with (`reference`: `value`, or the corrected value §10 gives for
a misprint), how (`relation` eq | lt | about, `tolerance`), whether §10 lists the cell as a
misprint (`misprint`, with the §10 items that name the cell in `spec_item`; an item can also
name a cell that is no misprint, e.g. item 30 for a number we cannot compute) and where our
number is (`file` under outputs/tables, a `where` filter `key=value;key=value` on its text
columns, `column_ours`); `file` is empty where we compute no such number.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

HIDDEN = ".."  # a suppressed cell in a published table
TEXT = ("table", "block", "row", "column", "unit", "printed", "spec_item", "source")
TEXT += ("relation", "file", "where", "column_ours")
NUMBERS = ("value", "reference", "tolerance")
KEY = ("table", "block", "row", "column", "unit")
STATUSES = ("within_rounding", "within_tolerance", "differs", "hidden", "not_computed")
EPSILON = 1e-9  # float noise in |ours − reference| at a rounding boundary


def read_values(path: Path) -> pl.DataFrame:
    """The published values, one row per printed value: text columns ("" when empty),
    value/reference/tolerance Float64 in the row's `unit`, decimals Int64, misprint bool."""
    raw = pl.read_csv(path, infer_schema_length=0)
    return raw.with_columns(
        *(pl.col(c).fill_null("") for c in TEXT),
        *(pl.col(c).cast(pl.Float64) for c in NUMBERS),
        pl.col("decimals").cast(pl.Int64),
        (pl.col("misprint") == "true").alias("misprint"),
    )


def parse_where(where: str) -> dict[str, str]:
    """The filter `key=value;key=value` as {column: text value}; {} for ""."""
    return dict(pair.split("=", 1) for pair in where.split(";") if pair)


def our_cell(tables: dict[str, pl.DataFrame], file: str, where: str, column: str) -> str | None:
    """Our cell as text ("..": suppressed); None when there is no such file, row or value.

    Raises ValueError when the filter matches more than one row (the mapping is ambiguous).
    """
    if not file or file not in tables:
        return None
    conditions = [pl.col(k) == v for k, v in parse_where(where).items()]
    rows = tables[file].filter(pl.all_horizontal(conditions)) if conditions else tables[file]
    if rows.height > 1:
        raise ValueError(f"{file}: '{where}' matches {rows.height} rows, not one")
    value = rows[column][0] if rows.height else None
    return value or None


def comparison(values: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per published value (`read_values`) with ours (Float64, in the value's unit;
    null when not computed or hidden), difference = ours − reference and a status.

    `tables` maps a file name to that table read with every column as text. Status:
    within_rounding (|difference| ≤ half a unit of the printed decimals; for relation `lt`,
    ours < reference + half a unit), within_tolerance (|difference| ≤ tolerance), differs,
    hidden (our cell is suppressed) or not_computed (no file, row or value).
    """
    cells = [
        our_cell(tables, r["file"], r["where"], r["column_ours"])
        for r in values.select("file", "where", "column_ours").iter_rows(named=True)
    ]
    cell = pl.Series("cell", cells, dtype=pl.String)
    half = 0.5 * pl.lit(10.0).pow(-pl.col("decimals")) + EPSILON
    distance = pl.col("difference").abs()
    status = (
        pl.when(pl.col("cell") == HIDDEN)
        .then(pl.lit("hidden"))
        .when(pl.col("ours").is_null())
        .then(pl.lit("not_computed"))
        .when(pl.col("relation") == "lt")
        .then(
            pl.when(pl.col("ours") < pl.col("reference") + half)
            .then(pl.lit("within_rounding"))
            .otherwise(pl.lit("differs"))
        )
        .when(distance <= half)
        .then(pl.lit("within_rounding"))
        .when(distance <= pl.col("tolerance") + EPSILON)
        .then(pl.lit("within_tolerance"))
        .otherwise(pl.lit("differs"))
    )
    return (
        values.with_columns(cell)
        .with_columns(
            pl.when(pl.col("cell") != HIDDEN)
            .then(pl.col("cell").cast(pl.Float64, strict=False))
            .alias("ours")
        )
        .with_columns(difference=pl.col("ours") - pl.col("reference"))
        .with_columns(status=status)
        .select(
            *KEY,
            "printed",
            pl.col("value").alias("published"),
            "reference",
            "ours",
            "difference",
            "status",
            "misprint",
            "spec_item",
            "source",
        )
    )


TOTAL_ROW = "Totalt"


def printed_cells(values: pl.DataFrame, table: str) -> dict[tuple[str, str, str], str]:
    """The publication's printed cell text by (block, row, column) for one `table`: "n (pct)"
    from a count and its percent, "mean (median)" for the age row; a "Totalt …" row under
    the key "Totalt", a block's n under "n"."""
    rows = values.filter(pl.col("table") == table)
    parts: dict[tuple[str, str, str], dict[str, str]] = {}
    for r in rows.iter_rows(named=True):
        row = TOTAL_ROW if r["row"].startswith(f"{TOTAL_ROW} ") else r["row"]
        row = row.removesuffix(" (civilst.)")
        parts.setdefault((r["block"], row, r["column"]), {})[r["unit"]] = r["printed"]
    out = {}
    for key, units in parts.items():
        first = units.get("count", units.get("years", ""))
        second = units.get("percent", units.get("median"))
        out[key] = f"{first} ({second})" if first and second else first or second or ""
    return out
