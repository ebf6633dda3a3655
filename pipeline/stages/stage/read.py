"""Reading a configured delivery table: files, formats and column names.

Each delivered file becomes a `Source`: a LazyFrame with the contract columns
(renamed from the delivery's names, in their delivered dtypes) and `ROW`, the
1-based data row number within the file (the header is not counted; for CSV
it is the record number, which equals the line number minus one unless a quoted
field spans lines). Parquet and CSV are scanned lazily; Stata (dta) and SAS transport
(xpt) files are decoded by `fixed_width` (numpy over the fixed-width records, the
common case), else, like SAS data sets (sas7bdat), by pyreadstat in chunks of only
the needed columns.
CSV in another encoding than UTF-8 is first transcoded, in blocks, to a UTF-8
copy in the work directory.
"""

from __future__ import annotations

import codecs
import csv
import glob
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl
import pyreadstat

from pipeline.core import config
from pipeline.core.contract import TABLES, Table
from pipeline.core.errors import DeliveryError
from pipeline.stages.stage import fixed_width
from pipeline.stages.stage import normalise as nz
from pipeline.stages.stage.spec import TableSource
from pipeline.stages.stage.validate import ROW

log = logging.getLogger(__name__)

# Rows per pyreadstat chunk (bounded memory for large SAS/Stata files).
SAS_CHUNK_ROWS = 1_000_000
# Bytes per block when transcoding CSV text to UTF-8.
TRANSCODE_BLOCK = 1 << 24
READSTAT: dict[str, Callable[..., Any]] = {
    "sas7bdat": pyreadstat.read_sas7bdat,
    "xpt": pyreadstat.read_xport,
    "dta": pyreadstat.read_dta,
}


@dataclass(frozen=True)
class Source:
    """One delivered file of a table, ready to judge."""

    label: str  # the path as reported (relative to the repository root when under it)
    frame: pl.LazyFrame  # ROW + contract columns in delivered dtypes (recoded ones as text)
    n_rows: int  # data rows in the file, counted on their own (for the in = out check)
    decimal: str = "."  # decimal mark of numbers delivered as text
    source: str = ""  # the name of the configured source the file belongs to
    recoded: Mapping[str, int] = field(default_factory=dict)  # column -> values recoded
    raw: pl.LazyFrame | None = None  # the contract columns as delivered (before recoding)


def label_of(path: Path) -> str:
    """`path` relative to the repository root when it lies under it, else absolute."""
    try:
        return path.resolve().relative_to(config.ROOT).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def resolve_files(source: TableSource) -> list[Path]:
    """The files of `source` in configured order (globs sorted), without repeats.

    For a required table every configured path or glob must match a file; an
    optional table whose paths match nothing has no files (it is skipped).
    """
    found: list[Path] = []
    for pattern in source.paths:
        full = config.resolve_path(pattern)
        if glob.has_magic(str(full)):
            matches = [Path(p) for p in sorted(glob.glob(str(full))) if Path(p).is_file()]
        else:
            matches = [full] if full.is_file() else []
        if not matches and source.required:
            fmt = source.format
            what = f"{fmt} files matching" if glob.has_magic(str(full)) else f"a {fmt} file at"
            raise DeliveryError(source.table, None, f"{what} {pattern}", "no such file")
        found.extend(matches)
    return list(dict.fromkeys(p.resolve() for p in found))


def map_columns(
    delivered: Sequence[str],
    table: Table,
    columns: Mapping[str, str],
    label: str,
    log_extra: bool = True,
    provided: Iterable[str] = (),
) -> dict[str, str]:
    """Delivered column -> contract column, matching names case-insensitively.

    A contract column is found through `columns` (delivery name -> contract
    name) or, failing that, under its own name. Raises DeliveryError when a
    contract column is missing or two delivered columns could be it.

    >>> map_columns(["LOPNR", "Datum", "Handelse", "extra"], TABLES["fk_handelser"], {}, "f.csv")
    {'LOPNR': 'lopnr', 'Datum': 'datum', 'Handelse': 'handelse'}
    """

    def key(name: str) -> str:
        return name.strip().casefold()

    by_key: dict[str, list[str]] = {}
    for name in delivered:
        by_key.setdefault(key(name), []).append(name)
    skip = set(provided)
    wanted: dict[str, list[str]] = {n: [] for n in table.names if n not in skip}
    for delivery_name, contract_name in columns.items():
        if contract_name in wanted:
            wanted[contract_name].append(delivery_name)
    mapped_away = {key(d) for d in columns}
    mapping: dict[str, str] = {}
    for contract_name, aliases in wanted.items():
        hits = [d for alias in aliases for d in by_key.get(key(alias), [])]
        if not hits and key(contract_name) not in mapped_away:
            hits = by_key.get(key(contract_name), [])
        expected = " or ".join(repr(a) for a in [*aliases, contract_name])
        if not hits:
            found = f"columns {', '.join(delivered)} in {label}"
            raise DeliveryError(table.name, contract_name, f"a column named {expected}", found)
        if len(set(hits)) > 1:
            raise DeliveryError(
                table.name,
                contract_name,
                f"one column named {expected}",
                f"{', '.join(hits)} in {label}",
            )
        mapping[hits[0]] = contract_name
    extra = [d for d in delivered if d not in mapping]
    if extra and log_extra:
        log.info(
            "%s: ignoring columns not in the contract in %s: %s",
            table.name,
            label,
            ", ".join(extra),
        )
    return mapping


