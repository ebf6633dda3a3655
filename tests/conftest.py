"""Shared fixtures: the `tiny` synthetic delivery, generated once per session."""

from __future__ import annotations

import pytest

from pipeline import config
from pipeline.synth import Synthetic, generate
from pipeline.synth.params import SynthParams


def synth_params(*overrides: str) -> SynthParams:
    """Generator parameters for the tiny size with `overrides` (Hydra syntax)."""
    cfg = config.compose(["synth.size=tiny", *overrides])
    return SynthParams.from_config(cfg.synth, cfg.codes)


@pytest.fixture(scope="session")
def tiny() -> Synthetic:
    """The tiny synthetic delivery at the configured seed."""
    return generate(synth_params())
