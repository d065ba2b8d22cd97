"""Evaluation of the trained models: the competition metric, scores, tables and cards."""
