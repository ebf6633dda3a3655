"""Hydra config, params.yaml and dvc.yaml stay in step; the CLI fails with one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from omegaconf import OmegaConf

from pipeline import config
from pipeline.__main__ import STAGES
from pipeline.errors import PipelineError


def _dvc_stages() -> dict:
    return yaml.safe_load(config.DVC_FILE.read_text(encoding="utf-8"))["stages"]


def test_params_yaml_is_the_composed_hydra_config():
    """Fails when conf/ changed and `python -m pipeline params` was not rerun."""
    committed = OmegaConf.to_container(OmegaConf.load(config.PARAMS_FILE))
    assert committed == OmegaConf.to_container(config.compose()), (
        "params.yaml is stale: run `python -m pipeline params`"
    )


def test_every_dvc_stage_runs_a_pipeline_stage_of_its_own_name():
    for name, stage in _dvc_stages().items():
        assert stage["cmd"] == f"python -m pipeline {name}"
        assert name in STAGES


def test_every_param_dvc_tracks_exists_in_the_config():
    cfg = config.compose()
    for name in _dvc_stages():
        keys = config.stage_params(name)
        assert keys, f"stage {name} declares no params"
        config.restrict(cfg, keys)  # raises PipelineError on a missing key


def test_a_stage_sees_only_the_keys_dvc_tracks_for_it():
    cfg = config.restrict(config.compose(), config.stage_params("synth"))
    assert set(cfg) == {"synth", "codes"}
    assert set(cfg.codes) == {"regions"}
    with pytest.raises(Exception, match="data"):
        _ = cfg.data


def test_restrict_names_a_key_that_is_missing():
    with pytest.raises(PipelineError, match=r"no_such\.key"):
        config.restrict(config.compose(), ["no_such.key"])


def test_delivery_template_composes_and_maps_every_table():
    cfg = config.compose(["data=delivery"])
    assert set(cfg.data.tables) == {
        "sjukpenning", "vardkontakter", "agi", "bakgrund", "fk_handelser", "regionenkat"
    }  # fmt: skip
    assert all(t.columns for t in cfg.data.tables.values())


def test_cli_bad_override_exits_2_with_one_line_and_no_traceback():
    run = subprocess.run(
        [sys.executable, "-m", "pipeline", "synth", "data=nonexistent"],
        capture_output=True,
        text=True,
        cwd=config.ROOT,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "nonexistent" in errors[0]
