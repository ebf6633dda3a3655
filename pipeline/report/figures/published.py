"""Tables as the publication gate wrote them, typed again for the figures drawn from them."""

from __future__ import annotations

import polars as pl

from pipeline.report.publication.spec import HIDDEN_TEXT


def typed(published: pl.DataFrame) -> pl.DataFrame:
    """A table as the gate published it (all text, hidden cells "..") typed for drawing, same
    rows: hidden cells null; a column of whole numbers Int64, of other numbers Float64, of
    true/false Boolean; any other column (and codes with a leading zero) text."""
    out = []
    for name in published.columns:
        column = published[name].replace(HIDDEN_TEXT, None)
        values = column.drop_nulls()
        if values.len() and values.is_in(["true", "false"]).all():
            out.append(column == "true")
            continue
        number = column.cast(pl.Float64, strict=False)
        coded = values.str.contains(r"^0\d").any()  # a code such as region "01" stays text
        if coded or number.null_count() != column.null_count() or not values.len():
            out.append(column)
        elif (number.drop_nulls() == number.drop_nulls().round()).all():
            out.append(number.cast(pl.Int64))
        else:
            out.append(number)
    return pl.DataFrame(out)
