"""Command line: `python -m pipeline STAGE [hydra overrides ...]`.

`params` writes the composed configuration to params.yaml. Every other name runs
that stage with params.yaml, or, when overrides are given, with conf/ composed
under them (for runs outside DVC).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time

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


def main(argv: list[str] | None = None) -> int:
    """Run the named stage; returns the process exit status (0 ok, 2 user error)."""
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument("stage", choices=["params", *STAGES])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. synth.size=tiny")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
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
