"""Row rules: each delivered row's normalised values and its first fault, if any.

A *fault* is one (reason, column, detail, condition). The faults of a table
are ordered by `contract.REASON_ORDER`, then by contract column order, and a
row's `_fault` is the index of the first one whose condition holds (null when
none does). `exact_duplicate` needs the whole table and is decided later
(`pipeline.stages.stage.dedup`), on the rows that pass every rule here.

Fine print applied (data-contract.md, "Fine print"):
- a missing date -> `unparseable_date`; a missing region -> `unknown_region`,
  except in `regionenkat`, where region is the key: missing or not digits ->
  `null_key`, digits not in the list -> `unknown_region`;
- a missing categorical -> `invalid_code` (missing `omfattning` ->
  `invalid_extent`, missing `period` -> `invalid_period`);
- `invalid_value` (our addition, `contract.Reason`): an integer column that is
  missing (when not nullable), not an integer, or outside its staged dtype;
- `diagnos` and `kva` are normalised, never judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from pipeline.core.contract import KEY_COLUMN, REASON_ORDER, Column, Kind, Reason, Table
from pipeline.core.errors import DeliveryError
from pipeline.stages.stage import normalise as nz
from pipeline.stages.stage.spec import INTEGER_CODE_LISTS, CodeLists

ROW = "_stage_row"  # 1-based data row within its file (set by the reader)
FILE = "_stage_file"  # index of the file in the table's file list
FAULT = "_stage_fault"  # index into the table's fault list; null = passes
VALUE_PREFIX = "_v_"

# Valid `period` months (data-contract.md §3: a YYYYMM month; years are our bound).
PERIOD_MIN, PERIOD_MAX = 190001, 210012
DATE_EXPECTED = "a calendar date YYYY-MM-DD or YYYYMMDD"


@dataclass(frozen=True)
class Fault:
    """One way a row can fail: its reason, the column named in `detail`, the condition, and
    whether the detail quotes the delivered value (a value that is there but wrong)."""

    reason: Reason
    column: str
    detail: str
    when: pl.Expr
    quotes_value: bool = False


def lookup(index: pl.Expr, values: Sequence[str]) -> pl.Expr:
    """`values[index]` as String (null index -> null); `index` must be in range.

    A gather from a literal rather than `replace_strict`, which materialises its
    input: this streams in constant memory.

    >>> pl.select(lookup(pl.lit(pl.Series([1, 0, None])), ["a", "b"])).to_series().to_list()
    ['b', 'a', None]
    """
    return pl.lit(pl.Series(list(values), dtype=pl.String)).gather(index)


def _one_of(values: Sequence[object]) -> str:
    return "one of " + ",".join(str(v) for v in values)


def _v(name: str) -> pl.Expr:
    return pl.col(VALUE_PREFIX + name)


def _value_and_faults(
    col: Column, table: Table, dtype: pl.DataType, codes: CodeLists, decimal: str
) -> tuple[pl.Expr, list[Fault]]:
    """The normalised value expression of `col` and the faults it can raise."""
    raw, name, v = pl.col(col.name), col.name, _v(col.name)
    missing = nz.is_missing(raw, dtype)
    present = ~missing

    def both(reason: Reason, expected: str, bad: pl.Expr, quote: bool = True) -> list[Fault]:
        out = (
            []
            if col.nullable
            else [Fault(reason, name, f"{name}: missing, expected {expected}", missing)]
        )
        wrong = Fault(reason, name, f"{name}: expected {expected}", present & bad, quote)
        return [*out, wrong]

    kind = col.kind
    if kind is Kind.KEY:
        # a person id, even a malformed one, is never quoted in a detail
        key_faults = both(Reason.NULL_KEY, "an integer", v.is_null(), quote=False)
        return nz.integer(raw, dtype, decimal), key_faults
    if kind is Kind.DATE:
        return nz.calendar_date(raw, dtype), both(
            Reason.UNPARSEABLE_DATE, DATE_EXPECTED, v.is_null()
        )
    if kind is Kind.REGION:
        regions = codes.regions
        known = ~v.is_in(regions).fill_null(False)
        if KEY_COLUMN[table.name] == name:
            return nz.region(raw, dtype), [
                *both(
                    Reason.NULL_KEY, "a region code", ~v.str.contains("^[0-9]+$").fill_null(False)
                ),
                Fault(
                    Reason.UNKNOWN_REGION,
                    name,
                    f"{name}: expected {_one_of(regions)}",
                    present & known,
                    True,
                ),
            ]
        return nz.region(raw, dtype), both(Reason.UNKNOWN_REGION, _one_of(regions), known)
    if kind is Kind.ICD:
        return nz.icd(raw, dtype), []
    if kind is Kind.KVA:
        return nz.kva(raw, dtype), []
    # Integers: `v` is the value cast to the staged dtype, null when it does not fit.
    if kind is Kind.PERIOD:
        ok = v.is_between(PERIOD_MIN, PERIOD_MAX) & (v % 100).is_between(1, 12)
        expected = f"a month YYYYMM ({PERIOD_MIN}-{PERIOD_MAX}, month 01-12)"
        return nz.integer(raw, dtype, decimal), both(
            Reason.INVALID_PERIOD, expected, ~ok.fill_null(False)
        )
    if kind is Kind.INTEGER:
        expected = "an integer" + (f" ({col.dtype})" if col.dtype != pl.Int64 else "")
        return nz.integer(raw, dtype, decimal), both(Reason.INVALID_VALUE, expected, v.is_null())
    assert col.codes is not None, f"{table.name}.{name} has no code list"
    allowed = codes.values(col.codes, kind)
    reason = Reason.INVALID_EXTENT if kind is Kind.EXTENT else Reason.INVALID_CODE
    if kind is Kind.EXTENT or col.codes in INTEGER_CODE_LISTS:
        value = nz.integer(raw, dtype, decimal)
    else:
        value = nz.text(raw, dtype)
    return value, both(reason, _one_of(allowed), ~v.is_in(allowed).fill_null(False))


def table_faults(table: Table) -> list[Fault]:
    """Faults that compare columns: `end_before_start` where a table has both period dates."""
    if not {"from_datum", "tom_datum"} <= set(table.names):
        return []
    return [
        Fault(
            Reason.END_BEFORE_START,
            "tom_datum",
            "tom_datum: expected on or after from_datum",
            _v("tom_datum") < _v("from_datum"),
        )
    ]


@dataclass(frozen=True)
class Rules:
    """A table's value expressions and ordered faults for one delivered schema."""

    table: Table
    values: dict[str, pl.Expr]
    faults: tuple[Fault, ...]
    raw_dtypes: dict[str, pl.DataType]

    def fault_expr(self) -> pl.Expr:
        """UInt8 index of the first fault that holds; null when the row passes."""
        if not self.faults:
            return pl.lit(None, pl.UInt8)
        expr = pl.when(self.faults[0].when).then(pl.lit(0, pl.UInt8))
        for i, fault in enumerate(self.faults[1:], start=1):
            expr = expr.when(fault.when).then(pl.lit(i, pl.UInt8))
        return expr.otherwise(pl.lit(None, pl.UInt8)).alias(FAULT)


