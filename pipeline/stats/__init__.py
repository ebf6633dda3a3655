"""Statistics: estimators, intervals and the suppression algorithm.

Numbers and frames in, results out. No paths, no configuration, no labels:
a module here imports nothing from `pipeline` but `pipeline.core.errors`
and other `pipeline.stats` modules.
"""
