"""Figures of the workflow: label statistics, preview grids, learning curves, confusion matrices.

Every module draws on matplotlib's Agg canvas directly (``Figure`` + ``FigureCanvasAgg``), so
nothing needs a display and the global pyplot backend is never changed.
"""
