"""A table delivered as several sources (issue 17): files of different layouts stacked,
a constant per source, value recoding before validation, and what row_counts.json says.

The delivery below is the contract's BASE rows (tests/helpers.py) reshaped as registers
deliver them: the patient register as an outpatient file and an inpatient file without a
care-level column, MiDAS with numeric insured-type codes and extent as a fraction,
LISA-style background with sex as letters. Staged, it must equal the contract-shaped
delivery row for row.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from omegaconf import OmegaConf
from polars.testing import assert_frame_equal

from pipeline.core import config
from pipeline.core.contract import TABLES
from pipeline.core.errors import DeliveryError
from pipeline.stages import stage
from pipeline.stages.stage.spec import delivered_table
from tests.helpers import BASE, expected_frame, text_frame

INSURED = {"1": "anstalld", "2": "anstalld_dag1", "3": "arbetslos", "4": "egenforetagare"}
SEX = {"M": 1, "K": 2}


def _write(root: Path) -> dict[str, dict]:
    """The reshaped delivery on disk; returns data.tables entries for it."""
    delivery = root / "delivery"
    delivery.mkdir(parents=True)
    entries: dict[str, dict] = {}
    for table in ("agi", "fk_handelser"):
        path = delivery / f"{table}.parquet"
        text_frame(table, BASE[table]).write_parquet(path)
        entries[table] = {"path": str(path), "format": "parquet"}
    # MiDAS: insured type as a number, extent as a fraction of full time (floats), one
    # row with an insured type no map covers
    back = {v: k for k, v in INSURED.items()}
    sjp = text_frame(
        "sjukpenning",
        [*BASE["sjukpenning"], ("4", "2019-06-01", "2019-06-09", "100", "F32", "anstalld")],
    )
    sjp = sjp.with_columns(
        pl.col("forsakradtyp").replace_strict({**back, "anstalld": "1"}).cast(pl.Int64),
        (pl.col("omfattning").cast(pl.Float64) / 100).alias("omfattning"),
    ).with_columns(
        pl.when(pl.col("lopnr") == "4")
        .then(9)
        .otherwise(pl.col("forsakradtyp"))
        .alias("forsakradtyp")
    )
    path = delivery / "midas.parquet"
    sjp.rename({"forsakradtyp": "FORSTYP", "omfattning": "OMF"}).write_parquet(path)
    entries["sjukpenning"] = {
        "path": str(path),
        "format": "parquet",
        "columns": {"FORSTYP": "forsakradtyp", "OMF": "omfattning"},
        "recode": {
            "forsakradtyp": {int(k): v for k, v in INSURED.items()},
            "omfattning": {0.25: 25, 0.5: 50, 0.75: 75, 1: 100},
        },
    }
    # the patient register: outpatient contacts (with a care level) and inpatient ones
    # in their own file without one, as CSV in another layout
    contacts = text_frame("vardkontakter", BASE["vardkontakter"])
    outpatient = contacts.filter(pl.col("vardniva") != "sluten")
    inpatient = contacts.filter(pl.col("vardniva") == "sluten").drop("vardniva")
    outpatient.write_parquet(delivery / "ov.parquet")
    inpatient.rename({"lopnr": "LopNr", "datum": "INDATUM", "kva": "OP"}).write_csv(
        delivery / "sv.csv", separator=";"
    )
    entries["vardkontakter"] = {
        "sources": [
            {"name": "oppenvard", "path": str(delivery / "ov.parquet"), "format": "parquet"},
            {
                "name": "slutenvard",
                "path": str(delivery / "sv.csv"),
                "format": "csv",
                "csv": {"delimiter": ";"},
                "columns": {"INDATUM": "datum", "OP": "kva"},
                "constants": {"vardniva": "sluten"},
            },
        ]
    }
    bakgrund = text_frame("bakgrund", BASE["bakgrund"]).with_columns(
        pl.col("kon").replace_strict({"1": "M", "2": "K"})
    )
    bakgrund.write_parquet(delivery / "lisa.parquet")
    entries["bakgrund"] = {
        "path": str(delivery / "lisa.parquet"),
        "format": "parquet",
        "recode": {"kon": SEX},
    }
    entries["regionenkat"] = {
        "path": str(delivery / "none.csv"),
        "format": "csv",
        "required": False,
    }
    return entries


def _hydra(value) -> str:
    """`value` in Hydra's override grammar (quoted strings, {k:v} dicts)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra(v)}" for k, v in value.items()) + "}"
    return f"'{value}'"


