"""The one publication gate: every file a user can take out is written through it
(docs/methods.md, "Disclosure control"). `publish` = `gate.protect` + `check.violations`."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from pipeline.report.publication.check import violations
from pipeline.report.publication.gate import DisclosureError, TableLog, protect
from pipeline.report.publication.spec import DisclosureRules, TableSpec

__all__ = ["DisclosureError", "DisclosureRules", "TableLog", "TableSpec", "publish"]


def publish(
    frame: pl.DataFrame,
    spec: TableSpec,
    rules: DisclosureRules,
    published: Mapping[str, pl.DataFrame] | None = None,
) -> tuple[pl.DataFrame, TableLog]:
    """The protected table and its log; raises DisclosureError naming file, column and row
    if the protected table still shows or implies a forbidden count."""
    protected, log = protect(frame, spec, rules, published)
    found = violations(protected, spec, rules, published)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise DisclosureError(f"refusing to publish: {found[0]}{more}")
    return protected, log
