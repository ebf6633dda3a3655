"""The make-free commands (issue 17): `python -m pipeline repro` and `... test` run what
`make repro` and `make test` ran, with this interpreter's environment first on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

import pipeline.__main__ as cli
from pipeline.core import config


def test_repro_writes_params_and_runs_dvc_with_this_python_first_on_path(monkeypatch):
    calls = []

    def fake_run(command, cwd, env, check):
        calls.append((command, cwd, env))
        return subprocess.CompletedProcess(command, 0)

    written = []
    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    monkeypatch.setattr(
        cli.config, "write_params", lambda cfg: written.append(cfg) or config.ROOT / "params.yaml"
    )
    assert cli.main(["repro", "synth.size=tiny"]) == 0
    assert written[0].synth.size == "tiny"
    ((command, cwd, env),) = calls
    assert command == [sys.executable, "-m", "dvc", "repro"] and cwd == config.ROOT
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


def test_test_runs_the_make_test_checks_in_order_and_stops_at_the_first_failure(monkeypatch):
    seen = []

    def fake_run(command, cwd, env):
        seen.append(command[2])
        return subprocess.CompletedProcess(command, 1 if command[2] == "sqlfluff" else 0)

    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    assert cli.main(["test"]) == 1
    assert seen == ["ruff", "ruff", "sqlfluff"]  # pytest never ran


def test_the_makefile_targets_are_the_make_free_commands():
    makefile = (config.ROOT / "Makefile").read_text()
    assert "$(BIN)/python -m pipeline test" in makefile
    assert "$(BIN)/python -m pipeline repro $(OVERRIDES)" in makefile
    # the stage commands DVC runs are the same module
    stages = yaml.safe_load((config.ROOT / "dvc.yaml").read_text())["stages"]
    assert all(s["cmd"] == f"python -m pipeline {name}" for name, s in stages.items())


def test_an_installed_package_runs_in_the_working_directory(tmp_path):
    # a source checkout is found beside the package; a wheel's copy in site-packages has
    # no dvc.yaml beside it, so the repository is the working directory
    assert config.project_root(Path(config.__file__), tmp_path) == config.ROOT
    installed = tmp_path / "env" / "lib" / "site-packages" / "pipeline" / "core" / "config.py"
    installed.parent.mkdir(parents=True)
    installed.touch()
    assert config.project_root(installed, tmp_path / "repo") == tmp_path / "repo"
