"""Fast reading of the uncompressed fixed-width formats: Stata dta (117-119) and SAS
transport (xpt, versions 5 and 8).

Both formats store the data as fixed-width records after a header, so numpy reads
every column of a file as one strided view of the file (memory-mapped), with no
per-value work in Python: 7 million LISA rows in about 2 s where pyreadstat, which
decodes value by value, takes 15 s. The frames equal pyreadstat's (`output_format=
"polars"`): Stata integers as Int64, floats as Float64, missing values (Stata's
`.`, `.a`-`.z`; SAS's `.`, `.A`-`.Z`, `._`) as null, dates (the date formats pyreadstat
knows) as Date, text as String without its padding ("" when empty), a
column with no value at all as Null.

A file using anything else (strL text, a time or datetime format, several SAS
members, a Stata release before 117, text that does not decode) gets `None`, and the
caller reads it with pyreadstat: this reader only ever takes the common path, and
tests/test_fixed_width.py checks that both readers give equal frames.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

FORMATS = ("dta", "xpt")  # the delivery formats this module reads
# Days from 1960-01-01 (Stata's and SAS's day 0) to 1970-01-01 (polars' Date 0).
EPOCH_1960 = -3653
# pyreadstat's date formats (pyreadstat/_readstat_parser.pyx): values are days.
STATA_DATE_FORMATS = frozenset({"%td", "%d", "%tdD_m_Y", "%tdCCYY-NN-DD"})
SAS_DATE_FORMATS = frozenset(
    [
        "WEEKDATE",
        "MMDDYY",
        "DDMMYY",
        "YYMMDD",
        "DATE",
        "DDMMYYB",
        "DDMMYYC",
        "DDMMYYD",
        "DDMMYYN",
        "DDMMYYP",
        "DDMMYYS",
        "MMDDYYB",
        "MMDDYYC",
        "MMDDYYD",
        "MMDDYYN",
        "MMDDYYP",
        "MMDDYYS",
        "WEEKDATX",
        "DTDATE",
        "IS8601DA",
        "E8601DA",
        "B8601DA",
        "YYMMDDB",
        "YYMMDDD",
        "YYMMDDN",
        "YYMMDDP",
        "YYMMDDS",
    ]
)
# pyreadstat's other time-valued formats: such a file is left to pyreadstat.
SAS_TIME_FORMATS = frozenset(
    [
        "DATETIME",
        "E8601DT",
        "DATEAMPM",
        "MDYAMPM",
        "IS8601DT",
        "B8601DT",
        "B8601DN",
        "TIME",
        "HHMM",
        "TOD",
        "TIMEAMPM",
        "IS8601TM",
        "E8601TM",
        "B8601TM",
    ]
)
SAS_FORMAT_NAME = re.compile(r"^([A-Z][A-Z0-9]+[A-Z])(\d+)?(?(2)(?:\.\d+)?$|$)")
# Stata numeric storage types (dta 117+ type codes): numpy type and the smallest
# missing value (it and larger values are the missing codes . and .a-.z).
STATA_NUMERIC = {
    65526: ("f8", 2.0**1023),
    65527: ("f4", 2.0**127),
    65528: ("i4", 2_147_483_621),
    65529: ("i2", 32_741),
    65530: ("i1", 101),
}
STATA_MAX_STR = 2045  # type codes 1-2045 are str1-str2045; 32768 is strL
SAS_MISSING_FIRST_BYTES = frozenset([0x2E, 0x5F, *range(0x41, 0x5B)])  # . _ A-Z
ROWS_PER_BLOCK = 2_000_000  # rows converted at a time (bounded temporary memory)
MAX_DAYS = 3_000_000  # days from 1960 a Date may hold here (about year 10 170)


@dataclass(frozen=True)
class Column:
    """Where one column lies in a record and how to decode it."""

    name: str
    offset: int  # bytes from the record's start
    width: int  # bytes
    kind: str  # "stata" (numeric), "sas" (IBM float), "text"
    dtype: str = ""  # numpy type of a Stata number
    missing_from: float = 0.0  # Stata: this and larger values are missing codes
    date: bool = False  # days since 1960-01-01


@dataclass(frozen=True)
class Layout:
    """A file's data block: where it starts, its records, its columns."""

    start: int  # byte offset of the first record
    n_rows: int
    record: int  # bytes per record
    columns: tuple[Column, ...]
    big_endian: bool
    encoding: str  # of the text columns
    blank_padded: bool = False  # text is padded with blanks (SAS), not NULs (Stata)


