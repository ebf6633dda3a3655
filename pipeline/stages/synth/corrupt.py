"""Turn clean synthetic tables into a delivery: dates as text, planted bad rows, code variants.

Every planted bad row is a copy of a clean row with exactly one fault, so its
quarantine reason is known (data-contract.md, "Quarantine reasons"); exact
duplicates are later copies of clean rows. Code variants that normalise to a
valid value (`gc001 `, `f438`, region `3`) are applied in place and must be staged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.core.contract import TABLES, Kind, Reason

BAD_DATES = ("2019-02-30", "2021/03/04", "20190231", "2020-13-01", "", None, "31.12.2020")
ISO_SHARE = 0.7  # dates written YYYY-MM-DD; the rest YYYYMMDD
DUPLICATED_BAD_ROWS = 1  # per table: one bad row delivered twice (keeps its own reason)


@dataclass(frozen=True)
class Fault:
    """One kind of planted fault: the reason it must get, which columns, which bad values."""

    reason: Reason
    columns: tuple[str, ...]  # one is picked per row, in turn; () = swap the dates
    values: tuple[object, ...]


FAULTS: dict[str, tuple[Fault, ...]] = {
    "sjukpenning": (
        Fault(Reason.NULL_KEY, ("lopnr",), (None,)),
        Fault(Reason.UNPARSEABLE_DATE, ("from_datum", "tom_datum"), BAD_DATES),
        Fault(Reason.END_BEFORE_START, (), ()),
        Fault(Reason.INVALID_EXTENT, ("omfattning",), (30, 0, 110, 33, None)),
        Fault(Reason.INVALID_CODE, ("forsakradtyp",), ("Anstalld", "okand", None, "arbetslös")),
    ),
    "vardkontakter": (
        Fault(Reason.NULL_KEY, ("lopnr",), (None,)),
        Fault(Reason.UNPARSEABLE_DATE, ("datum",), BAD_DATES),
        Fault(Reason.UNKNOWN_REGION, ("region",), ("99", "26", "00", None, "1a")),
        Fault(
            Reason.INVALID_CODE, ("vardniva", "regi"), ("primärvård", "Privat", None, "kommunal")
        ),
    ),
    "agi": (
        Fault(Reason.NULL_KEY, ("lopnr",), (None,)),
        Fault(Reason.INVALID_PERIOD, ("period",), (202113, 201900, 20191, 2019013, None)),
        Fault(Reason.INVALID_VALUE, ("kontant_bruttolon", "arbetsgivare"), (None,)),
    ),
    "bakgrund": (
        Fault(Reason.NULL_KEY, ("lopnr",), (None,)),
        Fault(Reason.UNKNOWN_REGION, ("lan",), ("99", "26", None)),
        Fault(Reason.INVALID_CODE, ("kon",), (3, 0, None)),
        Fault(Reason.INVALID_CODE, ("civilstand", "fodelseland", "sun2000niva"), ("X", "g", "9")),
        Fault(Reason.INVALID_VALUE, ("fodelsear", "ar"), (None,)),
    ),
    "fk_handelser": (
        Fault(Reason.NULL_KEY, ("lopnr",), (None,)),
        Fault(Reason.UNPARSEABLE_DATE, ("datum",), BAD_DATES),
        Fault(Reason.INVALID_CODE, ("handelse",), ("mote", "Avstamningsmote", None)),
    ),
    "regionenkat": (
        Fault(Reason.NULL_KEY, ("region",), (None,)),
        Fault(Reason.UNKNOWN_REGION, ("region",), ("99", "26")),
        Fault(Reason.INVALID_VALUE, ("ar",), (None,)),
    ),
}


def dates_as_text(rng: np.random.Generator, frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """`frame` with its date columns as text, each row as YYYY-MM-DD or YYYYMMDD."""
    date_columns = [c.name for c in TABLES[table].columns if c.kind is Kind.DATE]
    iso = pl.Series(rng.random(frame.height) < ISO_SHARE)
    return frame.with_columns(
        pl.when(iso)
        .then(pl.col(c).dt.strftime("%Y-%m-%d"))
        .otherwise(pl.col(c).dt.strftime("%Y%m%d"))
        .alias(c)
        for c in date_columns
    )


def normalised_key(frame: pl.DataFrame, table: str) -> list[pl.Expr]:
    """Expressions giving each row's contract values as the stage normalises them."""
    exprs = []
    for col in TABLES[table].columns:
        e = pl.col(col.name)
        if col.kind is Kind.ICD:
            e = e.str.replace_all(".", "", literal=True).str.to_uppercase()
        elif col.kind is Kind.KVA:
            e = e.str.strip_chars().str.to_uppercase().str.replace_all(r"\s+", " ")
            e = pl.when(e == "").then(None).otherwise(e)
        exprs.append(e.alias(col.name))
    return exprs


