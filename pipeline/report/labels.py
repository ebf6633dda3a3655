"""The one vocabulary a reader sees: group, total, ownership, care-level and length labels.

Stages keep `treated` (bool) and English keys; these words appear only where a
published table or figure is laid out. Some of them are stored as data values
(the income tables' length classes), so changing a word here changes outputs.
"""

from __future__ import annotations

GROUP_LABEL = {True: "Insats", False: "Kontroll"}


UNKNOWN_OWNERSHIP_LABEL = "Okänd"  # B3's column of controls whose ownership is unknown


TOTAL = "Totalt"

ALL = "Alla"  # a pooled column or class: all lengths, all analysed regions, all care levels


CARE_LEVEL_LABEL = {
    "primary_care": "Primärvård",
    "specialised": "Specialiserad öppen- och slutenvård",
}

SEX_BLOCK, AGE_BLOCK = "Kön", "Ålder"  # Table 2 / B3 / B6 block names
MEAN_AGE = "Medelålder"  # the age row of Table 2 by region
KM_TITLE = "Tid från index till sjukperiodens slut"  # title of the Kaplan-Meier figure

ALL_LENGTHS = ALL  # the pooled length class of the income tables
LENGTH_CLASSES = ("<2 år", "2+ år", ALL_LENGTHS)  # cohort `length_class` values, then the pool
