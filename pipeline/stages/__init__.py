"""Stages: one module or package per `dvc.yaml` stage, each with a thin `run(cfg)`.

A stage reads its inputs, calls rules, statistics and report functions, and
writes its outputs. Nothing imports a stage.
"""
