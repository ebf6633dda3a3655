"""The MONA-shaped delivery (issue 17): the synthetic delivery written as researchers
receive it (`synth.shape=mona`: several files per register, SAS transport, Stata and
cp1252 CSV, the registers' names and codes) and read by `conf/data/mona_example.yaml`
alone stages to the same tables as the contract-shaped one, row for row."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline.__main__ import main
from pipeline.core.contract import TABLES


def _run(base: Path, *overrides: str) -> Path:
    paths = [
        f"synth.out_dir={base}/delivery",
        f"synth.truth_dir={base}/truth",
        f"paths.staged={base}/staged",
        f"paths.quarantine={base}/quarantine",
        "synth.size=tiny",
        *overrides,
    ]
    assert main(["synth", *paths]) == 0
    assert main(["stage", *paths]) == 0
    return base


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> tuple[Path, Path]:
    contract = _run(tmp_path_factory.mktemp("contract"))
    mona = _run(tmp_path_factory.mktemp("mona"), "synth.shape=mona", "data=mona_example")
    return contract, mona


def test_the_mona_shaped_delivery_is_delivered_as_registers_deliver(both):
    _, mona = both
    names = sorted(
        p.relative_to(mona / "delivery").as_posix() for p in (mona / "delivery").rglob("*.*")
    )
    assert {"fk/midas_sjp.dta", "par/par_ov.xpt", "par/par_sv.xpt", "scb/lisa.dta"} <= set(names)
    assert sum(n.startswith("pv/pv_") for n in names) >= 5  # one CSV per region
    assert "pv/pv_3.csv" in names  # county code without its leading zero
    text = (mona / "delivery" / "fk" / "handelser.csv").read_bytes()
    assert text.splitlines()[0] == b"LopNr;DATUM;HANDELSETYP"


@pytest.mark.parametrize("table", list(TABLES))
def test_it_stages_to_the_contract_shaped_tables_row_for_row(both, table):
    contract, mona = both
    assert_frame_equal(
        pl.read_parquet(mona / "staged" / f"{table}.parquet"),
        pl.read_parquet(contract / "staged" / f"{table}.parquet"),
    )

    def reasons(base: Path) -> list[tuple[str, int]]:
        quarantine = pl.read_parquet(base / "quarantine" / f"{table}.parquet")
        return sorted(quarantine["reason"].value_counts().rows())

    assert reasons(mona) == reasons(contract)
    counts = {
        base: json.loads((base / "staged" / "row_counts.json").read_text())["tables"][table]
        for base in (contract, mona)
    }
    assert counts[mona]["rows_in"] == counts[contract]["rows_in"]


def test_row_counts_say_how_many_values_each_map_changed(both):
    _, mona = both
    tables = json.loads((mona / "staged" / "row_counts.json").read_text())["tables"]
    contacts = tables["vardkontakter"]["sources"]
    assert list(contacts) == ["primarvard", "slutenvard", "specialiserad_oppenvard"]
    assert sum(s["rows_in"] for s in contacts.values()) == tables["vardkontakter"]["rows_in"]
    recoded = tables["bakgrund"]["sources"][""]["recoded"]
    assert set(recoded) == {"kon", "fodelseland", "sun2000niva"} and min(recoded.values()) > 0
