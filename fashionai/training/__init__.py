"""Training one attribute classifier per category: settings, data, model, resumable runs.

Import the modules directly (the README lists them): this package imports nothing heavy itself,
so the workflow can validate settings without loading TensorFlow.
"""
