"""The same delivery as parquet, Swedish CSV, SAS XPORT and Stata gives the same staged tables.

One small delivery (all six tables, valid rows, code variants and a few bad
rows) is written in each format under tmp_path and staged with `stage.run`.
The CSV follows Swedish conventions: `;` between fields, decimal comma in the
amounts, cp1252 text (civilstand `Ä`), dates `YYYYMMDD` in some tables. The
XPORT files (version 5) need 8-character upper-case column names, so they are
read through a column map, which also tests the mapping.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pyreadstat
import pytest
from omegaconf import DictConfig, OmegaConf
from polars.testing import assert_frame_equal

from pipeline.core import config
from pipeline.core.contract import TABLES
from pipeline.stages import stage

D = dt.date
# Typed delivery: valid rows, code variants to be staged, and bad rows.
DELIVERY: dict[str, list[tuple[Any, ...]]] = {
    "sjukpenning": [
        (1, D(2019, 1, 1), D(2019, 1, 31), 100, "F43.8", "anstalld"),
        (2, D(2019, 3, 1), D(2019, 3, 15), 50, "m54", "arbetslos"),
        (None, D(2019, 3, 1), D(2019, 3, 15), 50, "M54", "arbetslos"),  # null_key
        (3, D(2019, 5, 2), D(2019, 5, 1), 25, None, "ovrig"),  # end_before_start
        (4, D(2019, 5, 1), D(2019, 5, 9), 30, "F32", "ovrig"),  # invalid_extent
        (5, D(2019, 5, 1), D(2019, 5, 9), 75, "F32", "Anstalld"),  # invalid_code
        (1, D(2019, 1, 1), D(2019, 1, 31), 100, "f438", "anstalld"),  # exact_duplicate
    ],
    "vardkontakter": [
        (1, D(2019, 1, 5), "gc001 ", "1", "primarvard", "offentlig"),
        (2, D(2019, 2, 10), None, "14", "sluten", "privat"),
        (3, D(2019, 3, 1), "DV077  AW026", "99", "sluten", "privat"),  # unknown_region
        (4, None, "GC001", "25", "sluten", "privat"),  # unparseable_date
    ],
    "agi": [
        (1, 201901, 555, 25000),
        (1, 201901, 556, -300),
        (2, 201913, 555, 100),  # invalid_period
        (2, 201912, 555, None),  # invalid_value
        (1, 201901, 555, 25000),  # exact_duplicate
    ],
    "bakgrund": [
        (1, 2019, 2, 1980, "sverige", "G", "5", "1"),
        (2, 2019, 1, 1975, "eu", "Ä", None, "14"),
        (3, 2019, 3, 1975, "eu", "Ä", "2", "14"),  # invalid_code
        (4, 2019, 1, 1975, "eu", "OG", "2", "26"),  # unknown_region
    ],
    "fk_handelser": [
        (1, D(2019, 2, 1), "avstamningsmote"),
        (2, D(2019, 3, 1), "Sassam"),  # invalid_code
    ],
    "regionenkat": [("01", 2019, 12), ("14", 2019, None), ("3", 2020, 0), ("99", 2020, 1)],
}
EXPECTED_REASONS: dict[str, list[tuple[int, str]]] = {
    "sjukpenning": [
        (3, "null_key"),
        (4, "end_before_start"),
        (5, "invalid_extent"),
        (6, "invalid_code"),
        (7, "exact_duplicate"),
    ],
    "vardkontakter": [(3, "unknown_region"), (4, "unparseable_date")],
    "agi": [(3, "invalid_period"), (4, "invalid_value"), (5, "exact_duplicate")],
    "bakgrund": [(3, "invalid_code"), (4, "unknown_region")],
    "fk_handelser": [(2, "invalid_code")],
    "regionenkat": [(4, "unknown_region")],
}
# Delivered dtypes: the contract's (region codes are text).
TYPED: dict[str, dict[str, pl.DataType]] = {t: TABLES[t].schema for t in DELIVERY}
COMPACT_DATES = {"vardkontakter"}  # CSV dates as YYYYMMDD here, YYYY-MM-DD elsewhere
AMOUNTS = {"kontant_bruttolon"}  # CSV amounts with decimal comma ("25000,00")


def typed(table: str) -> pl.DataFrame:
    """The delivery table with the contract's dtypes."""
    return pl.DataFrame([list(r) for r in DELIVERY[table]], schema=TYPED[table], orient="row")


def short_names(table: str) -> dict[str, str]:
    """Contract name -> upper-case XPORT v5 name (at most 8 characters)."""
    return {n: n.replace("_", "")[:8].upper() for n in TABLES[table].names}


def write_csv_cp1252(frame: pl.DataFrame, table: str, path: Path) -> None:
    text = frame.with_columns(
        [
            pl.col(c).dt.strftime("%Y%m%d" if table in COMPACT_DATES else "%Y-%m-%d")
            for c, t in frame.schema.items()
            if t == pl.Date
        ]
        + [pl.format("{},00", pl.col(c)).alias(c) for c in frame.columns if c in AMOUNTS]
    ).write_csv(separator=";")
    path.write_bytes(text.encode("cp1252"))