def read(path: Path, fmt: str, columns: Sequence[str], encoding: str | None) -> pl.DataFrame | None:
    """The named columns of a dta or xpt file as pyreadstat would return them, or None
    when the file needs pyreadstat; grain: one row per record."""
    size = path.stat().st_size
    if size == 0:
        return None
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        layout = dta_layout(mm, encoding) if fmt == "dta" else xpt_layout(mm, encoding)
    if layout is None:
        return None
    by_name = {c.name: c for c in layout.columns}
    if any(name not in by_name for name in columns):
        return None
    if layout.start + layout.n_rows * layout.record > size:
        return None
    return _decode(path, layout, [by_name[name] for name in columns])


def _decode(path: Path, layout: Layout, columns: list[Column]) -> pl.DataFrame | None:
    """The columns of `layout` decoded block by block into one frame (None: undecodable).

    The records are a read-only np.memmap: every view keeps the mapping alive, and the
    columns are copied out of it, so nothing refers to the file once this returns."""
    shape = (layout.n_rows, layout.record)
    if layout.n_rows == 0:
        records = np.zeros(shape, np.uint8)
    else:
        records = np.memmap(path, np.uint8, "r", layout.start, shape)
    parts = []
    for lo in range(0, max(layout.n_rows, 1), ROWS_PER_BLOCK):
        block = records[lo : lo + ROWS_PER_BLOCK]
        series = [_column(block, column, layout) for column in columns]
        if any(s is None for s in series):
            return None
        parts.append(pl.DataFrame(series))
    frame = pl.concat(parts) if len(parts) > 1 else parts[0]
    empty = [c for c in frame.columns if frame[c].null_count() == frame.height]
    return frame.with_columns(pl.lit(None).alias(c) for c in empty)  # as pyreadstat: Null


def _column(block: np.ndarray, column: Column, layout: Layout) -> pl.Series | None:
    """One column of a block of records as a polars Series (None: undecodable text)."""
    raw = np.ascontiguousarray(block[:, column.offset : column.offset + column.width])
    if column.kind == "text":
        return _text(raw, column.name, layout.encoding, layout.blank_padded)
    if column.kind == "sas":
        floats = _ibm_floats(raw)
        if floats is None:
            return None
        values, missing = floats
    else:
        order = ">" if layout.big_endian else "<"
        values = raw.view(order + column.dtype).reshape(-1)
        missing = values >= column.missing_from
        if column.dtype.startswith("f"):
            missing |= np.isnan(values)
            values = values.astype(np.float64)
        else:
            values = values.astype(np.int64)
    mask = missing if missing.any() else None
    if column.date:
        if column.kind == "sas" or column.dtype.startswith("f"):
            whole = values[~missing]
            if not np.array_equal(whole, np.floor(whole)):
                return None  # a fraction of a day: leave it to pyreadstat
        days = np.where(missing, 0, values)
        if np.abs(days).max(initial=0) > MAX_DAYS:
            return None  # past year 9999 either way: pyreadstat's error, not our wrap
        days = days.astype(np.int32) + np.int32(EPOCH_1960)
        return pl.Series(column.name, pa.array(days, pa.date32(), mask=mask))
    return pl.Series(column.name, pa.array(values, mask=mask))


