"""Running the DuckDB SQL in `sql/`: files read as they are, relations and $params passed in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

Relation = pl.DataFrame | pl.LazyFrame | Path


def _connect(relations: dict[str, Relation]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with each relation registered under its name (parquet as views)."""
    con = duckdb.connect()
    for rel_name, rel in relations.items():
        if isinstance(rel, Path):
            con.read_parquet(str(rel)).create_view(rel_name)
        else:
            con.register(rel_name, rel.collect() if isinstance(rel, pl.LazyFrame) else rel)
    return con


def _text(name: str) -> str:
    """The text of `sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def query(name: str, params: dict[str, Any], **relations: Relation) -> pl.DataFrame:
    """Result of `sql/<name>.sql` as a polars frame, `relations` registered under their names.

    A relation is a polars frame or a parquet path. The SQL is never built from
    strings: parameters go in as DuckDB `$name` parameters.
    """
    con = _connect(relations)
    try:
        return con.sql(_text(name), params=params).pl()
    finally:
        con.close()


def to_parquet(name: str, params: dict[str, Any], path: Path, **relations: Relation) -> Path:
    """Write the result of `sql/<name>.sql` to `path` (atomically, zstd), never through Python."""
    from pipeline.core.io import atomic_path

    con = _connect(relations)
    try:
        with atomic_path(path) as tmp:
            con.sql(_text(name), params=params).write_parquet(str(tmp), compression="zstd")
        return path
    finally:
        con.close()