def drop_normalised_duplicates(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """`frame` without rows equal after normalisation to an earlier row (first kept)."""
    keys = normalised_key(frame, table)
    names = [f"__key_{i}" for i in range(len(keys))]
    return (
        frame.with_columns(k.alias(n) for k, n in zip(keys, names, strict=True))
        .unique(subset=names, keep="first", maintain_order=True)
        .drop(names)
    )


def plant_bad_rows(
    rng: np.random.Generator, delivery: pl.DataFrame, table: str, base: int, rate: float
) -> tuple[pl.DataFrame, dict[str, int]]:
    """`delivery` with planted bad rows at random places; returns it and the count per reason."""
    n = delivery.height
    per_fault = base + round(rate * n)
    counts = {r.value: 0 for r in Reason}
    position = np.arange(n, dtype=np.float64)
    parts, positions = [delivery], [position]
    bad_parts, bad_positions = [], []
    for fault in FAULTS[table]:
        source = rng.choice(n, size=per_fault, replace=per_fault > n)
        rows = delivery[source]
        if fault.reason is Reason.END_BEFORE_START:
            rows = rows.filter(pl.col("from_datum") != pl.col("tom_datum"))
            rows = rows.with_columns(from_datum=pl.col("tom_datum"), tom_datum=pl.col("from_datum"))
        else:
            rows = _set_faulty_values(rows, fault)
        where = rng.uniform(0, n, rows.height)
        bad_parts.append(rows)
        bad_positions.append(where)
        counts[fault.reason.value] += rows.height
    # One bad row delivered twice: the copy keeps the bad row's reason, not exact_duplicate.
    bad = pl.concat(bad_parts)
    bad_position = np.concatenate(bad_positions)
    again = rng.choice(bad.height, size=DUPLICATED_BAD_ROWS, replace=False)
    parts += [bad, bad[again]]
    positions += [bad_position, bad_position[again] + rng.uniform(0.1, 1.0, len(again))]
    reasons_of_bad = np.concatenate(
        [np.full(p.height, f.reason.value) for p, f in zip(bad_parts, FAULTS[table], strict=True)]
    )
    for reason in reasons_of_bad[again]:
        counts[str(reason)] += 1
    # Exact duplicates: later copies of clean rows.
    dup_source = rng.choice(n, size=per_fault, replace=False) if n >= per_fault else np.arange(n)
    parts.append(delivery[dup_source])
    positions.append(dup_source + 0.5 + rng.uniform(0, 1, len(dup_source)) * (n - dup_source))
    counts[Reason.EXACT_DUPLICATE.value] += len(dup_source)
    order = np.argsort(np.concatenate(positions), kind="stable")
    return pl.concat(parts)[order], counts


def _set_faulty_values(rows: pl.DataFrame, fault: Fault) -> pl.DataFrame:
    """`rows` with one column per row set to a bad value (columns and values in turn)."""
    k = rows.height
    column_of_row = np.arange(k) % len(fault.columns)
    value_of_row = np.arange(k) % len(fault.values)
    out = rows
    for ci, column in enumerate(fault.columns):
        dtype = rows.schema[column]
        picked = [fault.values[v] for v in value_of_row]
        values = pl.Series(column, [_cast(v, dtype) for v in picked], dtype=dtype)
        mask = pl.Series(column_of_row == ci)
        out = out.with_columns(pl.when(mask).then(values).otherwise(pl.col(column)).alias(column))
    return out


def _cast(value: object, dtype: pl.DataType) -> object:
    """`value` as the column's Python type (a bad string in a numeric column becomes None)."""
    if value is None:
        return None
    if dtype.is_numeric():
        return value if isinstance(value, int) else None
    return str(value)


def code_variants(
    rng: np.random.Generator, delivery: pl.DataFrame, table: str
) -> tuple[pl.DataFrame, int]:
    """`delivery` with a few codes written as variants that normalise to the same valid value."""
    column = {"sjukpenning": "diagnos", "bakgrund": "lan", "vardkontakter": "region"}.get(table)
    if column is None or delivery.height == 0:
        return delivery, 0
    share = 0.001
    pick = pl.Series(rng.random(delivery.height) < share)
    if column == "diagnos":  # lower case: "f43.8", "m545"
        variant = pl.col(column).str.to_lowercase()
    else:  # region without the leading zero: "03" -> "3"
        variant = pl.col(column).str.strip_chars_start("0")
    changed = delivery.select((pick & pl.col(column).is_not_null()).sum()).item()
    return delivery.with_columns(
        pl.when(pick).then(variant).otherwise(pl.col(column)).alias(column)
    ), int(changed)
