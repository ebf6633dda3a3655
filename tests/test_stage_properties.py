"""Properties of `stage` on corrupted deliveries (hypothesis).

Start from distinct valid rows (text cells, with harmless code variants that
normalisation must absorb), then corrupt random cells with values that break
a rule, deliver some rows more than once and shuffle. Whatever the mix:
rows in = staged + quarantined, no uncorrupted row is quarantined for anything
but being a later copy, every corrupted row is quarantined with its own rule,
and the staged table does not depend on the delivery order.
"""

from __future__ import annotations

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from pipeline.core.contract import TABLES
from tests.helpers import CODES, stage_rows

REGIONS = list(CODES.regions)

# Valid cell values per column (variants that normalise to a valid value included).
VALID: dict[str, dict[str, st.SearchStrategy[str | None]]] = {
    "sjukpenning": {
        "from_datum": st.sampled_from(["2019-01-01", "20190105", "2020-02-29"]),
        "tom_datum": st.sampled_from(["2020-03-01", "20200310"]),
        "omfattning": st.sampled_from(["25", "50", "75", "100", " 100 "]),
        "diagnos": st.sampled_from(["F43.8", "f438", "M54", "F32", None, ""]),
        "forsakradtyp": st.sampled_from(
            list(CODES.values("forsakradtyp", TABLES["sjukpenning"].column("forsakradtyp").kind))
        ),
    },
    "vardkontakter": {
        "datum": st.sampled_from(["2019-01-01", "20190105", "2020-02-29"]),
        "kva": st.sampled_from(["GC001", "gc001 ", " dv077  GC001", "AW026", None, " "]),
        "region": st.sampled_from([*REGIONS, "1", "3", " 9"]),
        "vardniva": st.sampled_from(["primarvard", "specialiserad_oppen", "sluten"]),
        "regi": st.sampled_from(["offentlig", "privat"]),
    },
    "agi": {
        "period": st.sampled_from(["201901", "201912", "202006"]),
        "arbetsgivare": st.integers(1, 10**9).map(str),
        "kontant_bruttolon": st.integers(-(10**6), 10**7).map(str),
    },
}
# Values that break a rule, per column (each is never valid).
BAD: dict[str, dict[str, list[str | None]]] = {
    "sjukpenning": {
        "lopnr": [None, "", "x1", "1.5"],
        "from_datum": ["2019-02-30", "2021/03/04", None, "31.12.2020"],
        "tom_datum": ["2018-12-31", "20191332", None],  # 2018-12-31 is before every from_datum
        "omfattning": ["30", "0", None, "50,5"],
        "forsakradtyp": ["Anstalld", "okand", None, "anstalld "],
    },
    "vardkontakter": {
        "lopnr": [None, "abc"],
        "datum": ["2019-02-30", "", "2019-1-1"],
        "region": ["99", "00", "1a", None],
        "vardniva": ["Sluten", None],
        "regi": ["Privat", "kommunal"],
    },
    "agi": {
        "lopnr": [None, "1e3"],
        "period": ["201913", "201900", "20191", None],
        "arbetsgivare": [None, "x"],
        "kontant_bruttolon": [None, "12.5", "1 000"],
    },
}


@st.composite
def corrupted_delivery(draw: st.DrawFn, table: str) -> tuple[list[tuple], list[int], list[bool]]:
    """(rows, base id per row, is_corrupted per row) of a corrupted, shuffled delivery."""
    names = TABLES[table].names
    n = draw(st.integers(1, 12))
    base = []
    for i in range(n):
        cells = {"lopnr": str(i + 1)}  # distinct persons: base rows never coincide
        cells |= {c: draw(s) for c, s in VALID[table].items()}
        base.append(tuple(cells[c] for c in names))
    rows, ids, bad = list(base), list(range(n)), [False] * n
    # duplicate some rows (copies of valid rows are later copies)
    for i in draw(st.lists(st.integers(0, n - 1), max_size=4)):
        rows.append(rows[i])
        ids.append(ids[i])
        bad.append(False)
    # corrupt some cells; a corrupted row is a new row (its own id)
    for k in draw(st.lists(st.integers(0, len(rows) - 1), max_size=6, unique=True)):
        column = draw(st.sampled_from(sorted(BAD[table])))
        value = draw(st.sampled_from(BAD[table][column]))
        cells = dict(zip(names, rows[k], strict=True)) | {column: value}
        rows[k] = tuple(cells[c] for c in names)
        ids[k] = -1 - k
        bad[k] = True
    order = draw(st.permutations(range(len(rows))))
    return [rows[i] for i in order], [ids[i] for i in order], [bad[i] for i in order]


def _check(table: str, delivery: tuple[list[tuple], list[int], list[bool]]) -> None:
    rows, ids, bad = delivery
    result = stage_rows(table, rows)
    assert result.rows_in == len(rows) == result.staged.height + result.quarantine.collect().height
    reason = dict(result.quarantine.collect().select("source_row", "reason").iter_rows())
    seen: set[int] = set()
    for position, (row_id, is_bad) in enumerate(zip(ids, bad, strict=True), start=1):
        got = reason.get(position)
        if is_bad:
            assert got not in (None, "exact_duplicate"), (position, rows[position - 1], got)
        elif row_id in seen:
            assert got == "exact_duplicate", (position, got)
        else:
            assert got is None, (position, rows[position - 1], got)
            seen.add(row_id)
    assert result.staged.height == len(seen)
    # the staged table does not depend on the delivery order
    again = stage_rows(table, list(reversed(rows)))
    assert_frame_equal(again.staged, result.staged)
    assert sorted(again.quarantine.collect()["reason"].to_list()) == sorted(
        result.quarantine.collect()["reason"].to_list()
    )


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(corrupted_delivery("sjukpenning"))
def test_sjukpenning_every_row_has_one_answer(delivery) -> None:
    _check("sjukpenning", delivery)


@SETTINGS
@given(corrupted_delivery("vardkontakter"))
def test_vardkontakter_every_row_has_one_answer(delivery) -> None:
    _check("vardkontakter", delivery)


@SETTINGS
@given(corrupted_delivery("agi"))
def test_agi_every_row_has_one_answer(delivery) -> None:
    _check("agi", delivery)


def test_staged_table_is_typed_like_the_contract() -> None:
    result = stage_rows("agi", [("1", "201901", "2", "3")])
    assert result.staged.schema == pl.Schema(TABLES["agi"].schema)
