"""Shared fixtures: the `tiny` synthetic delivery, generated once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.__main__ import STAGES, main
from pipeline.stages.synth import Synthetic, generate
from tests.helpers import E2E_PERSONS, synth_params


@pytest.fixture(scope="session")
def tiny() -> Synthetic:
    """The tiny synthetic delivery at the configured seed."""
    return generate(synth_params())


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """Every stage run once through the CLI on 20 000 synthetic persons, in a temporary dir."""
    base = tmp_path_factory.mktemp("e2e")
    overrides = [
        "synth.size=small",
        f"synth.sizes.small={E2E_PERSONS}",
        f"synth.out_dir={base}/delivery",
        f"synth.truth_dir={base}/truth",
        f"paths.staged={base}/staged",
        f"paths.quarantine={base}/quarantine",
        f"paths.outputs={base}/outputs",
    ]
    for stage in STAGES:
        assert main([stage, *overrides]) == 0, stage
    return base
