"""Evaluation of the trained models: the rules ``evaluate`` and ``summarize``.

- :mod:`fashionai.evaluation.metric`: the competition metric (AP, BasicPrecision) and a
  per-class classification report.
- :mod:`fashionai.evaluation.evaluate`: one category's held-out images (test, and validation)
  predicted and scored into ``metrics.json`` and its confusion matrix.
- :mod:`fashionai.evaluation.summary`: the table of every category's figures and their mean.

Predicting images and the regrouped -> official classes come from :mod:`fashionai.prediction`.
"""
