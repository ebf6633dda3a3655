"""The report's Excel workbook: one sheet per table with its title, notes, Swedish headers,
frozen header rows, column widths and number formats; byte-stable."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import xlsxwriter

from pipeline.core import io
from pipeline.report.html import Section

# xlsxwriter number formats by column kind (Excel shows them in the reader's locale).
NUMBER_FORMATS = {
    "count": "#,##0",
    "sek": "#,##0",
    "years": "0",
    "percent": "0.0",
    "pp": "0.0",
    "share": "0.0",
    "days": "0.0",
    "ratio": "0.00",
    "p": "0.000",
    "stat": "0.000",
}
SOURCE = "Källa: outputs/tables/{file}. Definitioner: docs/methods.md."


def sheet_name(anchor: str, used: set[str]) -> str:
    """A unique sheet name of at most 31 characters for a table's anchor."""
    name = anchor[:31]
    while name in used:
        name = name[:29] + f"_{len(used)}"
    used.add(name)
    return name


def write_workbook(path: Path, sections: Sequence[Section]) -> Path:
    """One sheet per section: title, notes, header rows (frozen), then the rows; numbers of
    generic tables as numbers with formats, publication layouts as printed text. Written
    atomically to `path`, which is returned."""
    with io.atomic_path(path) as tmp:
        book = xlsxwriter.Workbook(str(tmp))
        created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # fixed, not now: byte-stable files
        book.set_properties({"created": created.replace(tzinfo=None)})
        title_format = book.add_format({"bold": True, "font_size": 12})
        note_format = book.add_format({"italic": True, "font_color": "#555555"})
        head_format = book.add_format({"bold": True, "bottom": 1, "text_wrap": True})
        block_format = book.add_format({"italic": True})
        right = book.add_format({"align": "right"})
        formats = {k: book.add_format({"num_format": v}) for k, v in NUMBER_FORMATS.items()}
        used: set[str] = set()
        for section in sections:
            layout = section.layout
            sheet = book.add_worksheet(sheet_name(section.anchor, used))
            sheet.write(0, 0, section.title, title_format)
            notes = [*section.notes, SOURCE.format(file=f"{section.anchor}.csv")]
            for i, note in enumerate(notes, start=1):
                sheet.write(i, 0, note, note_format)
            top = len(notes) + 2
            for h, header_row in enumerate(layout.header):
                sheet.write(top + h, 0, layout.corner if h == 0 else "", head_format)
                col = 1
                for text, span in header_row:
                    if span > 1:
                        sheet.merge_range(top + h, col, top + h, col + span - 1, text, head_format)
                    else:
                        sheet.write(top + h, col, text, head_format)
                    col += span
            first = top + len(layout.header)
            for r, row in enumerate(layout.rows, start=first):
                sheet.write(r, 0, row.label, block_format if row.block else None)
                for c, text in enumerate(row.cells, start=1):
                    number = row.values[c - 1] if row.values else None
                    if number is not None:
                        sheet.write_number(r, c, number, formats[layout.kinds[c - 1]])
                    else:
                        sheet.write_string(r, c, text, right)
            sheet.freeze_panes(first, 1)
            width = max([len(section.title) // 3, *(len(r.label) for r in layout.rows), 12])
            sheet.set_column(0, 0, min(width, 60))
            sheet.set_column(1, max(layout.width, 1), 16)
        book.close()
    return path
