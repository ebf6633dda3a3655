"""Register pipeline for the evaluation of koordineringsinsatser (KVÅ GC001).

One module per stage (`pipeline.stages.synth`, `pipeline.stages.stage`, ...), each a set of
pure functions on polars frames plus a thin `run(cfg)` that reads, calls them
and writes. `python -m pipeline STAGE` runs a stage with the configuration in
params.yaml (see `pipeline.core.config`).
"""

import os

# Linear algebra on one thread: a multi-threaded BLAS sums in a different order
# with another thread count, which changes model estimates in the last digits and
# so the bytes of the outputs. The models are small; determinism wins.
# (Polars and DuckDB results do not depend on their thread counts.)
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

__version__ = "0.1.0"
