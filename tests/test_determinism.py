"""Same input, config and seed give byte-identical outputs, with one thread or two."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from pipeline.core import config
from tests.helpers import E2E_PERSONS

TEXT = {".csv", ".json", ".html"}


def digests(base: Path) -> dict[str, str]:
    """sha256 of every file under `base`/outputs, with the run's own directory masked in text."""
    out = {}
    for path in sorted((base / "outputs").rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix in TEXT:
            data = data.replace(str(base).encode(), b"<BASE>")
        out[str(path.relative_to(base))] = hashlib.sha256(data).hexdigest()
    return out


def test_a_second_run_with_one_thread_writes_the_same_bytes(run_dir, tmp_path):
    overrides = [
        "synth.size=small",
        f"synth.sizes.small={E2E_PERSONS}",
        f"synth.out_dir={tmp_path}/delivery",
        f"synth.truth_dir={tmp_path}/truth",
        f"paths.staged={tmp_path}/staged",
        f"paths.quarantine={tmp_path}/quarantine",
        f"paths.outputs={tmp_path}/outputs",
    ]
    script = (
        "import sys; from pipeline.__main__ import STAGES, main;"
        "sys.exit(max(main([s, *sys.argv[1:]]) for s in STAGES))"
    )
    env = os.environ | {
        "POLARS_MAX_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    subprocess.run([sys.executable, "-c", script, *overrides], check=True, env=env,
                   cwd=config.ROOT, capture_output=True)  # fmt: skip
    first, second = digests(run_dir), digests(tmp_path)
    assert first.keys() == second.keys()
    differing = sorted(name for name in first if first[name] != second[name])
    assert differing == []
