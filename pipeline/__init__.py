"""Register pipeline for the evaluation of koordineringsinsatser (KVÅ GC001).

One module per stage (`pipeline.synth`, `pipeline.stage`, ...), each a set of
pure functions on polars frames plus a thin `run(cfg)` that reads, calls them
and writes. `python -m pipeline STAGE` runs a stage with the configuration in
params.yaml (see `pipeline.config`).
"""

__version__ = "0.1.0"