def _cfg(root: Path, entries: dict[str, dict]):
    cfg = config.compose([f"paths.staged={root}/staged", f"paths.quarantine={root}/quarantine"])
    for table, entry in entries.items():
        cfg.data.tables[table] = OmegaConf.create(entry)
    return cfg


def test_a_reshaped_delivery_stages_to_the_contract_tables(tmp_path: Path) -> None:
    stage.run(_cfg(tmp_path, _write(tmp_path)))
    for table in ("sjukpenning", "vardkontakter", "agi", "bakgrund", "fk_handelser"):
        staged = pl.read_parquet(tmp_path / "staged" / f"{table}.parquet")
        assert_frame_equal(staged, expected_frame(table))
    counts = json.loads((tmp_path / "staged" / "row_counts.json").read_text())["tables"]
    contacts = counts["vardkontakter"]
    assert contacts["rows_in"] == 3 and contacts["staged"] == 3
    assert [s["rows_in"] for s in contacts["sources"].values()] == [2, 1]
    assert list(contacts["sources"]) == ["oppenvard", "slutenvard"]
    # the insured-type map changed the 3 coded rows; 9 has no mapping and is quarantined
    sjp = counts["sjukpenning"]
    assert sjp["sources"][""]["recoded"] == {"forsakradtyp": 3, "omfattning": 4}
    assert (sjp["rows_in"], sjp["staged"], sjp["by_reason"]["invalid_code"]) == (4, 3, 1)
    quarantine = pl.read_parquet(tmp_path / "quarantine" / "sjukpenning.parquet")
    (row,) = quarantine.select("source_row", "reason", "forsakradtyp", "detail").rows()
    assert row[:3] == (4, "invalid_code", "9") and "9" in row[3]
    assert counts["bakgrund"]["sources"][""]["recoded"] == {"kon": 3}


def test_quarantine_names_the_source_file_of_each_row(tmp_path: Path) -> None:
    entries = _write(tmp_path)
    bad = tmp_path / "delivery" / "sv.csv"
    bad.write_text(bad.read_text() + "5;not a date;GC001;14;privat\n")
    stage.run(_cfg(tmp_path, entries))
    quarantine = pl.read_parquet(tmp_path / "quarantine" / "vardkontakter.parquet")
    (row,) = quarantine.select("source_file", "source_row", "reason", "vardniva").rows()
    assert row[0].endswith("sv.csv") and row[1] == 2 and row[2] == "unparseable_date"
    assert row[3] == "sluten"  # the constant is the row's value


def test_recoding_never_adds_or_drops_a_row_and_a_partial_map_keeps_contract_values(
    tmp_path: Path,
) -> None:
    entries = _write(tmp_path)
    # a map of one code only: the other delivered letters stay as delivered (and fail)
    entries["bakgrund"]["recode"] = {"kon": {"M": 1}}
    stage.run(_cfg(tmp_path, entries))
    counts = json.loads((tmp_path / "staged" / "row_counts.json").read_text())["tables"]
    entry = counts["bakgrund"]
    assert entry["rows_in"] == entry["staged"] + entry["quarantined"] == 3
    assert entry["by_reason"]["invalid_code"] == 2  # the two K rows
    assert entry["sources"][""]["recoded"] == {"kon": 1}


@pytest.mark.parametrize(
    ("entry", "column"),
    [
        ({"path": "x.csv", "format": "csv", "recode": {"sex": {"M": 1}}}, "sex"),
        ({"path": "x.csv", "format": "csv", "constants": {"care": "sluten"}}, "care"),
        ({"sources": [{"path": "a.csv", "format": "csv", "level": "x"}]}, None),
    ],
)
def test_a_map_or_constant_naming_an_unknown_column_is_a_delivery_error(entry, column) -> None:
    with pytest.raises(DeliveryError) as err:
        delivered_table("vardkontakter", entry)
    assert err.value.table == "vardkontakter" and err.value.column == column


