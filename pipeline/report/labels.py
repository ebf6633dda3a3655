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
    "specialised": "Specialiserad psykiatrisk öppen- och slutenvård",
}

SEX_BLOCK, AGE_BLOCK = "Kön", "Ålder"  # Table 2 / B3 / B6 block names
MEAN_AGE = "Medelålder"  # the age row of Table 2 by region
KM_TITLE = "Tid från index till sjukperiodens slut"  # title of the Kaplan-Meier figure

ALL_LENGTHS = ALL  # the pooled length class of the income tables
LENGTH_CLASSES = ("<2 år", "2+ år", ALL_LENGTHS)  # cohort `length_class` values, then the pool

# The output-checking log (outputs/disclosure_log.csv) as the report prints it.
DISCLOSURE_TITLE = "Röjandekontroll: vad som döljs och varför"
DISCLOSURE_COLUMNS = {
    "file": "Fil",
    "cells_shown": "Visade celler",
    "hidden_primary": "Dolda: under gränsen",
    "hidden_complement": "Dolda: komplement (n − antal)",
    "hidden_secondary": "Dolda: sekundärt",
    "hidden_linked": "Dolda: som i annan tabell",
    "hidden_by_stage": "Dolda: redan av steget",
    "hidden_not_applicable": "Tomma: ej tillämpliga",
    "values_hidden_with_them": "Dolda härledda värden",
    "rounded": "Avrundade",
    "non_finite_emptied": "Ej tal (tömda)",
}
DISCLOSURE_NOTE = (
    "Varje tabell i outputs/tables har skrivits genom en och samma publiceringsgrind. "
    "Antal personer under {min_count} visas inte ('..'), inte heller ett antal som kan "
    "räknas fram som n − antal, ur en andel och dess n, ur marginaler, nästlade "
    "populationer, kumulativa fönster eller samma cell i en annan tabell; värden som "
    "bygger på ett dolt antal döljs med det, och medelvärden och medianer visas bara för "
    "minst {min_count} personer. Regler: {rules}. Tom cell = ej tillämplig."
)
