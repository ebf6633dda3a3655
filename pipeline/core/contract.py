"""The data contract: the six raw tables the pipeline reads (data-contract.md).

This module is the single place that names the contract's tables, columns,
types, which columns are nullable, how each column is normalised and judged,
and the quarantine reasons in the order they are applied. Code lists (which
values are valid) are configuration (`conf/codes/`), not code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import polars as pl


class Kind(StrEnum):
    """How a column is parsed, normalised and judged by the `stage` stage."""

    KEY = "key"  # integer person id; missing or non-integer -> null_key
    DATE = "date"  # YYYY-MM-DD or YYYYMMDD calendar date -> unparseable_date
    EXTENT = "extent"  # omfattning, one of codes.omfattning -> invalid_extent
    REGION = "region"  # two-digit SCB länskod, zero-padded -> unknown_region
    PERIOD = "period"  # YYYYMM month -> invalid_period
    CODE = "code"  # categorical value in a configured code list -> invalid_code
    ICD = "icd"  # ICD-10 code, dot removed, upper-cased; not judged
    KVA = "kva"  # space-separated KVÅ codes, upper-cased and trimmed; not judged
    INTEGER = "integer"  # any other integer (amount, year, employer id) -> invalid_value


class Reason(StrEnum):
    """Quarantine reasons, in the order they are applied (first that applies wins)."""

    NULL_KEY = "null_key"
    UNPARSEABLE_DATE = "unparseable_date"
    END_BEFORE_START = "end_before_start"
    INVALID_EXTENT = "invalid_extent"
    UNKNOWN_REGION = "unknown_region"
    INVALID_PERIOD = "invalid_period"
    INVALID_CODE = "invalid_code"
    # Not in data-contract.md's list: a non-categorical number (an amount, a year,
    # an employer id) that is missing or not an integer. The contract's "…" leaves
    # room for it; without it such rows would have no answer.
    INVALID_VALUE = "invalid_value"
    EXACT_DUPLICATE = "exact_duplicate"


REASON_ORDER: tuple[Reason, ...] = tuple(Reason)


@dataclass(frozen=True)
class Column:
    """One contract column: its staged dtype, how it is judged, and its code list."""

    name: str
    dtype: pl.DataType
    kind: Kind
    nullable: bool = False
    codes: str | None = None  # key of the code list in cfg.codes (CODE and EXTENT)


@dataclass(frozen=True)
class Table:
    """One contract table: its columns in contract order and its staged sort key."""

    name: str
    columns: tuple[Column, ...]
    sort_key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        """Contract column names in contract order."""
        return [c.name for c in self.columns]

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """Staged polars schema: contract name -> dtype."""
        return {c.name: c.dtype for c in self.columns}

    def column(self, name: str) -> Column:
        """The column called `name`."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")


LOPNR = Column("lopnr", pl.Int64(), Kind.KEY)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "sjukpenning",
            (
                LOPNR,
                Column("from_datum", pl.Date(), Kind.DATE),
                Column("tom_datum", pl.Date(), Kind.DATE),
                Column("omfattning", pl.Int16(), Kind.EXTENT, codes="omfattning"),
                # Missing or unparseable diagnosis -> group `saknas` (spec §9), not a fault.
                Column("diagnos", pl.String(), Kind.ICD, nullable=True),
                Column("forsakradtyp", pl.String(), Kind.CODE, codes="forsakradtyp"),
            ),
            sort_key=("lopnr", "from_datum", "tom_datum", "omfattning", "diagnos", "forsakradtyp"),
        ),
        Table(
            "vardkontakter",
            (
                LOPNR,
                Column("datum", pl.Date(), Kind.DATE),
                Column("kva", pl.String(), Kind.KVA, nullable=True),  # "may be empty"
                Column("region", pl.String(), Kind.REGION),
                Column("vardniva", pl.String(), Kind.CODE, codes="vardniva"),
                Column("regi", pl.String(), Kind.CODE, codes="regi"),
            ),
            sort_key=("lopnr", "datum", "kva", "region", "vardniva", "regi"),
        ),
        Table(
            "agi",
            (
                LOPNR,
                Column("period", pl.Int32(), Kind.PERIOD),
                Column("arbetsgivare", pl.Int64(), Kind.INTEGER),
                Column("kontant_bruttolon", pl.Int64(), Kind.INTEGER),
            ),
            sort_key=("lopnr", "period", "arbetsgivare", "kontant_bruttolon"),
        ),
        Table(
            "bakgrund",
            (
                LOPNR,
                Column("ar", pl.Int16(), Kind.INTEGER),
                Column("kon", pl.Int8(), Kind.CODE, codes="kon"),
                Column("fodelsear", pl.Int16(), Kind.INTEGER),
                Column("fodelseland", pl.String(), Kind.CODE, codes="fodelseland"),
                Column("civilstand", pl.String(), Kind.CODE, codes="civilstand"),
                Column("sun2000niva", pl.String(), Kind.CODE, nullable=True, codes="sun2000niva"),
                Column("lan", pl.String(), Kind.REGION),
            ),
            sort_key=("lopnr", "ar", "kon", "fodelsear", "fodelseland", "civilstand", "lan"),
        ),
        Table(
            "fk_handelser",
            (
                LOPNR,
                Column("datum", pl.Date(), Kind.DATE),
                Column("handelse", pl.String(), Kind.CODE, codes="handelse"),
            ),
            sort_key=("lopnr", "datum", "handelse"),
        ),
        Table(
            "regionenkat",
            (
                # In regionenkat the region is the key: missing -> null_key.
                Column("region", pl.String(), Kind.REGION),
                Column("ar", pl.Int16(), Kind.INTEGER),
                Column("antal_insatser", pl.Int64(), Kind.INTEGER, nullable=True),
            ),
            sort_key=("region", "ar", "antal_insatser"),
        ),
    )
}

# Tables whose key column is not `lopnr`.
KEY_COLUMN: dict[str, str] = {name: "lopnr" for name in TABLES} | {"regionenkat": "region"}