def test_a_missing_source_file_stops_the_cli_with_one_line_and_exit_2(tmp_path: Path) -> None:
    entries = _write(tmp_path)
    (tmp_path / "delivery" / "sv.csv").unlink()
    overrides = [f"paths.staged={tmp_path}/staged", f"paths.quarantine={tmp_path}/quarantine"]
    sjp = entries["sjukpenning"]
    overrides += [
        f"data.tables.sjukpenning.path='{sjp['path']}'",
        "data.tables.sjukpenning.format=parquet",
        "++data.tables.sjukpenning.columns={FORSTYP:forsakradtyp,OMF:omfattning}",
        "~data.tables.vardkontakter.path",
        "++data.tables.vardkontakter.sources=["
        + ",".join(
            "{" + ",".join(f"{k}:{_hydra(v)}" for k, v in source.items()) + "}"
            for source in entries["vardkontakter"]["sources"]
        )
        + "]",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "stage", *overrides],
        capture_output=True,
        text=True,
        cwd=config.ROOT,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "vardkontakter" in lines[0] and "sv.csv" in lines[0]
    assert not (tmp_path / "staged" / "vardkontakter.parquet").exists()


def test_the_contract_tables_keep_their_single_source_form() -> None:
    table = delivered_table("agi", {"path": "agi_*.csv", "format": "csv"})
    assert [s.name for s in table.sources] == [""] and table.required
    assert TABLES["agi"].names[0] == "lopnr"


def test_a_gc001_contact_without_regi_or_care_level_is_kept_as_unknown_and_counted(
    tmp_path: Path,
) -> None:
    entries = _write(tmp_path)
    contacts = text_frame(
        "vardkontakter",
        [*BASE["vardkontakter"], ("7", "2019-06-01", "GC001", "12", None, " ")],
    )
    path = tmp_path / "delivery" / "contacts.parquet"
    contacts.write_parquet(path)
    entries["vardkontakter"] = {
        "path": str(path),
        "format": "parquet",
        "unknown": {"regi": "okand", "vardniva": "okand"},
    }
    cfg = _cfg(tmp_path, entries)
    cfg.codes.regi = ["offentlig", "privat", "okand"]
    cfg.codes.vardniva = ["primarvard", "specialiserad_oppen", "sluten", "okand"]
    stage.run(cfg)
    staged = pl.read_parquet(tmp_path / "staged" / "vardkontakter.parquet")
    kept = staged.filter(pl.col("lopnr") == 7).row(0, named=True)
    assert (kept["kva"], kept["vardniva"], kept["regi"]) == ("GC001", "okand", "okand")
    counts = json.loads((tmp_path / "staged" / "row_counts.json").read_text())["tables"]
    entry = counts["vardkontakter"]
    assert (entry["rows_in"], entry["staged"], entry["quarantined"]) == (4, 4, 0)
    assert entry["sources"][""]["kept_as_unknown"] == {"regi": 1, "vardniva": 1}


def test_an_unknown_value_outside_its_code_list_is_a_delivery_error(tmp_path: Path) -> None:
    entries = _write(tmp_path)
    entries["vardkontakter"]["unknown"] = {"regi": "okand"}  # not in codes.regi
    with pytest.raises(DeliveryError) as err:
        stage.run(_cfg(tmp_path, entries))
    assert (err.value.table, err.value.column) == ("vardkontakter", "regi")
    assert "codes.regi" in str(err.value)


def test_a_contact_without_region_is_kept_in_a_configured_unknown_region(tmp_path: Path) -> None:
    entries = _write(tmp_path)
    contacts = text_frame(
        "vardkontakter",
        [*BASE["vardkontakter"], ("7", "2019-06-01", "GC001", None, "primarvard", "privat")],
    )
    path = tmp_path / "delivery" / "contacts.parquet"
    contacts.write_parquet(path)
    entries["vardkontakter"] = {"path": str(path), "format": "parquet", "unknown": {"region": "0"}}
    cfg = _cfg(tmp_path, entries)
    cfg.codes.regions["00"] = "Okänd region"
    stage.run(cfg)
    staged = pl.read_parquet(tmp_path / "staged" / "vardkontakter.parquet")
    assert staged.filter(pl.col("lopnr") == 7)["region"].to_list() == ["00"]
