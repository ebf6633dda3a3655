"""The fast dta/xpt reader gives exactly pyreadstat's frame, or declines (issue 17)."""

from __future__ import annotations

import datetime as dt
import string

import numpy as np
import pandas as pd
import polars as pl
import pyreadstat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.stages.stage import fixed_width

TEXT = st.text(alphabet=string.ascii_letters + "åäöÅÄÖé -.", max_size=12)
NUMBER = st.one_of(st.none(), st.floats(-1e12, 1e12, allow_nan=False), st.integers(-9, 9))
DAY = st.one_of(st.none(), st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)))
ROWS = st.lists(st.tuples(TEXT, NUMBER, DAY, st.one_of(st.none(), st.integers(-100, 100))),
                min_size=1, max_size=40)  # fmt: skip


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows as pyreadstat writes them: text, a float, a date and an integer with gaps."""
    text, number, day, small = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "TEXT": list(text),
            "NUMBER": pd.Series(number, dtype="float64"),
            "DAY": list(day),
            "SMALL": pd.Series(small, dtype="Int32"),
        }
    )


def _pyreadstat(path, fmt: str) -> pl.DataFrame:
    reader = pyreadstat.read_dta if fmt == "dta" else pyreadstat.read_xport
    frame, _ = reader(str(path), output_format="polars")
    return frame


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=ROWS)
@pytest.mark.parametrize(
    ("fmt", "version"), [("dta", 13), ("dta", 14), ("dta", 15), ("xpt", 5), ("xpt", 8)]
)
def test_the_fast_reader_equals_pyreadstat(tmp_path, fmt, version, rows):
    frame = _frame(rows)
    path = tmp_path / f"t.{fmt}"
    if fmt == "dta":
        pyreadstat.write_dta(frame, str(path), version=version)
    else:
        pyreadstat.write_xport(frame, str(path), file_format_version=version)
    expected = _pyreadstat(path, fmt)
    got = fixed_width.read(path, fmt, expected.columns, None)
    assert got is not None
    assert got.schema == expected.schema
    assert got.equals(expected)
    # a subset of columns, in another order
    subset = fixed_width.read(path, fmt, ["DAY", "TEXT"], None)
    assert subset.equals(expected.select("DAY", "TEXT"))


def test_missing_codes_and_extremes_are_read_as_pyreadstat_reads_them(tmp_path):
    # Stata's byte, int and long around their missing codes; SAS's IBM floats at
    # the edges of what a double holds exactly
    frame = pd.DataFrame(
        {
            "B": pd.Series([100, -127, None], dtype="Int8"),
            "I": pd.Series([32740, -32767, None], dtype="Int16"),
            "L": pd.Series([2_147_483_620, -2_147_483_647, None], dtype="Int32"),
            "F": [2.0**52 + 1, -1e-300, np.nan],
        }
    )
    dta, xpt = tmp_path / "m.dta", tmp_path / "m.xpt"
    pyreadstat.write_dta(frame, str(dta), version=15)
    pyreadstat.write_xport(frame, str(xpt), file_format_version=8)
    for path, fmt in ((dta, "dta"), (xpt, "xpt")):
        expected = _pyreadstat(path, fmt)
        assert fixed_width.read(path, fmt, expected.columns, None).equals(expected)
    assert _pyreadstat(dta, "dta")["L"].to_list() == [2_147_483_620, -2_147_483_647, None]


def test_it_declines_what_it_does_not_cover(tmp_path):
    text = pd.DataFrame({"S": ["x" * 3000, "y"], "T": [1.0, 2.0]})
    pyreadstat.write_dta(text, str(tmp_path / "strl.dta"), version=15)  # strL text
    assert fixed_width.read(tmp_path / "strl.dta", "dta", ["T"], None) is None
    stamps = pd.DataFrame({"W": [pd.Timestamp("2020-01-01 12:30")]})
    pyreadstat.write_dta(stamps, str(tmp_path / "tc.dta"), version=15)  # %tc datetime
    assert fixed_width.read(tmp_path / "tc.dta", "dta", ["W"], None) is None
    pyreadstat.write_xport(stamps, str(tmp_path / "tc.xpt"))  # DATETIME
    assert fixed_width.read(tmp_path / "tc.xpt", "xpt", ["W"], None) is None
    (tmp_path / "not.dta").write_bytes(b"\x72\x02\x01\x00" + bytes(200))  # release 114
    assert fixed_width.read(tmp_path / "not.dta", "dta", ["X"], None) is None
    pyreadstat.write_dta(pd.DataFrame({"A": [1.0]}), str(tmp_path / "a.dta"), version=15)
    assert fixed_width.read(tmp_path / "a.dta", "dta", ["B"], None) is None  # no such column


def test_text_in_another_encoding_is_decoded_as_configured(tmp_path):
    # a Stata 13 (release 117) file holds bytes in the writer's encoding; read as
    # cp1252 both readers give the same text
    path = tmp_path / "c.dta"
    pyreadstat.write_dta(pd.DataFrame({"S": ["ab", "xy"]}), str(path), version=13)
    raw = path.read_bytes().replace(b"abxy", b"\xe5\xe4xy", 1)  # the records, str2 each
    path.write_bytes(raw)
    expected, _ = pyreadstat.read_dta(str(path), output_format="polars", encoding="cp1252")
    got = fixed_width.read(path, "dta", ["S"], "cp1252")
    assert got["S"].to_list() == expected["S"].to_list() == ["åä", "xy"]


def test_ibm_floats_of_every_stored_length_and_the_missing_codes():
    # IBM System/360 hexadecimal floats, big-endian: 1.0, -118.625 (the textbook
    # example), 0 and 100 stored in 3 bytes, then SAS's missing `.`, `.A`, `._`
    stored = [
        bytes.fromhex("4110000000000000"),
        bytes.fromhex("C276A00000000000"),
        bytes.fromhex("000000") + bytes(5),
        bytes.fromhex("426400") + bytes(5),
        b"." + bytes(7),
        b"A" + bytes(7),
        b"_" + bytes(7),
    ]
    raw = np.frombuffer(b"".join(stored), np.uint8).reshape(-1, 8)
    values, missing = fixed_width._ibm_floats(raw)
    assert values[:4].tolist() == [1.0, -118.625, 0.0, 100.0]
    assert missing.tolist() == [False] * 4 + [True] * 3
    short, _ = fixed_width._ibm_floats(raw[2:4, :3])  # a 3-byte column
    assert short.tolist() == [0.0, 100.0]


# --- what a second read found: each case is pyreadstat's to read, or read as it reads it ---


def _agrees_or_declines(path, fmt: str, columns: list[str], encoding: str | None = None) -> None:
    """The fast reader gives pyreadstat's frame or None; where pyreadstat fails, None."""
    reader = pyreadstat.read_dta if fmt == "dta" else pyreadstat.read_xport
    kwargs = {"encoding": encoding} if encoding else {}
    got = fixed_width.read(path, fmt, columns, encoding)
    try:
        expected, _ = reader(str(path), output_format="polars", **kwargs)
    except Exception:  # any failure of pyreadstat's is the reference here
        assert got is None
        return
    assert got is None or (got.schema == expected.schema and got.equals(expected))


