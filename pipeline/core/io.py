"""Writing outputs atomically and deterministically.

Every output is written to a temporary file in the same directory and then
renamed over the target (`os.replace`), so a stage killed mid-write leaves the
previous file or no file, never a partial one that DVC would accept.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

_UMASK = os.umask(0)
os.umask(_UMASK)

# Fixed parquet settings so reruns give byte-identical files.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "statistics": True,
    "row_group_size": 1_000_000,
}


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_parquet(frame: pl.DataFrame | pl.LazyFrame, path: str | Path) -> Path:
    """Write `frame` to `path` atomically with fixed parquet settings; returns the path."""
    with atomic_path(path) as tmp:
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(tmp, **PARQUET_OPTIONS)
        else:
            frame.write_parquet(tmp, **PARQUET_OPTIONS)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    """Write `obj` as indented JSON with sorted keys, atomically; returns the path."""
    return write_text_atomic(
        path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )


def write_csv(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write `frame` as UTF-8 CSV (comma, header, ISO dates) atomically; returns the path."""
    with atomic_path(path) as tmp:
        frame.write_csv(tmp)
    return Path(path)


def remove_stale_temporaries(root: str | Path) -> int:
    """Delete temporary files that a killed writer left under `root`; returns how many.

    `atomic_path` names them `.<target>.<random>.tmp`; a stage killed between writing
    and renaming leaves one behind, which must not end up in a DVC-tracked directory.
    """
    removed = 0
    base = Path(root)
    if not base.exists():
        return 0
    for path in base.rglob(".*.tmp"):
        if path.is_file():
            path.unlink()
            removed += 1
    return removed
