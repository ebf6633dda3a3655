"""Hydra config, params.yaml and dvc.yaml stay in step; the CLI fails with one clear line."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from pipeline.__main__ import STAGES
from pipeline.core import config
from pipeline.core.errors import PipelineError


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


# Plumbing every stage uses; a change there reruns nothing by itself (io writes the same
# bytes, config and errors compute nothing).
INFRASTRUCTURE = {"pipeline/__init__.py", "pipeline/core/config.py", "pipeline/core/io.py"}
INFRASTRUCTURE |= {"pipeline/core/errors.py"}
# the layers' package docstrings
INFRASTRUCTURE |= {
    f"pipeline/{layer}/__init__.py" for layer in ("core", "stats", "rules", "stages")
}
INFRASTRUCTURE |= {"pipeline/report/__init__.py"}


def _module_file(module: str) -> Path | None:
    """The repository file of a `pipeline...` module (package -> its __init__.py)."""
    base = config.ROOT / Path(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def _pipeline_imports(path: Path) -> set[str]:
    """Dotted `pipeline...` modules imported by the file (including `from pipeline import x`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("pipeline")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_every_stage_depends_on_the_code_it_imports():
    """A change in a module reruns every stage that imports it (directly or not)."""
    for name, stage in _dvc_stages().items():
        deps = [str(d) for d in stage["deps"]]
        todo, seen = [_module_file(STAGES[name])], set()
        while todo:
            path = todo.pop()
            if path is None or path in seen:
                continue
            seen.add(path)
            todo += [_module_file(m) for m in _pipeline_imports(path)]
        for path in seen:
            relative = path.relative_to(config.ROOT).as_posix()
            covered = any(relative == d or relative.startswith(d.rstrip("/") + "/") for d in deps)
            assert covered or relative in INFRASTRUCTURE, f"{name}: dvc.yaml misses {relative}"


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


def test_report_declares_whole_every_block_it_prints():
    """The report prints the whole of each REPORTED_SECTIONS block: narrowing one to the
    keys it computes with would change report.html."""
    from pipeline.stages.report import REPORTED_SECTIONS

    assert set(REPORTED_SECTIONS) <= set(config.stage_params("report"))


@pytest.mark.parametrize(
    ("stage", "reader"),
    [
        ("spells", "SpellConfig.from_config"),
        ("exposure", "ExposureConfig.from_config"),
        ("cohort", "CohortConfig.from_config"),
        ("outcomes", "OutcomeConfig.from_config"),
        ("riskset", "riskset_config"),
        ("nb_model", "NBConfig.from_config"),
        ("claims", "ClaimsConfig.from_config"),
    ],
)
def test_a_stages_typed_config_needs_only_the_keys_dvc_tracks(stage, reader):
    """Params are declared by exact keys: the typed slice builds from them alone."""
    read = importlib.import_module(STAGES[stage])
    for name in reader.split("."):
        read = getattr(read, name)
    read(config.restrict(config.compose(), config.stage_params(stage)))


@pytest.mark.parametrize(
    ("stage", "key", "typo"),
    [
        ("describe", "describe.fig8_year_basis", "first_gc01"),
        ("income_models", "regression.family", "probit"),
        ("income_tables", "significance.method", "adjusted"),
        ("report", "report.compare_published", "yes"),
    ],
)
def test_an_enumerated_value_with_a_typo_stops_its_stage_with_one_line(stage, key, typo, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "pipeline", stage, f"{key}={typo}", f"paths.outputs={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=config.ROOT,
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and key in errors[0] and typo in errors[0], run.stderr