def _xpt_with(tmp_path, name: str, values: list[float]) -> tuple:
    """An xpt v8 file of one numeric column; returns (path, offset of its first value)."""
    path = tmp_path / name
    pyreadstat.write_xport(pd.DataFrame({"X": values}), str(path), file_format_version=8)
    raw = path.read_bytes()
    obs = raw.find(b"HEADER RECORD*******OBSV8")
    return path, obs + 80


def test_undecodable_text_and_unknown_encodings_are_declined(tmp_path):
    path = tmp_path / "b.dta"
    pyreadstat.write_dta(pd.DataFrame({"S": ["ab", "xy"], "N": [1.0, 2.0]}), str(path), version=14)
    raw = path.read_bytes()
    at = raw.find(b"ab", raw.find(b"<data>"))  # the first record's text
    path.write_bytes(raw[:at] + b"\xe5" + raw[at + 1 :])  # not UTF-8
    assert fixed_width.read(path, "dta", ["S", "N"], None) is None
    assert fixed_width.read(path, "dta", ["S", "N"], "no-such-codec") is None
    pyreadstat.write_dta(pd.DataFrame({"S": ["åä"]}), str(path), version=15)
    assert fixed_width.read(path, "dta", ["S"], "ascii") is None  # pyreadstat refuses it
    _agrees_or_declines(path, "dta", ["S"], "ascii")