def build_rules(schema: pl.Schema, table: Table, codes: CodeLists, decimal: str = ".") -> Rules:
    """The rules for a file whose contract columns arrive with dtypes `schema`.

    Raises DeliveryError (table, column, expected kind, delivered dtype) when a
    column's dtype cannot be read as its contract kind at all.
    """
    values: dict[str, pl.Expr] = {}
    faults: list[tuple[int, int, int, Fault]] = []
    for position, col in enumerate(table.columns):
        dtype = schema[col.name]
        try:
            value, col_faults = _value_and_faults(col, table, dtype, codes, decimal)
        except nz.UnreadableColumn as err:
            raise DeliveryError(table.name, col.name, err.expected, f"dtype {dtype}") from None
        values[col.name] = value.cast(col.dtype, strict=False)
        for k, fault in enumerate(col_faults):
            faults.append((REASON_ORDER.index(fault.reason), position, k, fault))
    for k, fault in enumerate(table_faults(table)):
        faults.append(
            (REASON_ORDER.index(fault.reason), table.names.index(fault.column), 99 + k, fault)
        )
    ordered = tuple(f for *_, f in sorted(faults, key=lambda t: t[:3]))
    raw_dtypes = {c.name: schema[c.name] for c in table.columns}
    return Rules(table=table, values=values, faults=ordered, raw_dtypes=raw_dtypes)


def judge(frame: pl.LazyFrame, rules: Rules) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Split one file's rows: (passing rows, failing rows).

    Passing: one row per delivered row that breaks no row rule; `ROW` and the
    contract columns, normalised, in contract dtypes. Failing: one row per
    delivered row that breaks one; `ROW`, `reason`, `detail` and the contract
    columns as delivered, cast to text.
    """
    names = rules.table.names
    with_values = frame.with_columns(
        [expr.alias(VALUE_PREFIX + name) for name, expr in rules.values.items()]
    ).with_columns(rules.fault_expr())
    passing = with_values.filter(pl.col(FAULT).is_null()).select(
        ROW, *[_v(n).alias(n) for n in names]
    )
    failing = with_values.filter(pl.col(FAULT).is_not_null()).select(
        ROW,
        lookup(pl.col(FAULT), [str(f.reason) for f in rules.faults]).alias("reason"),
        _detail(rules).alias("detail"),
        *[nz.delivered_text(pl.col(n), rules.raw_dtypes[n]).alias(n) for n in names],
    )
    return passing, failing


def _detail(rules: Rules) -> pl.Expr:
    """The fault's detail and, for a value that is there but wrong, the value as delivered
    (after a configured recoding: a value no map covers is as delivered)."""
    static = lookup(pl.col(FAULT), [f.detail for f in rules.faults])
    quoted = [
        pl.when(pl.col(FAULT) == i).then(
            nz.delivered_text(pl.col(f.column), rules.raw_dtypes[f.column])
        )
        for i, f in enumerate(rules.faults)
        if f.quotes_value
    ]
    if not quoted:
        return static
    value = pl.coalesce(quoted)
    with_value = pl.format("{}, delivered '{}'", static, value)
    return pl.when(value.is_not_null()).then(with_value).otherwise(static)
