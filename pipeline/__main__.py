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

from pipeline import config, io
from pipeline.errors import PipelineError

# stage name -> module with a `run(cfg) -> None`
STAGES: dict[str, str] = {
    "synth": "pipeline.synth",
    "stage": "pipeline.stage",
    "spells": "pipeline.spells",
    "exposure": "pipeline.exposure",
    "cohort": "pipeline.cohort",
    "describe": "pipeline.describe",
    "income": "pipeline.income",
    "outcomes": "pipeline.outcomes",
    "income_models": "pipeline.income_models",
    "income_tables": "pipeline.income_tables",
    "riskset": "pipeline.riskset",
    "registrations": "pipeline.registrations",
    "nb_model": "pipeline.nb_model",
    "survival": "pipeline.survival_analysis",
    "claims": "pipeline.claims",
    "report": "pipeline.report",
}

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
