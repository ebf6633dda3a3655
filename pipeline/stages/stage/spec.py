"""The `stage` stage's slice of the configuration, as typed values.

`StageSpec.from_cfg(cfg)` reads `cfg.data.tables`, `cfg.codes` and `cfg.paths`
once; everything below it takes these dataclasses, never the config tree.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.core import config
from pipeline.core.contract import TABLES, Kind, Table
from pipeline.core.errors import DeliveryError

FORMATS: tuple[str, ...] = ("parquet", "csv", "sas7bdat", "xpt", "dta")


@dataclass(frozen=True)
class CsvOptions:
    """How a CSV delivery is written: field delimiter, text encoding, decimal mark."""

    delimiter: str = ","
    encoding: str = "utf-8"  # Python codec name, normalised (utf-8, cp1252, iso8859-1)
    decimal: str = "."


@dataclass(frozen=True)
class TableSource:
    """One source of a contract table: files of one layout (an entry of `data.tables`, or
    of its `sources` list), how to read them and what to add or recode."""

    table: str
    paths: tuple[str, ...]  # files or globs, as configured
    format: str
    required: bool = True
    columns: Mapping[str, str] = field(default_factory=dict)  # delivery name -> contract name
    csv: CsvOptions = field(default_factory=CsvOptions)
    encoding: str | None = None  # text encoding of sas7bdat/xpt/dta files (None = as stored)
    name: str = ""  # the source's name in row_counts.json ("" = the table's only source)
    # contract column -> its value on every row of this source (the care level of a file)
    constants: Mapping[str, str] = field(default_factory=dict)
    # contract column -> {delivered value as text: contract value as text}
    recode: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # contract column -> the value staged where the delivered one is missing (instead of
    # quarantining the row: a contact without `regi` keeps its GC001)
    unknown: Mapping[str, str] = field(default_factory=dict)

    @property
    def decimal(self) -> str:
        """Decimal mark of numbers delivered as text ("." unless a CSV says otherwise)."""
        return self.csv.decimal if self.format == "csv" else "."


@dataclass(frozen=True)
class CodeLists:
    """Accepted values per code list key (`cfg.codes`), plus the region codes."""

    regions: tuple[str, ...]
    lists: Mapping[str, tuple[Any, ...]]

    @classmethod
    def from_mapping(cls, codes: Mapping[str, Any] | DictConfig) -> CodeLists:
        """Code lists from `cfg.codes` (or conf/codes/*.yaml loaded as a mapping)."""
        if isinstance(codes, DictConfig):
            codes = OmegaConf.to_container(codes, resolve=True)  # type: ignore[assignment]
        regions = tuple(sorted(normalise_region_key(k) for k in codes["regions"]))
        keys = {c.codes for t in TABLES.values() for c in t.columns if c.codes}
        missing = sorted(k for k in keys if k not in codes)
        if missing:
            raise DeliveryError("codes", missing[0], "a code list in conf/codes", "none")
        return cls(regions=regions, lists={k: tuple(codes[k]) for k in sorted(keys)})

    def values(self, key: str, kind: Kind) -> tuple[Any, ...]:
        """The code list `key` as the staged dtype needs it: ints or strings."""
        raw = self.lists[key]
        if kind is Kind.EXTENT or key in INTEGER_CODE_LISTS:
            return tuple(int(v) for v in raw)
        return tuple(str(v) for v in raw)


# Code lists whose staged column is an integer (contract dtypes Int8/Int16).
INTEGER_CODE_LISTS: frozenset[str] = frozenset(
    c.codes for t in TABLES.values() for c in t.columns if c.codes and c.dtype.is_integer()
)


def normalise_region_key(key: Any) -> str:
    """A region code as the stage compares it: two digits, zero-padded ("1" -> "01")."""
    text = str(key).strip()
    return text.zfill(2) if text.isdigit() and len(text) == 1 else text


def normalise_encoding(name: str | None, table: str) -> str | None:
    """The codec name of `name` (e.g. "latin-1" -> "iso8859-1"); DeliveryError if unknown."""
    if name is None:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise DeliveryError(table, None, "a known text encoding", repr(name)) from None


def _paths(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | Path):
        return (str(value),)
    if isinstance(value, Sequence):
        return tuple(str(v) for v in value)
    raise TypeError(f"path must be a string or a list, got {type(value).__name__}")


@dataclass(frozen=True)
class DeliveredTable:
    """A contract table as delivered: one source or several (read in order, stacked)."""

    table: str
    required: bool
    sources: tuple[TableSource, ...]


def code_text(value: Any) -> str:
    """A configured or delivered code as the recoding compares it: text, stripped, a whole
    number without decimals (1.0 -> "1").

    >>> [code_text(v) for v in (1, 1.0, 0.25, " K ", True)]
    ['1', '1', '0.25', 'K', 'True']
    """
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


SOURCE_KEYS = frozenset(
    {
        "path", "format", "required", "columns", "csv", "encoding", "name", "constants",
        "recode", "unknown",
    }
)  # fmt: skip


def delivered_table(name: str, entry: Mapping[str, Any]) -> DeliveredTable:
    """One `data.tables.<name>` entry: a source, or `sources:` (a list of sources whose
    unset keys come from the table's entry; `columns`, `constants` and `recode` merge)."""
    items = entry.get("sources")
    if items is None:
        source = table_source(name, entry)
        return DeliveredTable(name, source.required, (source,))
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise DeliveryError(name, None, "sources: a non-empty list of sources", repr(items))
    shared = {k: v for k, v in entry.items() if k != "sources"}
    sources = []
    for i, item in enumerate(items):
        unknown = sorted(set(item) - SOURCE_KEYS)
        if unknown:
            keys = ", ".join(sorted(SOURCE_KEYS))
            raise DeliveryError(name, None, f"source keys among {keys}", repr(unknown[0]))
        merged = {**shared, **item, "name": str(item.get("name", f"source{i + 1}"))}
        for key in ("columns", "constants", "recode", "unknown"):
            merged[key] = {**(shared.get(key) or {}), **(item.get(key) or {})}
        sources.append(table_source(name, merged))
    names = [s.name for s in sources]
    if len(set(names)) < len(names):
        raise DeliveryError(name, None, "sources with distinct names", ", ".join(names))
    return DeliveredTable(name, bool(entry.get("required", True)), tuple(sources))


def table_source(name: str, entry: Mapping[str, Any]) -> TableSource:
    """One source of `data.tables.<name>` as a TableSource; DeliveryError on a bad entry."""
    if name not in TABLES:
        raise DeliveryError(name, None, f"a contract table ({', '.join(TABLES)})", "unknown")
    fmt = str(entry.get("format", "parquet")).lower()
    if fmt not in FORMATS:
        raise DeliveryError(name, None, f"format one of {', '.join(FORMATS)}", repr(fmt))
    if entry.get("path") in (None, ""):
        raise DeliveryError(name, None, "a path (file, glob or list)", "none configured")
    table: Table = TABLES[name]
    columns = {str(k): str(v) for k, v in (entry.get("columns") or {}).items()}
    for delivered, contract_name in columns.items():
        if contract_name not in table.names:
            raise DeliveryError(
                name,
                contract_name,
                f"a contract column ({', '.join(table.names)}) as the target of {delivered!r}",
                "unknown column",
            )
    csv = entry.get("csv") or {}
    csv_options = CsvOptions(
        delimiter=str(csv.get("delimiter", ",")),
        encoding=normalise_encoding(str(csv.get("encoding", "utf-8")), name) or "utf-8",
        decimal=str(csv.get("decimal", ".")),
    )
    if len(csv_options.delimiter) != 1 or csv_options.decimal not in {".", ","}:
        raise DeliveryError(name, None, 'a one-character delimiter and decimal "." or ","')
    constants = {str(k): code_text(v) for k, v in (entry.get("constants") or {}).items()}
    recode = {
        str(column): {code_text(k): code_text(v) for k, v in (values or {}).items()}
        for column, values in (entry.get("recode") or {}).items()
    }
    unknown = {str(k): code_text(v) for k, v in (entry.get("unknown") or {}).items()}
    for what, targets in (("constants", constants), ("recode", recode), ("unknown", unknown)):
        for column in targets:
            if column not in table.names:
                raise DeliveryError(
                    name,
                    column,
                    f"a contract column ({', '.join(table.names)}) in {what}",
                    "unknown column",
                )
    return TableSource(
        table=name,
        paths=_paths(entry["path"]),
        format=fmt,
        required=bool(entry.get("required", True)),
        columns=columns,
        csv=csv_options,
        encoding=normalise_encoding(entry.get("encoding"), name),
        name=str(entry.get("name", "")),
        constants=constants,
        recode=recode,
        unknown=unknown,
    )


def check_unknown_values(tables: Sequence[DeliveredTable], codes: CodeLists) -> None:
    """DeliveryError unless each configured unknown value is a valid code of its column
    (a code list, or the region codes), else the rows it keeps would be quarantined."""
    for delivered in tables:
        columns = {c.name: c for c in TABLES[delivered.table].columns}
        for source in delivered.sources:
            for name, value in source.unknown.items():
                column = columns[name]
                if column.kind is Kind.REGION:
                    key, allowed = "regions", list(codes.regions)
                    value = normalise_region_key(value)
                elif column.kind in (Kind.CODE, Kind.EXTENT) and column.codes is not None:
                    key = column.codes
                    allowed = [str(v) for v in codes.values(column.codes, column.kind)]
                else:
                    raise DeliveryError(
                        delivered.table, name, "an unknown value only for a coded column", value
                    )
                if value not in allowed:
                    raise DeliveryError(
                        delivered.table,
                        name,
                        f"an unknown value listed in codes.{key} ({', '.join(allowed)})",
                        repr(value),
                    )


@dataclass(frozen=True)
class StageSpec:
    """Everything `stage` reads from the configuration."""

    tables: tuple[DeliveredTable, ...]
    codes: CodeLists
    staged_dir: Path
    quarantine_dir: Path

    @classmethod
    def from_cfg(cls, cfg: DictConfig) -> StageSpec:
        """Reads `cfg.data.tables`, `cfg.codes`, `cfg.paths.staged`, `cfg.paths.quarantine`."""
        tables = OmegaConf.to_container(cfg.data.tables, resolve=True)
        assert isinstance(tables, dict)
        missing = [t for t in TABLES if t not in tables]
        if missing:
            raise DeliveryError(missing[0], None, "an entry under data.tables", "none")
        delivered = tuple(delivered_table(t, tables[t]) for t in TABLES)
        codes = CodeLists.from_mapping(cfg.codes)
        check_unknown_values(delivered, codes)
        return cls(
            tables=delivered,
            codes=codes,
            staged_dir=config.resolve_path(cfg.paths.staged),
            quarantine_dir=config.resolve_path(cfg.paths.quarantine),
        )
