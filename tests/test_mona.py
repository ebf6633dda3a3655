"""The MONA-shaped delivery (issue 17): the synthetic delivery written as researchers
receive it (`synth.shape=mona`: several files per register, SAS transport, Stata and
cp1252 CSV, the registers' names and codes) and read by `conf/data/mona_example.yaml`
alone stages to the same tables as the contract-shaped one, row for row."""

from __future__ import annotations

import json
import shutil
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


def _preflight(base: Path, *overrides: str) -> int:
    return main(
        [
            "preflight",
            "data=mona_example",
            f"synth.out_dir={base}/delivery",
            f"paths.outputs={base}/outputs",
            *overrides,
        ]
    )


def test_preflight_reports_each_value_no_map_covers(both):
    _, mona = both
    assert _preflight(mona) == 0
    report = json.loads((mona / "outputs" / "preflight" / "preflight.json").read_text())
    tables = {t["table"]: t for t in report["tables"]}
    assert all(t["verdict"] == "ready" for t in tables.values())
    unmapped = {
        (t, v["column"], v["value"]) for t, e in tables.items() for v in e["values_no_map_covers"]
    }
    # the planted bad codes (pipeline/stages/synth/corrupt.py) and nothing else
    assert {
        ("sjukpenning", "forsakradtyp", v) for v in ("Anstalld", "okand", "arbetslös")
    } <= unmapped
    assert {("fk_handelser", "handelse", v) for v in ("mote", "Avstamningsmote")} <= unmapped
    assert ("bakgrund", "kon", "3") in unmapped and ("bakgrund", "sun2000niva", "9") in unmapped
    valid = {("sjukpenning", "forsakradtyp", "1"), ("bakgrund", "kon", "M")}
    assert not valid & unmapped
    # small counts are never printed as such
    values = pl.read_csv(mona / "outputs" / "preflight" / "values.csv", infer_schema=False)
    shown = values.filter(pl.col("rows") != "<5")["rows"].cast(pl.Int64)
    assert (shown >= 5).all() or (shown == 0).all()
    contacts = tables["vardkontakter"]
    assert [s["source"] for s in contacts["sources"]] == [
        "primarvard",
        "slutenvard",
        "specialiserad_oppenvard",
    ]
    assert contacts["sources"][1]["columns"]["vardniva"] == "constant 'sluten'"
    assert contacts["would_quarantine"]["invalid_code"] != "0"


def test_preflight_blocks_with_one_line_and_exit_2_when_a_required_file_is_missing(
    both, tmp_path, caplog
):
    _, mona = both
    copy = tmp_path / "copy"
    shutil.copytree(mona / "delivery", copy / "delivery")
    (copy / "delivery" / "par" / "par_sv.xpt").unlink()
    caplog.clear()
    assert _preflight(copy) == 2
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "vardkontakter" in errors[0].getMessage()
    assert "par_sv.xpt" in errors[0].getMessage()
    report = json.loads((copy / "outputs" / "preflight" / "preflight.json").read_text())
    verdicts = {t["table"]: t["verdict"] for t in report["tables"]}
    assert verdicts["vardkontakter"] == "blocked" and verdicts["agi"] == "ready"


def test_a_recode_map_naming_an_unknown_column_stops_preflight_with_exit_2(both):
    _, mona = both
    assert _preflight(mona, "++data.tables.agi.recode={belopp:{a:b}}") == 2
