"""Prediction with trained category models (rule ``predict``, ``python -m fashionai``):
``predict`` (a trained model on image files), ``classes`` (regrouped -> official classes),
``submission`` (``Tests/question.csv`` in, ``submission.csv`` out)."""