def write_delivery(fmt: str, root: Path) -> dict[str, Any]:
    """Write DELIVERY in `fmt` under `root`; returns the `data.tables` config for it."""
    root.mkdir(parents=True)
    tables: dict[str, Any] = {}
    for table in DELIVERY:
        frame = typed(table)
        entry: dict[str, Any] = {"format": fmt, "required": True, "columns": {}}
        path = root / f"{table}.{fmt}"
        if fmt == "parquet":
            frame.write_parquet(path)
        elif fmt == "csv":
            write_csv_cp1252(frame, table, path)
            entry["csv"] = {"delimiter": ";", "encoding": "cp1252", "decimal": ","}
        elif fmt == "xpt":
            names = short_names(table)
            pyreadstat.write_xport(
                frame.rename(names), str(path), file_format_version=5, table_name="DATA"
            )
            # the map's keys in mixed case: names are matched case-insensitively
            entry["columns"] = {short.capitalize(): name for name, short in names.items()}
        elif fmt == "dta":
            pyreadstat.write_dta(frame, str(path))
        entry["path"] = str(path)
        tables[table] = entry
    return tables


def stage_cfg(tables: dict[str, Any], out: Path) -> DictConfig:
    return OmegaConf.create(
        {
            "data": {"tables": tables},
            "codes": OmegaConf.load(config.CONF_DIR / "codes" / "default.yaml"),
            "paths": {"staged": str(out / "staged"), "quarantine": str(out / "quarantine")},
        }
    )


@pytest.fixture(scope="module")
def staged_by_format(tmp_path_factory) -> dict[str, Path]:
    """Stage the delivery once per format; returns the output dir per format."""
    out = {}
    for fmt in ("parquet", "csv", "xpt", "dta"):
        root = tmp_path_factory.mktemp(fmt)
        stage.run(stage_cfg(write_delivery(fmt, root / "delivery"), root))
        out[fmt] = root
    return out


@pytest.mark.parametrize("fmt", ["csv", "xpt", "dta"])
@pytest.mark.parametrize("table", list(DELIVERY))
def test_formats_give_identical_staged_tables(staged_by_format, fmt: str, table: str) -> None:
    reference = pl.read_parquet(staged_by_format["parquet"] / "staged" / f"{table}.parquet")
    other = pl.read_parquet(staged_by_format[fmt] / "staged" / f"{table}.parquet")
    assert_frame_equal(other, reference)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "xpt", "dta"])
@pytest.mark.parametrize("table", list(DELIVERY))
def test_formats_give_the_same_quarantine_reasons(staged_by_format, fmt: str, table: str) -> None:
    quarantine = pl.read_parquet(staged_by_format[fmt] / "quarantine" / f"{table}.parquet")
    assert quarantine.select("source_row", "reason").rows() == EXPECTED_REASONS[table]


def test_staged_values_after_normalisation(staged_by_format) -> None:
    staged = staged_by_format["csv"] / "staged"
    vk = pl.read_parquet(staged / "vardkontakter.parquet")
    assert vk.select("kva", "region").rows() == [("GC001", "01"), (None, "14")]
    bg = pl.read_parquet(staged / "bakgrund.parquet")
    assert bg.select("civilstand", "sun2000niva", "lan").rows() == [
        ("G", "5", "01"),
        ("Ä", None, "14"),
    ]
    agi = pl.read_parquet(staged / "agi.parquet")
    assert agi["kontant_bruttolon"].to_list() == [25000, -300]


def test_csv_quarantine_keeps_the_delivered_text(staged_by_format) -> None:
    q = pl.read_parquet(staged_by_format["csv"] / "quarantine" / "agi.parquet")
    assert q.select("period", "kontant_bruttolon").rows() == [
        ("201913", "100,00"),
        ("201912", None),
        ("201901", "25000,00"),
    ]
    counts = json.loads((staged_by_format["csv"] / "staged" / "row_counts.json").read_text())
    assert counts["tables"]["agi"]["rows_in"] == 5


def test_glob_over_several_csv_files(tmp_path: Path) -> None:
    tables = write_delivery("csv", tmp_path / "delivery")
    agi = typed("agi")
    (tmp_path / "delivery" / "agi.csv").unlink()
    write_csv_cp1252(agi.head(2), "agi", tmp_path / "delivery" / "agi_2019.csv")
    write_csv_cp1252(agi.tail(3), "agi", tmp_path / "delivery" / "agi_2020.csv")
    tables["agi"]["path"] = str(tmp_path / "delivery" / "agi_20*.csv")
    stage.run(stage_cfg(tables, tmp_path))
    q = pl.read_parquet(tmp_path / "quarantine" / "agi.parquet")
    files = [
        (Path(f).name, r, reason)
        for f, r, reason in q.select("source_file", "source_row", "reason").rows()
    ]
    assert files == [
        ("agi_2020.csv", 1, "invalid_period"),
        ("agi_2020.csv", 2, "invalid_value"),
        ("agi_2020.csv", 3, "exact_duplicate"),
    ]
    assert q["detail"][2].endswith("row 1 of " + str(tmp_path / "delivery" / "agi_2019.csv"))
    counts = json.loads((tmp_path / "staged" / "row_counts.json").read_text())["tables"]["agi"]
    assert [Path(f).name for f in counts["files"]] == ["agi_2019.csv", "agi_2020.csv"]
    assert list(counts["rows_in_by_file"].values()) == [2, 3]
    assert_frame_equal(
        pl.read_parquet(tmp_path / "staged" / "agi.parquet"),
        pl.DataFrame(
            [(1, 201901, 555, 25000), (1, 201901, 556, -300)],
            schema=TABLES["agi"].schema,
            orient="row",
        ),
    )
