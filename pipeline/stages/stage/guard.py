"""Final guard on a staged table: a pandera schema built from the contract and code lists.

The row rules already keep every bad row out of the staged table; this schema
checks the result independently (exact columns and dtypes, no nulls where the
contract forbids them, values in their code lists, valid months), so a bug in
the rules fails the run instead of passing bad rows downstream. Failure
messages name columns and checks; there are no checks on `lopnr` values, so
they never print person ids.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from pipeline.core.contract import Kind, Table
from pipeline.stages.stage.spec import CodeLists
from pipeline.stages.stage.validate import PERIOD_MAX, PERIOD_MIN


def _month_01_12(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select((pl.col(data.key) % 100).is_between(1, 12))


def _checks(kind: Kind, codes_key: str | None, codes: CodeLists) -> list[pa.Check]:
    if kind is Kind.REGION:
        return [pa.Check.isin(list(codes.regions))]
    if kind in (Kind.CODE, Kind.EXTENT) and codes_key:
        return [pa.Check.isin(list(codes.values(codes_key, kind)))]
    if kind is Kind.PERIOD:
        return [
            pa.Check.in_range(PERIOD_MIN, PERIOD_MAX),
            pa.Check(_month_01_12, name="month_01_12"),
        ]
    return []


def staged_schema(table: Table, codes: CodeLists) -> pa.DataFrameSchema:
    """A pandera schema for `outputs/staged/<table>.parquet` (columns in contract order)."""
    return pa.DataFrameSchema(
        {
            col.name: pa.Column(
                col.dtype, nullable=col.nullable, checks=_checks(col.kind, col.codes, codes)
            )
            for col in table.columns
        },
        strict=True,
        ordered=True,
        name=f"staged.{table.name}",
    )


def check_staged(frame: pl.DataFrame, table: Table, codes: CodeLists) -> pl.DataFrame:
    """`frame` unchanged if it satisfies `staged_schema`; raises RuntimeError otherwise."""
    try:
        return staged_schema(table, codes).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        raise RuntimeError(
            f"staged {table.name} fails its schema (a bug in stage): {err}"
        ) from None
