"""Evaluation of the trained models (rules ``evaluate`` and ``summarize``): ``metric`` (the
competition metric), ``evaluate`` (one category's held-out images), ``summary`` (the table)."""
