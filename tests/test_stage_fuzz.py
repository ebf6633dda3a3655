"""Hostile input: whatever bytes a delivery file holds, the loader either stages and
quarantines every row with a reason, or stops with one DeliveryError message.
Never another exception, never a silent drop."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core import config
from pipeline.core.errors import DeliveryError
from pipeline.stages import stage
from tests.helpers import BASE, text_frame

HEADER = "lopnr;datum;handelse"
VALID = ["1;2019-02-01;avstamningsmote", "2;20190301;plan_arbetsgivare"]
NASTY_CELLS = [
    "", " ", "NA", "null", "2019-02-30", "2021/03/04", "00000000", "99999999", "-1",
    "9" * 40, "1e309", "1,5", "GC001", "å", "\x00", "Ä\u200b", "=cmd|' /C calc'!A0", '"', "'",
]  # fmt: skip


CELL = st.sampled_from(NASTY_CELLS) | st.text(max_size=12)


def delivery(root: Path, fk_bytes: bytes, encoding: str) -> list[str]:
    """A valid delivery but `fk_handelser`, which is `fk_bytes` as a `;` CSV in `encoding`."""
    overrides = [f"paths.staged={root}/staged", f"paths.quarantine={root}/quarantine"]
    for table, rows in BASE.items():
        if table in ("fk_handelser", "regionenkat"):
            continue
        path = root / f"{table}.parquet"
        text_frame(table, rows).write_parquet(path)
        overrides.append(f"data.tables.{table}.path={path}")
    fk = root / "fk_handelser.csv"
    fk.write_bytes(fk_bytes)
    return [
        *overrides,
        f"data.tables.fk_handelser.path={fk}",
        "data.tables.fk_handelser.format=csv",
        "+data.tables.fk_handelser.csv={delimiter: ';', encoding: " + encoding + ", decimal: ','}",
        f"data.tables.regionenkat.path={root}/absent.parquet",
    ]


def check(root: Path, fk_bytes: bytes, encoding: str = "utf-8") -> None:
    """Run the stage; assert the outcome is balanced counts or one DeliveryError."""
    cfg = config.compose(delivery(root, fk_bytes, encoding))
    try:
        stage.run(cfg)
    except DeliveryError as err:
        assert "fk_handelser" in str(err) and "\n" not in str(err)
        return
    counts = json.loads((root / "staged" / "row_counts.json").read_text())["tables"]["fk_handelser"]
    assert counts["rows_in"] == counts["staged"] + counts["quarantined"]
    staged = pl.read_parquet(root / "staged" / "fk_handelser.parquet")
    quarantine = pl.read_parquet(root / "quarantine" / "fk_handelser.parquet")
    assert (staged.height, quarantine.height) == (counts["staged"], counts["quarantined"])
    assert quarantine["reason"].null_count() == 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cells=st.lists(st.lists(CELL, min_size=1, max_size=5), max_size=6))
def test_hostile_cells_and_ragged_rows(cells, tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    lines = [HEADER, *VALID, *(";".join(row) for row in cells)]
    check(root, "\n".join(lines).encode("utf-8", errors="surrogatepass"))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300))
def test_random_bytes(data, tmp_path_factory):
    check(tmp_path_factory.mktemp("bytes"), data)


def test_empty_file_header_only_extra_columns_and_wrong_encoding(tmp_path):
    cases = {
        "empty": b"",
        "header_only": HEADER.encode(),
        "extra_columns": ("x;" + HEADER + ";y\n" + "\n".join(f"0;{v};9" for v in VALID)).encode(),
        "missing_column": b"lopnr;datum\n1;2019-02-01\n",
        "latin1_as_utf8": (HEADER + "\n1;2019-02-01;avst\xe4mningsm\xf6te\n").encode("latin-1"),
        "huge_numbers": (HEADER + "\n" + "9" * 30 + ";2019-02-01;sassam\n").encode(),
    }
    for name, data in cases.items():
        (tmp_path / name).mkdir()
        check(tmp_path / name, data)
