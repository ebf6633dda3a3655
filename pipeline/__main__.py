"""Command line: `python -m pipeline STAGE [hydra overrides ...]`.

`params` writes the composed configuration to params.yaml. `repro` writes it and
runs `dvc repro` (what `make repro` does, without make: Windows needs only Python).
`test` runs the checks of `make test` (ruff, sqlfluff, pytest). `preflight` reports what
the configured delivery holds, before anything is staged. Every other name runs
that stage with params.yaml, or, when overrides are given, with conf/ composed
under them (for runs outside DVC).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from pipeline.core import config, io
from pipeline.core.errors import PipelineError

# stage name -> module with a `run(cfg) -> None`: each dvc.yaml stage is pipeline.stages.<name>
STAGE_NAMES = (
    "synth", "stage", "spells", "exposure", "cohort", "describe", "income", "outcomes",
    "income_models", "income_tables", "riskset", "registrations", "nb_model", "survival",
    "claims", "publish", "report", "export",
)  # fmt: skip
STAGES: dict[str, str] = {name: f"pipeline.stages.{name}" for name in STAGE_NAMES}

log = logging.getLogger("pipeline")


TASKS = ("params", "preflight", "repro", "test")


def _with_this_python() -> dict[str, str]:
    """The environment with this interpreter's directory first on PATH, so that the
    stages' `python -m pipeline ...` commands (dvc.yaml) run in this environment."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def repro(overrides: list[str]) -> int:
    """Compose conf/ (with `overrides`) into params.yaml, then `dvc repro`; exit status."""
    path = config.write_params(config.compose(overrides))
    log.info("wrote %s; running dvc repro", path.relative_to(config.ROOT))
    command = [sys.executable, "-m", "dvc", "repro"]
    return subprocess.run(command, cwd=config.ROOT, env=_with_this_python(), check=False).returncode


TEST_COMMANDS = (
    ("ruff", "check", "pipeline", "tests", "benchmarks", "tools"),
    ("ruff", "format", "--check", "pipeline", "tests", "benchmarks", "tools"),
    ("sqlfluff", "lint", "sql/"),
    ("pytest", "-n", "2", "-q"),
)


def test(extra: list[str]) -> int:
    """The checks of `make test` in order (pytest gets `extra`); the first failing status."""
    for name, *args in TEST_COMMANDS:
        command = [sys.executable, "-m", name, *args, *(extra if name == "pytest" else [])]
        status = subprocess.run(command, cwd=config.ROOT, env=_with_this_python()).returncode
        if status:
            return status
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the named stage or task; returns the process exit status (0 ok, 2 user error)."""
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument("stage", choices=[*TASKS, *STAGES])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. synth.size=tiny")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        if args.stage == "repro":
            return repro(args.overrides)
        if args.stage == "test":
            return test(args.overrides)
        if args.stage == "preflight":
            from pipeline.stages.stage.preflight import run_preflight

            return run_preflight(config.compose(args.overrides))
        if args.stage == "params":
            path = config.write_params(config.compose(args.overrides))
            log.info("wrote %s", path.relative_to(config.ROOT))
            return 0
        # A stage sees only the keys dvc.yaml declares for it: no untracked config.
        full = config.load(args.overrides)
        cfg = config.restrict(full, config.stage_params(args.stage))
        # A stage killed mid-write leaves only temporaries (writes are atomic): clear them.
        for root in {
            config.resolve_path(full.paths.outputs),
            config.resolve_path(full.synth.out_dir),
        }:
            if removed := io.remove_stale_temporaries(root):
                log.warning(
                    "removed %d temporary files left by an interrupted run under %s", removed, root
                )
        started = time.perf_counter()
        importlib.import_module(STAGES[args.stage]).run(cfg)
        log.info("%s done in %.1f s", args.stage, time.perf_counter() - started)
        return 0
    except PipelineError as err:
        log.error("%s: %s", args.stage, err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
