"""Parsing and normalising delivered cells: polars expressions chosen by the raw dtype.

Each function takes the raw column (`pl.col(name)`) and its delivered dtype and
returns an expression for the parsed value, null where the cell is missing or
cannot be parsed. Typed columns take a fast path (an Int64 `lopnr` is used as
is; a Date stays a Date); text is parsed with anchored regular expressions, so
nothing is guessed. A dtype that no parse accepts raises `UnreadableColumn`,
which the caller turns into a `DeliveryError` naming table and column.

Rules (data-contract.md, "Codes are normalised before they are judged"):
- missing: null, NaN, or text that is empty or only whitespace.
- integers: integer dtypes as is; floats (SAS, Stata) when integral; text
  `[+-]digits` with optional zero decimals after the configured decimal mark
  (`12345,00` -> 12345 with decimal ","; `123,50` is not an integer). Surrounding
  whitespace is ignored; thousands separators are not accepted.
- dates: Date as is, Datetime -> its date, integers (or integral floats)
  YYYYMMDD, text `YYYY-MM-DD` or `YYYYMMDD` that is a real calendar date.
- region codes: trimmed, one digit zero-padded (`1` -> `01`).
- ICD-10: trimmed, upper-cased, dots removed (`f43.8` -> `F438`).
- KVÅ: trimmed, upper-cased, inner whitespace collapsed to one space.
- other codes: as delivered (`Anstalld` is not `anstalld`).
"""

from __future__ import annotations

import polars as pl

# Text accepted as a date: an exact shape, then a calendar check (to_date).
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
COMPACT_DATE = r"^[0-9]{8}$"
# 8-digit integers read as YYYYMMDD.
MIN_COMPACT_DATE, MAX_COMPACT_DATE = 10_000_101, 99_991_231
# Floats beyond this magnitude are not integers we can hold in Int64.
INT64_LIMIT = 2.0**63


class UnreadableColumn(Exception):  # noqa: N818 (internal signal, not a user-facing error)
    """A column's delivered dtype cannot be parsed as the contract kind at all."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _is_text(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Categorical | pl.Enum)


def _as_text(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return raw if dtype == pl.String else raw.cast(pl.String)


def is_missing(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """True where the delivered cell is missing: null, NaN, or blank text.

    >>> s = pl.Series(["a", "", "  ", None])
    >>> pl.select(is_missing(pl.lit(s), pl.String())).to_series().to_list()
    [False, True, True, True]
    """
    if _is_text(dtype):
        return raw.is_null() | (_as_text(raw, dtype).str.strip_chars() == "")
    if dtype.is_float():
        return raw.is_null() | raw.is_nan()
    return raw.is_null()


def _integral_float(raw: pl.Expr) -> pl.Expr:
    ok = raw.is_finite() & (raw == raw.floor()) & (raw.abs() < INT64_LIMIT)
    return pl.when(ok).then(raw.cast(pl.Int64, strict=False))


def integer(raw: pl.Expr, dtype: pl.DataType, decimal: str = ".") -> pl.Expr:
    """The cell as Int64, null where missing or not an integer.

    >>> s = pl.Series(["12345,00", "123,50", " 7 ", "x"])
    >>> pl.select(integer(pl.lit(s), pl.String(), ",")).to_series().to_list()
    [12345, None, 7, None]
    """
    if dtype == pl.Null:
        return raw.cast(pl.Int64)
    if dtype.is_integer():
        return raw.cast(pl.Int64, strict=False)  # UInt64 beyond Int64 -> null
    if dtype.is_float():
        return _integral_float(raw)
    if dtype.is_decimal():
        return integer(raw.cast(pl.String), pl.String(), ".")
    if _is_text(dtype):
        mark = "," if decimal == "," else r"\."
        pattern = rf"^\s*([+-]?[0-9]+)(?:{mark}0+)?\s*$"
        return _as_text(raw, dtype).str.extract(pattern, 1).cast(pl.Int64, strict=False)
    raise UnreadableColumn("an integer (integer, integral float or text) column")


def calendar_date(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The cell as a Date, null where missing or not a real calendar date.

    >>> s = pl.Series(["2019-02-28", "20190228", "2019-02-30", "2021/03/04", "2019-2-3"])
    >>> [str(d) for d in pl.select(calendar_date(pl.lit(s), pl.String())).to_series()]
    ['2019-02-28', '2019-02-28', 'None', 'None', 'None']
    """
    if dtype == pl.Null:
        return raw.cast(pl.Date)
    if dtype == pl.Date:
        return raw
    if isinstance(dtype, pl.Datetime):
        return raw.dt.date()
    if dtype.is_integer() or dtype.is_float():
        number = integer(raw, dtype)
        compact = pl.when(number.is_between(MIN_COMPACT_DATE, MAX_COMPACT_DATE)).then(number)
        return compact.cast(pl.String).str.to_date("%Y%m%d", strict=False)
    if _is_text(dtype):
        text = _as_text(raw, dtype).str.strip_chars()
        return (
            pl.when(text.str.contains(ISO_DATE))
            .then(text.str.to_date("%Y-%m-%d", strict=False))
            .when(text.str.contains(COMPACT_DATE))
            .then(text.str.to_date("%Y%m%d", strict=False))
        )
    raise UnreadableColumn("a date (date, datetime, YYYYMMDD number or text) column")


def text(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The cell as delivered text, null where missing; integral numbers without ".0".

    >>> pl.select(text(pl.lit(pl.Series([3.0, 2.5])), pl.Float64())).to_series().to_list()
    ['3', '2.5']
    """
    if dtype == pl.Null:
        return raw.cast(pl.String)
    if _is_text(dtype):
        value = _as_text(raw, dtype)
        return pl.when(value.str.strip_chars() != "").then(value)
    if dtype.is_integer():
        return raw.cast(pl.String)
    if dtype.is_float():
        return pl.coalesce(_integral_float(raw).cast(pl.String), raw.cast(pl.String))
    raise UnreadableColumn("a text or number column")


def region(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A region code trimmed and zero-padded to two digits; null where missing.

    >>> pl.select(region(pl.lit(pl.Series(["1", " 14", "1a"])), pl.String())).to_series().to_list()
    ['01', '14', '1a']
    """
    value = text(raw, dtype).str.strip_chars()
    return pl.when(value.str.contains(r"^[0-9]$")).then("0" + value).otherwise(value)


def icd(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """An ICD-10 code trimmed, upper-cased and without dots; null where missing.

    >>> codes = pl.lit(pl.Series(["f43.8", "F438 ", "M54"]))
    >>> pl.select(icd(codes, pl.String())).to_series().to_list()
    ['F438', 'F438', 'M54']
    """
    return (
        text(raw, dtype).str.strip_chars().str.to_uppercase().str.replace_all(".", "", literal=True)
    )


def kva(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """KVÅ codes trimmed, upper-cased, inner whitespace collapsed; null where missing.

    >>> codes = pl.lit(pl.Series(["gc001 ", " dv077   GC001"]))
    >>> pl.select(kva(codes, pl.String())).to_series().to_list()
    ['GC001', 'DV077 GC001']
    """
    value = text(raw, dtype).str.strip_chars().str.to_uppercase()
    return value.str.replace_all(r"\s+", " ")


def delivered_text(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The raw cell cast to text for the quarantine file (no normalisation)."""
    return raw if dtype == pl.String else raw.cast(pl.String)
