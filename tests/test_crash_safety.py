"""A stage killed in the middle of writing leaves no partial output, and a rerun repairs it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import polars as pl

from pipeline.core import config

KILL_ON_THIRD_RENAME = """
import os, signal, sys
real_replace, calls = os.replace, [0]
def replace(src, dst):
    calls[0] += 1
    if calls[0] == 3:  # the third output is written to its temporary file, not renamed
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
os.replace = replace
from pipeline.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=config.ROOT, capture_output=True, text=True
    )


def files(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_a_killed_synth_leaves_whole_files_or_none_and_a_rerun_matches_a_clean_run(tmp_path):
    overrides = [
        "synth",
        "synth.size=tiny",
        f"synth.out_dir={tmp_path}/delivery",
        f"synth.truth_dir={tmp_path}/truth",
        f"paths.outputs={tmp_path}/outputs",
    ]
    killed = run(KILL_ON_THIRD_RENAME, *overrides)
    assert killed.returncode == -9
    delivery = tmp_path / "delivery"
    finished = [p for p in delivery.iterdir() if not p.name.startswith(".")]
    leftovers = [p for p in delivery.iterdir() if p.name.startswith(".")]
    assert len(finished) == 2 and len(leftovers) == 1  # two renamed, the third only a temporary
    for path in finished:
        assert pl.read_parquet(path).height > 0  # complete, readable files
    rerun = run(
        "import sys; from pipeline.__main__ import main; sys.exit(main(sys.argv[1:]))", *overrides
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "removed 1 temporary files" in rerun.stderr
    clean = tmp_path / "clean"
    clean_overrides = [o.replace(str(tmp_path), str(clean)) for o in overrides]
    fresh = run(
        "import sys; from pipeline.__main__ import main; sys.exit(main(sys.argv[1:]))",
        *clean_overrides,
    )
    assert fresh.returncode == 0
    assert files(delivery) == files(clean / "delivery")
