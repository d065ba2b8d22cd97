"""Prediction with trained category models: the rule ``predict`` and ``python -m fashionai``.

- :mod:`fashionai.prediction.predict`: loading a trained model (:class:`TrainedModel`) and
  predicting image files in batches, optionally with horizontal-flip test-time augmentation.
- :mod:`fashionai.prediction.classes`: the regrouped classes of a model and how their
  probabilities spread over the official classes of the competition.
- :mod:`fashionai.prediction.submission`: ``Tests/question.csv`` in, ``submission.csv`` out.
"""