def test_a_label_holding_the_map_tag_is_read(tmp_path):
    path = tmp_path / "label.dta"
    frame = pd.DataFrame({"A": [1.0, 2.0]})
    pyreadstat.write_dta(frame, str(path), version=15, file_label="x<map>y")
    expected = _pyreadstat(path, "dta")
    assert fixed_width.read(path, "dta", ["A"], None).equals(expected)


@pytest.mark.parametrize(
    "stored",
    ["8000000000000000", "4000000000000000", "4108000000000000", "7FFFFFFFFFFFFFFF"],
    ids=["minus-zero", "exponent-only-zero", "unnormalised", "largest"],
)
def test_ibm_values_readstat_reads_its_own_way_are_declined(tmp_path, stored):
    path, first = _xpt_with(tmp_path, "odd.xpt", [1.0, 2.0])
    raw = bytearray(path.read_bytes())
    raw[first : first + 8] = bytes.fromhex(stored)
    path.write_bytes(bytes(raw))
    assert fixed_width.read(path, "xpt", ["X"], None) is None


def test_npos_out_of_sequence_a_wrong_variable_count_and_an_unstated_row_count(tmp_path):
    frame = pd.DataFrame({"A": [1.0, 3.0], "B": [2.0, 4.0]})
    path = tmp_path / "n.xpt"
    pyreadstat.write_xport(frame, str(path), file_format_version=8)
    raw = path.read_bytes()
    namestr = raw.find(b"HEADER RECORD*******NAMSTV8") + 80
    second_npos = namestr + 140 + 84
    moved = raw[:second_npos] + (0).to_bytes(4, "big") + raw[second_npos + 4 :]
    (tmp_path / "npos.xpt").write_bytes(moved)  # B said to start where A does
    assert fixed_width.read(tmp_path / "npos.xpt", "xpt", ["A", "B"], None) is None
    count_at = raw.find(b"HEADER RECORD*******NAMSTV8") + 54
    (tmp_path / "count.xpt").write_bytes(raw[:count_at] + b"0001" + raw[count_at + 4 :])
    assert fixed_width.read(tmp_path / "count.xpt", "xpt", ["A"], None) is None
    obs = raw.find(b"HEADER RECORD*******OBSV8")
    unstated = raw[: obs + 48] + b"0".rjust(15) + raw[obs + 63 :]
    (tmp_path / "zero.xpt").write_bytes(unstated)  # ReadStat then counts the records
    _agrees_or_declines(tmp_path / "zero.xpt", "xpt", ["A", "B"])
    assert fixed_width.read(tmp_path / "zero.xpt", "xpt", ["A", "B"], None).height == 2


def test_dates_past_what_a_date_holds_and_text_with_a_date_format_are_declined(tmp_path):
    path = tmp_path / "d.dta"
    pyreadstat.write_dta(
        pd.DataFrame({"V": [3e9, 0.0]}), str(path), version=15, variable_format={"V": "%td"}
    )
    assert fixed_width.read(path, "dta", ["V"], None) is None
    pyreadstat.write_dta(
        pd.DataFrame({"S": ["a"]}), str(path), version=15, variable_format={"S": "%td"}
    )
    assert fixed_width.read(path, "dta", ["S"], None) is None
    _agrees_or_declines(path, "dta", ["S"])