def _select(
    frame: pl.LazyFrame, mapping: Mapping[str, str], table: Table, source: TableSource
) -> pl.LazyFrame:
    """ROW and the contract columns: delivered, a source's constant, or recoded to text."""
    back = {c: d for d, c in mapping.items()}
    schema = frame.collect_schema()
    columns = []
    for name in table.names:
        if name in source.constants:
            columns.append(pl.lit(source.constants[name], pl.String).alias(name))
        elif name in source.recode:
            key = key_text(pl.col(back[name]), schema[back[name]])
            mapped = key.replace_strict(source.recode[name], default=key, return_dtype=pl.String)
            columns.append(mapped.alias(name))
        else:
            columns.append(pl.col(back[name]).alias(name))
    selected = frame.select(ROW, *columns)
    if not source.unknown:
        return selected
    types = selected.collect_schema()
    return selected.with_columns(
        pl.when(nz.is_missing(pl.col(name), types[name]))
        .then(pl.lit(value, pl.String))
        .otherwise(pl.col(name).cast(pl.String))
        .alias(name)
        for name, value in source.unknown.items()
    )


def key_text(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A delivered cell as the recoding compares it (`spec.code_text`): text, stripped, a
    whole float without decimals; null stays null."""
    if dtype.is_float():
        whole = raw.is_finite() & (raw == raw.floor())
        text = pl.when(whole).then(raw.cast(pl.Int64, strict=False).cast(pl.String))
        return text.otherwise(raw.cast(pl.String))
    return raw.cast(pl.String).str.strip_chars()


def recoded_counts(frame: pl.LazyFrame, source: TableSource) -> dict[str, int]:
    """Per recoded column of `source`, how many values of `frame` (ROW + contract columns,
    before recoding) the map changed, and per `unknown` column (key `<column>:unknown`) how
    many missing values it fills; one streaming pass."""
    if not source.recode and not source.unknown:
        return {}
    schema = frame.collect_schema()
    changed = []
    for name, values in source.recode.items():
        key = key_text(pl.col(name), schema[name])
        moved = {k for k, v in values.items() if k != v}
        changed.append(key.is_in(list(moved)).sum().alias(name))
    for name in source.unknown:  # missing values staged as the configured unknown
        changed.append(nz.is_missing(pl.col(name), schema[name]).sum().alias(f"{name}:unknown"))
    return {k: int(v) for k, v in frame.select(changed).collect().row(0, named=True).items()}


def transcode(path: Path, encoding: str, target: Path, table: str) -> Path:
    """Copy text file `path` from `encoding` to UTF-8 at `target`, in blocks; returns target."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    with path.open("rb") as src, target.open("w", encoding="utf-8", newline="") as dst:
        try:
            while block := src.read(TRANSCODE_BLOCK):
                dst.write(decoder.decode(block))
                offset += len(block)
            dst.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError as err:
            raise DeliveryError(
                table,
                None,
                f"text encoded as {encoding}",
                f"undecodable byte at offset {offset + err.start} in {label_of(path)}",
            ) from None
    return target


def delivered_columns(path: Path, source: TableSource) -> list[str]:
    """Column names of one delivered file, from its header or metadata only (no data)."""
    try:
        if source.format == "parquet":
            return pl.scan_parquet(path).collect_schema().names()
        if source.format == "csv":
            with path.open(encoding=source.csv.encoding, newline="") as handle:
                header = handle.readline().lstrip("\ufeff")
            if not header.strip():
                return []
            return next(csv.reader([header], delimiter=source.csv.delimiter))
        kwargs: dict[str, Any] = {"encoding": source.encoding} if source.encoding else {}
        _, meta = READSTAT[source.format](str(path), metadataonly=True, **kwargs)
        return list(meta.column_names)
    except (pl.exceptions.PolarsError, pyreadstat.ReadstatError, UnicodeError, OSError) as err:
        raise DeliveryError(
            source.table,
            None,
            f"a readable {source.format} file ({label_of(path)})",
            _first_line(err),
        ) from None


def check_columns(files: Iterable[Path], source: TableSource) -> None:
    """Raise DeliveryError unless every file of `source` has the contract's columns (but
    those its constants provide)."""
    for path in files:
        names = delivered_columns(path, source)
        table = TABLES[source.table]
        map_columns(names, table, source.columns, label_of(path), False, source.constants)


def _source(
    label: str, frame: pl.LazyFrame, mapping: Mapping[str, str], source: TableSource, n: int
) -> Source:
    """A Source from a scanned file: contract columns selected, constants added, recoded."""
    table = TABLES[source.table]
    raw = _select(frame, mapping, table, replace(source, recode={}, unknown={}))
    counts = recoded_counts(raw, source)
    selected = _select(frame, mapping, table, source)
    return Source(label, selected, n, source.decimal, source.name, counts, raw)


def read_parquet(path: Path, source: TableSource, work_dir: Path) -> Source:
    """A parquet file as a Source (lazy scan)."""
    table, label = TABLES[source.table], label_of(path)
    mapping = map_columns(
        delivered_columns(path, source), table, source.columns, label, True, source.constants
    )
    frame = pl.scan_parquet(path, row_index_name=ROW, row_index_offset=1)
    n_rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    return _source(label, frame, mapping, source, int(n_rows))


def read_csv(path: Path, source: TableSource, work_dir: Path) -> Source:
    """A CSV file as a Source: every column read as text (lazy scan)."""
    table, label = TABLES[source.table], label_of(path)
    text_path = path
    if source.csv.encoding != "utf-8":
        fd, name = tempfile.mkstemp(prefix=f"{path.stem}-", suffix=".utf8.csv", dir=work_dir)
        os.close(fd)
        text_path = transcode(path, source.csv.encoding, Path(name), source.table)

    def scan(**kwargs: Any) -> pl.LazyFrame:
        return pl.scan_csv(
            text_path, separator=source.csv.delimiter, infer_schema=False, encoding="utf8", **kwargs
        )

    try:
        names = scan().collect_schema().names()
        n_rows = scan().select(pl.len()).collect().item()
    except pl.exceptions.PolarsError as err:
        raise DeliveryError(
            source.table, None, f"a readable CSV file with a header ({label})", _first_line(err)
        ) from None
    mapping = map_columns(names, table, source.columns, label, True, source.constants)
    frame = scan(row_index_name=ROW, row_index_offset=1)
    return _source(label, frame, mapping, source, int(n_rows))


def read_readstat(path: Path, source: TableSource, work_dir: Path) -> Source:
    """A SAS (sas7bdat, xpt) or Stata (dta) file as a Source (`fixed_width`, else pyreadstat
    in chunks)."""
    table, label = TABLES[source.table], label_of(path)
    mapping = map_columns(
        delivered_columns(path, source), table, source.columns, label, True, source.constants
    )
    frame = None
    if source.format in fixed_width.FORMATS:
        frame = fixed_width.read(path, source.format, list(mapping), source.encoding)
    if frame is None:
        frame = _pyreadstat_frame(path, source, list(mapping), label)
    frame = frame.with_row_index(ROW, offset=1)
    return _source(label, frame.lazy(), mapping, source, frame.height)


def _pyreadstat_frame(
    path: Path, source: TableSource, columns: list[str], label: str
) -> pl.DataFrame:
    """The delivered `columns` of a SAS or Stata file read by pyreadstat in chunks (Null
    columns when it has no rows); grain: one row per record."""
    kwargs: dict[str, Any] = {"encoding": source.encoding} if source.encoding else {}
    try:
        chunks = [
            chunk
            for chunk, _ in pyreadstat.read_file_in_chunks(
                READSTAT[source.format],
                str(path),
                chunksize=SAS_CHUNK_ROWS,
                usecols=columns,
                output_format="polars",
                **kwargs,
            )
        ]
    except pyreadstat.ReadstatError as err:
        raise DeliveryError(
            source.table, None, f"a readable {source.format} file ({label})", _first_line(err)
        ) from None
    if chunks:
        return pl.concat(chunks, how="vertical_relaxed")
    return pl.DataFrame({d: pl.Series(d, [], pl.Null) for d in columns})


READERS: dict[str, Callable[[Path, TableSource, Path], Source]] = {
    "parquet": read_parquet,
    "csv": read_csv,
    "sas7bdat": read_readstat,
    "xpt": read_readstat,
    "dta": read_readstat,
}


def read_sources(files: Iterable[Path], source: TableSource, work_dir: Path) -> list[Source]:
    """Every file of `source` as a Source, in order."""
    return [READERS[source.format](path, source, work_dir) for path in files]


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
