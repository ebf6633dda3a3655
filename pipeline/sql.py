"""Running the DuckDB SQL in `sql/`: files read as they are, relations and $params passed in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def query(
    name: str, params: dict[str, Any], **relations: pl.DataFrame | pl.LazyFrame | Path
) -> pl.DataFrame:
    """Result of `sql/<name>.sql` as a polars frame, with `relations` registered under their names.

    A relation is a polars frame or a parquet path. The SQL is never built from
    strings: parameters go in as DuckDB `$name` parameters.
    """
    con = duckdb.connect()
    try:
        for rel_name, rel in relations.items():
            if isinstance(rel, Path):
                con.read_parquet(str(rel)).create_view(rel_name)
            else:
                con.register(rel_name, rel.collect() if isinstance(rel, pl.LazyFrame) else rel)
        text = (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
        return con.sql(text, params=params).pl()
    finally:
        con.close()
