"""Core: configuration, atomic I/O, the SQL runner, the data contract and errors.

Everything else may import from here; nothing here imports another layer.
"""
