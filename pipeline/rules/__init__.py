"""Domain rules used by two or more stages (sick days in a window, risk sets, ...).

Frames and typed values in, frames out; they may use `core`, `stats` and the
report vocabulary (`report.labels`) for values that are stored as data.
"""