def _ibm_floats(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """IBM hexadecimal floats (big-endian, 3-8 bytes) as float64, and the missing mask;
    None when a value is not a normalised number, a true zero or a missing code (ReadStat
    reads those its own way: an unnormalised fraction, a signed or exponent-only zero,
    the largest value as infinity)."""
    full = np.zeros((raw.shape[0], 8), np.uint8)
    full[:, : raw.shape[1]] = raw
    bits = full.view(">u8").reshape(-1)
    first = full[:, 0]
    rest_zero = (bits & np.uint64(0x00FF_FFFF_FFFF_FFFF)) == 0
    missing = rest_zero & np.isin(first, list(SAS_MISSING_FIRST_BYTES))
    fraction = (bits & np.uint64(0x00FF_FFFF_FFFF_FFFF)).astype(np.float64)
    exponent = ((bits >> np.uint64(56)) & np.uint64(0x7F)).astype(np.int64)
    top_digit = (bits >> np.uint64(52)) & np.uint64(0xF)
    zero = bits == 0
    normal = (fraction != 0) & (top_digit != 0)
    largest = (bits & np.uint64(0x7FFF_FFFF_FFFF_FFFF)) == np.uint64(0x7FFF_FFFF_FFFF_FFFF)
    if not np.all(missing | zero | (normal & ~largest)):
        return None
    values = np.ldexp(fraction, 4 * (exponent - 64) - 56)
    values = np.where((bits >> np.uint64(63)) == 1, -values, values)
    return values, missing


def _text(raw: np.ndarray, name: str, encoding: str, blank_padded: bool) -> pl.Series | None:
    """Fixed-width text as a String Series: cut at the first NUL, and for blank-padded text
    its trailing blanks removed."""
    width = raw.shape[1]
    fixed = raw.reshape(-1).view(f"S{width}")  # numpy drops trailing NULs
    binary = pl.Series(name, pa.array(fixed, pa.binary()))
    nul = binary.bin.contains(b"\x00")
    if nul.any():
        binary = pl.Series(name, [v.split(b"\x00", 1)[0] for v in binary.to_list()], pl.Binary)
    if encoding.replace("-", "").replace("_", "").lower() == "utf8":
        try:
            text = binary.cast(pl.String)
        except pl.exceptions.PolarsError:
            return None
    else:
        distinct = binary.unique()
        try:
            decoded = [v.decode(encoding) for v in distinct.to_list()]
        except (UnicodeDecodeError, LookupError):
            return None
        text = binary.replace_strict(distinct, pl.Series(decoded, dtype=pl.String))
    return (text.str.strip_chars_end(" ") if blank_padded else text).alias(name)


# --- Stata ------------------------------------------------------------------------------


def dta_layout(mm: mmap.mmap, encoding: str | None) -> Layout | None:
    """The data block of a Stata 117-119 file (None for other releases or strL text)."""
    head = mm[:4096]
    if not head.startswith(b"<stata_dta><header><release>"):
        return None
    release = int(head[28:31])
    if release not in (117, 118, 119):
        return None
    order_at = head.find(b"<byteorder>") + len(b"<byteorder>")
    big = head[order_at : order_at + 3] == b"MSF"
    e = ">" if big else "<"
    k_at = head.find(b"<K>") + 3
    n_at = head.find(b"<N>") + 3
    k = int(np.frombuffer(head, e + ("u4" if release == 119 else "u2"), 1, k_at)[0])
    n = int(np.frombuffer(head, e + ("u4" if release == 117 else "u8"), 1, n_at)[0])
    closing = head.find(b"</header><map>")  # not "<map>": a label may hold it
    map_at = closing + len(b"</header>")
    if min(order_at, k_at, n_at, closing) < 4 or map_at + 5 + 14 * 8 > len(head):
        return None
    offsets = np.frombuffer(head, e + "u8", 14, map_at + 5).astype(np.int64)
    name_width, format_width = (33, 49) if release == 117 else (129, 57)
    text = encoding or ("cp1252" if release == 117 else "utf-8")  # as ReadStat
    at_types = int(offsets[2]) + len(b"<variable_types>")
    types = np.frombuffer(mm[at_types : at_types + 2 * k], e + "u2")  # a copy, not a view
    names = _fixed_strings(mm, int(offsets[3]) + len(b"<varnames>"), k, name_width, text)
    formats = _fixed_strings(mm, int(offsets[5]) + len(b"<formats>"), k, format_width, text)
    if names is None or formats is None:
        return None
    columns, at = [], 0
    for name, code, fmt in zip(names, types.tolist(), formats, strict=True):
        if 1 <= code <= STATA_MAX_STR:
            if fmt.startswith("%t") or fmt in STATA_DATE_FORMATS:
                return None  # text with a date format: pyreadstat's error
            columns.append(Column(name, at, code, "text"))
            at += code
        elif code in STATA_NUMERIC:
            dtype, top = STATA_NUMERIC[code]
            if fmt.startswith("%t") and fmt not in STATA_DATE_FORMATS:
                return None  # a time, datetime, week, month... value: pyreadstat's
            date = fmt in STATA_DATE_FORMATS
            columns.append(Column(name, at, int(dtype[1]), "stata", dtype, top, date))
            at += int(dtype[1])
        else:
            return None  # strL
    start = int(offsets[9]) + len(b"<data>")
    return Layout(start, n, at, tuple(columns), big, text)


def _fixed_strings(
    mm: mmap.mmap, at: int, count: int, width: int, encoding: str
) -> list[str] | None:
    """`count` NUL-padded strings of `width` bytes from offset `at` (None: undecodable)."""
    try:
        return [
            mm[at + i * width : at + (i + 1) * width].split(b"\x00", 1)[0].decode(encoding)
            for i in range(count)
        ]
    except (UnicodeDecodeError, LookupError):  # LookupError: a name only iconv knows
        return None


# --- SAS transport ------------------------------------------------------------------------

HEADER = b"HEADER RECORD*******"
NAMESTR = 140  # bytes per variable description


def xpt_layout(mm: mmap.mmap, encoding: str | None) -> Layout | None:
    """The data block of a one-member SAS transport file, version 5 or 8 (None otherwise)."""
    v8 = mm[:80].startswith(HEADER + b"LIBV8   HEADER RECORD")
    if not (v8 or mm[:80].startswith(HEADER + b"LIBRARY HEADER RECORD")):
        return None
    namestr = mm.find(HEADER + (b"NAMSTV8 " if v8 else b"NAMESTR "))
    obs = mm.find(HEADER + (b"OBSV8   " if v8 else b"OBS     "))
    if namestr < 0 or obs < 0 or mm.find(HEADER + b"LABELV", namestr, obs) >= 0:
        return None  # no variables, or long labels/formats in LABELV8/9 records
    start = obs + 80
    if mm.find(HEADER + (b"MEMBV8" if v8 else b"MEMBER"), start) >= 0:
        return None  # a second member
    count = (obs - namestr - 80) // NAMESTR
    stated = mm[namestr + 54 : namestr + 58]
    if not stated.isdigit() or int(stated) != count:
        return None  # the header's number of variables is not the namestrs': pyreadstat's
    columns, record = [], 0
    for i in range(count):
        d = mm[namestr + 80 + i * NAMESTR : namestr + 80 + (i + 1) * NAMESTR]
        ntype, length = int.from_bytes(d[0:2], "big"), int.from_bytes(d[4:6], "big")
        name = d[8:16].decode("ascii", "replace").rstrip()
        if v8 and d[88:120].strip(b" \x00"):
            name = d[88:120].decode("ascii", "replace").rstrip(" \x00")
        position = int.from_bytes(d[84:88], "big")
        fmt = d[56:64].decode("ascii", "replace").rstrip()
        fmt_name = SAS_FORMAT_NAME.match(fmt)
        fmt_name = fmt_name.group(1) if fmt_name else fmt
        if position != record:
            return None  # ReadStat reads the fields one after another, whatever npos says
        if ntype == 1:
            if fmt_name in SAS_TIME_FORMATS or not 3 <= length <= 8:
                return None
            date = fmt_name in SAS_DATE_FORMATS
            columns.append(Column(name, position, length, "sas", date=date))
        elif ntype == 2:
            if fmt_name in SAS_DATE_FORMATS or fmt_name in SAS_TIME_FORMATS:
                return None  # text with a date format: pyreadstat's error
            columns.append(Column(name, position, length, "text"))
        else:
            return None
        record = position + length
    if not columns:
        return None
    n = (len(mm) - start) // record
    stated_rows = mm[obs + 48 : obs + 63].strip()
    if v8 and stated_rows.isdigit() and int(stated_rows) > 0:  # 0: not stated
        n = int(stated_rows)
    else:  # version 5: the last 80-byte block is padded with blanks
        all_text = all(c.kind == "text" for c in columns)
        while n and mm[start + (n - 1) * record : start + n * record].strip(b" ") == b"":
            if all_text:
                return None  # a blank record or padding: pyreadstat decides
            n -= 1
    return Layout(start, n, record, tuple(columns), True, encoding or "utf-8", True)
