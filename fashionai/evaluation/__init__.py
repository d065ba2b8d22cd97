"""Evaluation of the per-category classifiers and the competition's submission format.

- :mod:`fashionai.evaluation.classes`: regrouped classes (``labels.json``) and their mapping
  onto the official classes of a category.
- :mod:`fashionai.evaluation.metric`: the competition metric (AP, BasicPrecision) and a
  per-class classification report.
- :mod:`fashionai.evaluation.report`: loading the validation rows and writing ``metrics.json``.
- :mod:`fashionai.evaluation.submission`: ``question.csv`` in, ``submission.csv`` out, and the
  summary table over all categories.
"""
