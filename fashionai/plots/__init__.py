"""Figures of the workflow, each on a plain matplotlib ``Figure`` (no pyplot: no display)."""
