"""The report's Excel workbook: the shown tables, one sheet each, byte-stable."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import xlsxwriter

from pipeline.core import io
from pipeline.report.formatting import display

ATTRITION_SHEET = ("attrition.csv", "Urval")  # (name, title) of the first sheet


SHEET_EXTRA = {
    "nb_extra_days.csv": (
        " Tomma resultat: extrapolerat (utanför båda gruppernas tidigare sjukdagar)."
    ),
    "nb_extra_days_fractional.csv": (
        " Känslighetsanalys: fraktionell logit av sjukdagar / fönstrets dagar, samma"
        " g-beräkning som den negativa binomialen. Tomma resultat: extrapolerat."
    ),
    "nb_l1334.csv": " L1334: insatsgruppen, IRR per 30 dagars senare första GC001.",
}


def sheet_notes(files: list[str]) -> dict[str, str]:
    """The notes row of each table file's sheet: where it comes from, where terms are defined."""
    return {
        f: f"Källa: outputs/tables/{f}. Definitioner: docs/methods.md.{SHEET_EXTRA.get(f, '')}"
        for f in files
    }


def write_workbook(
    path: Path, tables: list[tuple[str, str, pl.DataFrame]], notes: dict[str, str]
) -> Path:
    """One sheet per table: title row, notes row (definitions, config keys), the table (cells by
    `display`); written atomically to `path`, which is returned."""
    with io.atomic_path(path) as tmp:
        book = xlsxwriter.Workbook(str(tmp), {"strings_to_numbers": True})
        created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # fixed, not now: byte-stable files
        book.set_properties({"created": created.replace(tzinfo=None)})
        bold = book.add_format({"bold": True})
        used: set[str] = set()
        for name, title, frame in tables:
            sheet_name = name.removesuffix(".csv")[:31]
            while sheet_name in used:
                sheet_name = sheet_name[:29] + f"_{len(used)}"
            used.add(sheet_name)
            sheet = book.add_worksheet(sheet_name)
            sheet.write(0, 0, title, bold)
            sheet.write(1, 0, notes.get(name, ""))
            sheet.write_row(3, 0, frame.columns, bold)
            for i, row in enumerate(frame.iter_rows(), start=4):
                sheet.write_row(i, 0, [display(v) for v in row])
        book.close()
    return path
