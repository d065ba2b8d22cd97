"""Figures of the workflow, each on a plain matplotlib ``Figure`` (no pyplot: no display, no
global backend): label statistics, preview grids, learning curves, confusion matrices."""
