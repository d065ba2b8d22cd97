"""Prediction with trained category models (rule ``predict``, ``python -m fashionai``)."""
