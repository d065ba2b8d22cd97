"""Figures of the workflow: label statistics, preview grids, learning curves, confusion matrices.

Every module draws on a plain matplotlib ``Figure`` (no pyplot), so nothing needs a display,
a figure is freed with its last reference, and the global pyplot backend is never changed.
"""
