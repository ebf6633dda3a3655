"""Stage `stage`: one test per bad-row kind, normalisation, duplicates, errors, outputs.

Most tests stage hand-built text frames in memory (`stage_frames`); the last
ones run `pipeline.stages.stage.run` and the CLI on files under tmp_path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from omegaconf import OmegaConf
from polars.testing import assert_frame_equal

from pipeline.core import config
from pipeline.core.contract import REASON_ORDER, TABLES, Reason
from pipeline.core.errors import DeliveryError
from pipeline.stages import stage
from pipeline.stages.stage.read import map_columns, resolve_files
from pipeline.stages.stage.spec import table_source
from pipeline.stages.stage.table import quarantine_schema
from tests.helpers import (
    BASE,
    CODES,
    documented_columns,
    expected_frame,
    quarantined,
    row,
    stage_named,
    stage_rows,
    text_frame,
)

EXTENT = "one of 25,50,75,100"
REGIONS = "one of " + ",".join(CODES.regions)
DATE = "a calendar date YYYY-MM-DD or YYYYMMDD"
PERIOD = "a month YYYYMM (190001-210012, month 01-12)"

SP, VK, AGI, BG, FK, RE = (
    "sjukpenning", "vardkontakter", "agi", "bakgrund", "fk_handelser", "regionenkat"
)  # fmt: skip
N, D_, E, X, R, P, C, V = (
    Reason.NULL_KEY, Reason.UNPARSEABLE_DATE, Reason.END_BEFORE_START, Reason.INVALID_EXTENT,
    Reason.UNKNOWN_REGION, Reason.INVALID_PERIOD, Reason.INVALID_CODE, Reason.INVALID_VALUE,
)  # fmt: skip
INT = "expected an integer"
INSURED = "one of anstalld,anstalld_dag1,arbetslos,egenforetagare,ovrig"
CIVIL = "one of OG,G,S,Ä,RP,SP,EP"
HANDELSE = "one of avstamningsmote,sassam,plan_fk,plan_arbetsgivare"
BEFORE = "tom_datum: expected on or after from_datum"

# (table, changed cells of BASE row 1, reason, detail). Each bad row is inserted
# as the 2nd delivered row, so it must come out with source_row 2.
# fmt: off
BAD_ROWS: list[tuple[str, dict[str, str | None], Reason, str]] = [
    # null_key
    (SP, {"lopnr": None}, N, f"lopnr: missing, {INT}"),
    (SP, {"lopnr": "12a"}, N, f"lopnr: {INT}"),
    (VK, {"lopnr": "  "}, N, f"lopnr: missing, {INT}"),
    (AGI, {"lopnr": "1.5"}, N, f"lopnr: {INT}"),
    (BG, {"lopnr": None}, N, f"lopnr: missing, {INT}"),
    (FK, {"lopnr": "x"}, N, f"lopnr: {INT}"),
    (RE, {"region": None}, N, "region: missing, expected a region code"),
    (RE, {"region": "AB"}, N, "region: expected a region code"),
    # unparseable_date
    (SP, {"from_datum": "2019-02-30"}, D_, f"from_datum: expected {DATE}"),
    (SP, {"tom_datum": "2021/03/04"}, D_, f"tom_datum: expected {DATE}"),
    (SP, {"tom_datum": None}, D_, f"tom_datum: missing, expected {DATE}"),
    (VK, {"datum": "20190230"}, D_, f"datum: expected {DATE}"),
    (VK, {"datum": "2019-1-5"}, D_, f"datum: expected {DATE}"),
    (FK, {"datum": ""}, D_, f"datum: missing, expected {DATE}"),
    # end_before_start
    (SP, {"tom_datum": "2018-12-31"}, E, BEFORE),
    # invalid_extent
    (SP, {"omfattning": "60"}, X, f"omfattning: expected {EXTENT}"),
    (SP, {"omfattning": "50,5"}, X, f"omfattning: expected {EXTENT}"),
    (SP, {"omfattning": None}, X, f"omfattning: missing, expected {EXTENT}"),
    # unknown_region
    (VK, {"region": "99"}, R, f"region: expected {REGIONS}"),
    (VK, {"region": None}, R, f"region: missing, expected {REGIONS}"),
    (VK, {"region": "1a"}, R, f"region: expected {REGIONS}"),
    (BG, {"lan": "02"}, R, f"lan: expected {REGIONS}"),
    (RE, {"region": "99"}, R, f"region: expected {REGIONS}"),
    # invalid_period
    (AGI, {"period": "201913"}, P, f"period: expected {PERIOD}"),
    (AGI, {"period": "201900"}, P, f"period: expected {PERIOD}"),
    (AGI, {"period": "2019-01"}, P, f"period: expected {PERIOD}"),
    (AGI, {"period": "18991"}, P, f"period: expected {PERIOD}"),
    (AGI, {"period": None}, P, f"period: missing, expected {PERIOD}"),
    # invalid_code
    (SP, {"forsakradtyp": "Anstalld"}, C, f"forsakradtyp: expected {INSURED}"),
    (SP, {"forsakradtyp": "anstalld "}, C, f"forsakradtyp: expected {INSURED}"),
    (SP, {"forsakradtyp": None}, C, f"forsakradtyp: missing, expected {INSURED}"),
    (VK, {"vardniva": "Primarvard"}, C,
     "vardniva: expected one of primarvard,specialiserad_oppen,sluten"),
    (VK, {"regi": None}, C, "regi: missing, expected one of offentlig,privat"),
    (BG, {"kon": "3"}, C, "kon: expected one of 1,2"),
    (BG, {"kon": "man"}, C, "kon: expected one of 1,2"),
    (BG, {"fodelseland": "Sverige"}, C, "fodelseland: expected one of sverige,norden,eu,ovriga"),
    (BG, {"civilstand": "A"}, C, f"civilstand: expected {CIVIL}"),
    (BG, {"civilstand": None}, C, f"civilstand: missing, expected {CIVIL}"),
    (BG, {"sun2000niva": "8"}, C, "sun2000niva: expected one of 1,2,3,4,5,6,7"),
    (FK, {"handelse": "Sassam"}, C, f"handelse: expected {HANDELSE}"),
    # invalid_value
    (AGI, {"arbetsgivare": None}, V, f"arbetsgivare: missing, {INT}"),
    (AGI, {"kontant_bruttolon": "123.50"}, V, f"kontant_bruttolon: {INT}"),
    (AGI, {"kontant_bruttolon": "12 345"}, V, f"kontant_bruttolon: {INT}"),
    (BG, {"ar": None}, V, f"ar: missing, {INT} (Int16)"),
    (BG, {"fodelsear": "19x0"}, V, f"fodelsear: {INT} (Int16)"),
    (BG, {"ar": "70000"}, V, f"ar: {INT} (Int16)"),
    (RE, {"ar": ""}, V, f"ar: missing, {INT} (Int16)"),
    (RE, {"antal_insatser": "3.5"}, V, f"antal_insatser: {INT}"),
    # the first reason in REASON_ORDER wins
    (SP, {"lopnr": None, "from_datum": "x"}, N, f"lopnr: missing, {INT}"),
    (SP, {"from_datum": "x", "omfattning": "1"}, D_, f"from_datum: expected {DATE}"),
    (SP, {"from_datum": "x", "tom_datum": "x"}, D_, f"from_datum: expected {DATE}"),
    (SP, {"tom_datum": "2018-01-01", "omfattning": "1"}, E, BEFORE),
    (SP, {"omfattning": "1", "forsakradtyp": "x"}, X, f"omfattning: expected {EXTENT}"),
    (VK, {"region": "99", "regi": "x"}, R, f"region: expected {REGIONS}"),
    (BG, {"lan": "99", "kon": "9", "ar": "x"}, R, f"lan: expected {REGIONS}"),
    (AGI, {"period": "1", "kontant_bruttolon": "x"}, P, f"period: expected {PERIOD}"),
    (BG, {"kon": "9", "ar": "x"}, C, "kon: expected one of 1,2"),
]
# fmt: on


def _id(case: tuple[str, dict[str, str | None], Reason, str]) -> str:
    table, change, reason, _ = case
    return f"{table}-{reason}-" + "-".join(f"{k}={v!r}" for k, v in change.items())


@pytest.mark.parametrize("case", BAD_ROWS, ids=[_id(c) for c in BAD_ROWS])
def test_bad_row_is_quarantined_with_its_reason(case) -> None:
    table, change, reason, detail = case
    bad = row(table, 0, **change)
    rows = [BASE[table][0], bad, *BASE[table][1:]]
    result = stage_rows(table, rows)
    assert quarantined(result) == [(2, str(reason))]
    # a value that is there but wrong is quoted as delivered (never a person id)
    column = detail.split(":")[0]
    if ": missing" not in detail and reason is not Reason.END_BEFORE_START and column != "lopnr":
        detail += f", delivered '{dict(zip(TABLES[table].names, bad, strict=True))[column]}'"
    assert result.quarantine.collect()["detail"].to_list() == [detail]
    assert result.quarantine.collect()["source_file"].to_list() == ["frame"]
    # the delivered cells, as text, unchanged
    delivered = result.quarantine.collect().select(TABLES[table].names).row(0)
    assert delivered == bad
    assert_frame_equal(result.staged, expected_frame(table))


@pytest.mark.parametrize("table", list(BASE))
def test_valid_rows_are_staged_typed_and_sorted(table: str) -> None:
    result = stage_rows(table, list(reversed(BASE[table])))
    assert result.quarantine.collect().height == 0
    assert_frame_equal(result.staged, expected_frame(table))
    assert result.quarantine.collect_schema() == pl.Schema(quarantine_schema(TABLES[table]))


@pytest.mark.parametrize("table", list(BASE))
def test_exact_duplicate_later_copy_is_quarantined(table: str) -> None:
    rows = [*BASE[table], BASE[table][1], BASE[table][1]]
    result = stage_rows(table, rows)
    assert quarantined(result) == [(4, "exact_duplicate"), (5, "exact_duplicate")]
    assert (
        result.quarantine.collect()["detail"].to_list()
        == ["all columns: identical after normalisation to row 2 of frame"] * 2
    )
    assert_frame_equal(result.staged, expected_frame(table))


def test_duplicate_first_copy_in_source_order_is_staged() -> None:
    # the copy delivered first is staged, even when it sorts after the others
    rows = [BASE["agi"][2], *BASE["agi"]]
    result = stage_rows("agi", rows)
    assert quarantined(result) == [(4, "exact_duplicate")]
    assert "row 1 of frame" in result.quarantine.collect()["detail"][0]


# --- normalisation -----------------------------------------------------------------


def test_kva_is_trimmed_upper_cased_and_collapsed() -> None:
    rows = [
        row("vardkontakter", 0, kva="gc001 "),
        row("vardkontakter", 1, kva="  dv077   gc001 "),
        row("vardkontakter", 2, kva="   "),
    ]
    result = stage_rows("vardkontakter", rows)
    assert result.quarantine.collect().height == 0
    assert result.staged["kva"].to_list() == ["GC001", "DV077 GC001", None]


def test_icd_with_or_without_dot_is_the_same_code_and_a_duplicate() -> None:
    rows = [row("sjukpenning", 0, diagnos="F43.8"), row("sjukpenning", 0, diagnos="f438")]
    result = stage_rows("sjukpenning", rows)
    assert quarantined(result) == [(2, "exact_duplicate")]
    assert result.staged["diagnos"].to_list() == ["F438"]
    # the quarantine keeps the delivered spelling
    assert result.quarantine.collect()["diagnos"].to_list() == ["f438"]


def test_region_codes_are_zero_padded() -> None:
    vk = stage_rows(
        "vardkontakter", [row("vardkontakter", 0, region="1"), row("vardkontakter", 1, region=" 3")]
    )
    assert vk.quarantine.collect().height == 0
    assert vk.staged["region"].to_list() == ["01", "03"]
    bg = stage_rows("bakgrund", [row("bakgrund", 0, lan="1")])
    assert bg.staged["lan"].to_list() == ["01"]
    re = stage_rows("regionenkat", [row("regionenkat", 0, region="1")])
    assert re.staged["region"].to_list() == ["01"]


def test_padded_region_is_a_duplicate_of_the_padded_code() -> None:
    rows = [row("vardkontakter", 0, region="01"), row("vardkontakter", 0, region="1")]
    assert quarantined(stage_rows("vardkontakter", rows)) == [(2, "exact_duplicate")]


def test_other_codes_are_not_normalised() -> None:
    # only KVÅ, ICD and region codes are normalised: `Anstalld` is not `anstalld`
    sp = stage_rows("sjukpenning", [row("sjukpenning", 0, forsakradtyp="Anstalld")])
    assert quarantined(sp) == [(1, "invalid_code")]
    bg = stage_rows("bakgrund", [row("bakgrund", 0, civilstand="g"), row("bakgrund", 1)])
    assert quarantined(bg) == [(1, "invalid_code")]


def test_decimal_comma_integers() -> None:
    rows = [
        row("agi", 0, kontant_bruttolon="12345,00"),
        row("agi", 1, kontant_bruttolon="123,50"),
        row("agi", 2, kontant_bruttolon="-300,0"),
    ]
    result = stage_rows("agi", rows, decimal=",")
    assert quarantined(result) == [(2, "invalid_value")]
    assert sorted(result.staged["kontant_bruttolon"].to_list()) == [-300, 12345]


def test_sjukpenning_omfattning_with_decimal_comma_zero_is_valid() -> None:
    result = stage_rows("sjukpenning", [row("sjukpenning", 0, omfattning="50,00")], decimal=",")
    assert result.staged["omfattning"].to_list() == [50]


# --- missing values and duplicates: the fine print -----------------------------------


def test_missing_nullable_values_are_staged_as_null() -> None:
    bg = stage_rows("bakgrund", [row("bakgrund", 0, sun2000niva=" ")])
    assert bg.quarantine.collect().height == 0
    assert bg.staged["sun2000niva"].to_list() == [None]
    sp = stage_rows("sjukpenning", [row("sjukpenning", 0, diagnos="")])
    assert sp.staged["diagnos"].to_list() == [None]


def test_duplicate_of_a_bad_row_gets_the_bad_rule() -> None:
    bad = row("sjukpenning", 0, forsakradtyp="Anstalld")
    result = stage_rows("sjukpenning", [bad, bad, row("sjukpenning", 1)])
    assert quarantined(result) == [(1, "invalid_code"), (2, "invalid_code")]


def test_missing_equals_missing_for_duplicates() -> None:
    rows = [
        row("vardkontakter", 1, kva=None),
        row("vardkontakter", 1, kva=""),
        row("vardkontakter", 1, kva=" "),
    ]
    assert quarantined(stage_rows("vardkontakter", rows)) == [
        (2, "exact_duplicate"),
        (3, "exact_duplicate"),
    ]


def test_valid_row_after_an_invalid_look_alike_is_staged() -> None:
    # "abc" and missing both normalise to null, but only the second row is valid
    rows = [row("regionenkat", 0, antal_insatser="abc"), row("regionenkat", 0, antal_insatser=None)]
    result = stage_rows("regionenkat", rows)
    assert quarantined(result) == [(1, "invalid_value")]
    assert result.staged.rows() == [("01", 2019, None)]


# --- typed input (parquet, SAS, Stata): the fast path ------------------------------------


def test_typed_agi_is_validated_without_text() -> None:
    frame = pl.DataFrame(
        {
            "lopnr": [1, None, 2, 3, 1],
            "period": [201901, 201901, 201913, 202001, 201901],
            "arbetsgivare": [5, 5, 5, None, 5],
            "kontant_bruttolon": [100, 100, 100, 100, 100],
        },
        schema={
            "lopnr": pl.Int64,
            "period": pl.Int32,
            "arbetsgivare": pl.Int64,
            "kontant_bruttolon": pl.Int64,
        },
    )
    result = stage_named("agi", {"agi.parquet": frame})
    assert quarantined(result) == [
        (2, "null_key"),
        (3, "invalid_period"),
        (4, "invalid_value"),
        (5, "exact_duplicate"),
    ]
    assert result.quarantine.collect()["period"].to_list() == [
        "201901",
        "201913",
        "202001",
        "201901",
    ]
    assert result.staged.rows() == [(1, 201901, 5, 100)]


def test_sas_like_floats_and_dates() -> None:
    frame = pl.DataFrame(
        {
            "lopnr": [1.0, 2.5, 3.0, 4.0, 5.0],
            "from_datum": [dt.date(2019, 1, 1)] * 4 + [None],
            # SAS DATETIME values: the date part is the date
            "tom_datum": pl.Series(
                [
                    "2019-01-31 00:00",
                    "2019-01-31 00:00",
                    "2019-01-31 13:30",
                    None,
                    "2019-01-31 00:00",
                ]
            ).str.to_datetime("%Y-%m-%d %H:%M"),
            "omfattning": [100.0, 100.0, 75.0, 50.0, 25.0],
            "diagnos": ["F43.8", "", "m54", "F32", "F32"],
            "forsakradtyp": ["anstalld", "anstalld", "ovrig", "ovrig", "ovrig"],
        }
    )
    result = stage_named("sjukpenning", {"sjp.sas7bdat": frame})
    assert quarantined(result) == [
        (2, "null_key"),
        (4, "unparseable_date"),
        (5, "unparseable_date"),
    ]
    assert result.staged.rows() == [
        (1, dt.date(2019, 1, 1), dt.date(2019, 1, 31), 100, "F438", "anstalld"),
        (3, dt.date(2019, 1, 1), dt.date(2019, 1, 31), 75, "M54", "ovrig"),
    ]
    assert result.quarantine.collect()["lopnr"].to_list() == ["2.5", "4.0", "5.0"]


def test_eight_digit_integer_dates_are_yyyymmdd() -> None:
    frame = pl.DataFrame(
        {"lopnr": [1, 2, 3], "datum": [20190201, 20190230, 2019], "handelse": ["sassam"] * 3}
    )
    result = stage_named("fk_handelser", {"f": frame})
    assert quarantined(result) == [(2, "unparseable_date"), (3, "unparseable_date")]
    assert result.staged["datum"].to_list() == [dt.date(2019, 2, 1)]


def test_integer_codes_for_text_columns() -> None:
    # a Stata file may hold sun2000niva and lan as numbers
    frame = pl.DataFrame(
        {
            "lopnr": [1, 2],
            "ar": [2019, 2019],
            "kon": [2.0, 1.0],
            "fodelsear": [1980.0, 1975.0],
            "fodelseland": ["sverige", "eu"],
            "civilstand": ["G", "Ä"],
            "sun2000niva": [5.0, None],
            "lan": [1, 14],
        }
    )
    result = stage_named("bakgrund", {"lisa.dta": frame})
    assert result.quarantine.collect().height == 0
    assert result.staged.rows() == [
        (1, 2019, 2, 1980, "sverige", "G", "5", "01"),
        (2, 2019, 1, 1975, "eu", "Ä", None, "14"),
    ]


# --- several files ---------------------------------------------------------------------


def test_each_file_keeps_its_own_source_rows() -> None:
    first = text_frame("agi", BASE["agi"])
    second = text_frame(
        "agi", [row("agi", 2, period="202013"), BASE["agi"][0], row("agi", 0, lopnr="9")]
    )
    result = stage_named("agi", {"agi_2019.csv": first, "agi_2020.csv": second})
    assert result.quarantine.collect().select("source_file", "source_row", "reason").rows() == [
        ("agi_2020.csv", 1, "invalid_period"),
        ("agi_2020.csv", 2, "exact_duplicate"),
    ]
    assert "row 1 of agi_2019.csv" in result.quarantine.collect()["detail"][1]
    assert result.rows_in_by_file == {"agi_2019.csv": 3, "agi_2020.csv": 3}
    assert result.staged.height == 4


# --- counts -----------------------------------------------------------------------------


def test_counts_cover_every_reason_and_balance() -> None:
    rows = [*BASE["sjukpenning"], row("sjukpenning", 0, lopnr=None), BASE["sjukpenning"][0]]
    counts = stage_rows("sjukpenning", rows).counts()
    assert counts["rows_in"] == 5
    assert counts["staged"] == 3
    assert counts["quarantined"] == 2
    assert list(counts["by_reason"]) == [str(r) for r in REASON_ORDER]
    assert counts["by_reason"]["null_key"] == 1
    assert counts["by_reason"]["exact_duplicate"] == 1
    assert counts["by_reason"]["invalid_code"] == 0


def test_counts_raise_when_rows_are_lost() -> None:
    result = stage_rows("agi", BASE["agi"])
    broken = dataclasses.replace(result, staged=result.staged.head(1))
    with pytest.raises(RuntimeError, match="3 rows in but 1 staged"):
        broken.counts()


# --- delivery errors ----------------------------------------------------------------------


def test_missing_contract_column_is_a_delivery_error() -> None:
    with pytest.raises(DeliveryError) as err:
        map_columns(["LopNr", "Datum"], TABLES["fk_handelser"], {}, "handelser.csv")
    assert err.value.table == "fk_handelser"
    assert err.value.column == "handelse"
    assert "table 'fk_handelser', column 'handelse'" in str(err.value)


def test_column_map_is_case_insensitive_and_extra_columns_are_ignored(caplog) -> None:
    with caplog.at_level("INFO"):
        mapping = map_columns(
            ["LOPNR", "INDATUM", "OP", "REGION", "VARDNIVA", "REGI", "KOMMUN"],
            TABLES["vardkontakter"],
            {"Indatum": "datum", "op": "kva"},
            "k.sas7bdat",
        )
    assert mapping == {
        "LOPNR": "lopnr",
        "INDATUM": "datum",
        "OP": "kva",
        "REGION": "region",
        "VARDNIVA": "vardniva",
        "REGI": "regi",
    }
    assert "KOMMUN" in caplog.text


def test_two_candidate_columns_are_a_delivery_error() -> None:
    with pytest.raises(DeliveryError, match="column 'lopnr'"):
        map_columns(["lopnr", "LOPNR", "datum", "handelse"], TABLES["fk_handelser"], {}, "f.csv")


def test_unreadable_column_type_is_a_delivery_error() -> None:
    frame = pl.DataFrame({"lopnr": [1], "datum": [True], "handelse": ["sassam"]})
    with pytest.raises(DeliveryError) as err:
        stage_named("fk_handelser", {"f.parquet": frame})
    assert (err.value.table, err.value.column) == ("fk_handelser", "datum")
    assert "expected a date" in str(err.value)
    assert "Boolean" in str(err.value)


def test_missing_required_file_is_a_delivery_error(tmp_path: Path) -> None:
    source = table_source("agi", {"path": str(tmp_path / "agi_*.parquet"), "format": "parquet"})
    with pytest.raises(DeliveryError, match="table 'agi'"):
        resolve_files(source)
    optional = table_source(
        "regionenkat", {"path": str(tmp_path / "enkat.csv"), "format": "csv", "required": False}
    )
    assert resolve_files(optional) == []


def test_column_map_to_unknown_contract_column_is_a_delivery_error() -> None:
    with pytest.raises(DeliveryError, match="column 'belopp'"):
        table_source("agi", {"path": "x.csv", "format": "csv", "columns": {"Belopp": "belopp"}})


# --- run(cfg) and the CLI -------------------------------------------------------------------


def _write_delivery(root: Path) -> dict[str, Path]:
    paths = {}
    for table, rows in BASE.items():
        if table == "regionenkat":
            continue  # optional: not delivered
        path = root / "delivery" / f"{table}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = [row(table, 0, **{TABLES[table].names[0]: None})]  # one null_key row
        text_frame(table, [*rows, *extra]).write_parquet(path)
        paths[table] = path
    return paths


def _overrides(tmp_path: Path, paths: dict[str, Path]) -> list[str]:
    out = [f"paths.staged={tmp_path}/staged", f"paths.quarantine={tmp_path}/quarantine"]
    out += [f"data.tables.{t}.path={p}" for t, p in paths.items()]
    return [*out, f"data.tables.regionenkat.path={tmp_path}/delivery/no_survey.parquet"]


def test_run_writes_staged_quarantine_and_counts(tmp_path: Path) -> None:
    paths = _write_delivery(tmp_path)
    cfg = config.compose(_overrides(tmp_path, paths))
    stage.run(cfg)
    counts = json.loads((tmp_path / "staged" / "row_counts.json").read_text())
    assert counts["check"] == {"rows_in_equals_staged_plus_quarantined": True}
    for table in BASE:
        staged = pl.read_parquet(tmp_path / "staged" / f"{table}.parquet")
        quarantine = pl.read_parquet(tmp_path / "quarantine" / f"{table}.parquet")
        entry = counts["tables"][table]
        assert entry["rows_in"] == entry["staged"] + entry["quarantined"]
        assert quarantine.schema == pl.Schema(quarantine_schema(TABLES[table]))
        if table == "regionenkat":
            assert entry["status"] == "not_delivered"
            assert staged.height == quarantine.height == 0
            assert staged.schema == pl.Schema(TABLES[table].schema)
            continue
        assert_frame_equal(staged, expected_frame(table))
        assert entry == {
            "status": "staged",
            "files": [paths[table].as_posix()],
            "rows_in_by_file": {paths[table].as_posix(): 4},
            "rows_in": 4,
            "staged": 3,
            "quarantined": 1,
            "by_reason": {str(r): int(r == Reason.NULL_KEY) for r in REASON_ORDER},
            "sources": {
                "": {
                    "files": [paths[table].as_posix()],
                    "rows_in": 4,
                    "recoded": {},
                    "kept_as_unknown": {},
                }
            },
        }
        assert quarantine.select("source_row", "reason").rows() == [(4, "null_key")]
    # reruns are byte-identical
    before = {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.glob("*/*.parquet")}
    stage.run(cfg)
    after = {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.glob("*/*.parquet")}
    assert before == after
    assert not list(tmp_path.glob(".stage-work-*"))


def test_cli_reports_a_delivery_error_in_one_line(tmp_path: Path) -> None:
    paths = _write_delivery(tmp_path)
    text_frame("sjukpenning", BASE["sjukpenning"]).drop("omfattning").write_parquet(
        paths["sjukpenning"]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "stage", *_overrides(tmp_path, paths)],
        cwd=config.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1
    assert "table 'sjukpenning', column 'omfattning'" in errors[0]
    assert "expected a column named 'omfattning'" in errors[0]


def test_codes_come_from_configuration() -> None:
    codes = OmegaConf.load(config.CONF_DIR / "codes" / "default.yaml")
    codes.handelse = [*codes.handelse, "nytt_mote"]
    from pipeline.stages.stage.spec import CodeLists

    extended = CodeLists.from_mapping(codes)
    frame = text_frame("fk_handelser", [row("fk_handelser", 0, handelse="nytt_mote")])
    assert stage.stage_frames(frame, "fk_handelser", CODES).quarantine.collect().height == 1
    assert stage.stage_frames(frame, "fk_handelser", extended).quarantine.collect().height == 0


# --- docs/schemas.md --------------------------------------------------------------------


@pytest.mark.parametrize("table", list(TABLES))
def test_schemas_md_documents_the_staged_tables(table: str) -> None:
    documented = documented_columns(f"outputs/staged/{table}.parquet")
    assert documented == [(n, str(t)) for n, t in TABLES[table].schema.items()]


def test_schemas_md_documents_the_quarantine_tables() -> None:
    documented = documented_columns("outputs/quarantine/<table>.parquet")
    lead = [(n, str(t)) for n, t in quarantine_schema(TABLES["agi"]).items()][:4]
    assert documented == [*lead, ("<contract column>", "String")]


def test_a_bad_column_map_fails_before_any_table_is_staged(tmp_path: Path) -> None:
    paths = _write_delivery(tmp_path)
    text_frame("fk_handelser", BASE["fk_handelser"]).rename({"handelse": "typ"}).write_parquet(
        paths["fk_handelser"]
    )
    cfg = config.compose(_overrides(tmp_path, paths))
    with pytest.raises(DeliveryError, match="table 'fk_handelser', column 'handelse'"):
        stage.run(cfg)
    assert not (tmp_path / "staged" / "sjukpenning.parquet").exists()
    # the same delivery through a column map stages
    cfg.data.tables.fk_handelser.columns = {"TYP": "handelse"}
    stage.run(cfg)
    assert pl.read_parquet(tmp_path / "staged" / "fk_handelser.parquet").height == 3


def _break_delivery(kind: str, paths: dict[str, Path]) -> tuple[str, str | None]:
    """Damage the delivery in one way; returns the (table, column) the error must name."""
    if kind == "missing file":
        paths["agi"].unlink()
        return "agi", None
    if kind == "missing column":
        text_frame("bakgrund", BASE["bakgrund"]).drop("lan").write_parquet(paths["bakgrund"])
        return "bakgrund", "lan"
    frame = text_frame("fk_handelser", BASE["fk_handelser"])
    frame.with_columns(pl.lit(True).alias("datum")).write_parquet(paths["fk_handelser"])
    return "fk_handelser", "datum"


@pytest.mark.parametrize("kind", ["missing file", "missing column", "unreadable type"])
def test_main_exits_2_with_one_error_naming_table_and_column(
    tmp_path: Path, kind: str, caplog, capsys
) -> None:
    from pipeline.__main__ import main

    paths = _write_delivery(tmp_path)
    table, column = _break_delivery(kind, paths)
    with caplog.at_level("ERROR"):
        assert main(["stage", *_overrides(tmp_path, paths)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert len(errors[0].splitlines()) == 1
    assert f"table {table!r}" in errors[0]
    if column:
        assert f"column {column!r}" in errors[0]
    assert "Traceback" not in capsys.readouterr().err
