"""Training one attribute classifier per category: settings, data, model, resumable runs.

Modules, one job each (import them directly; this package imports nothing heavy itself, so
the workflow can validate settings without loading TensorFlow):

- ``settings``: :class:`TrainSettings`, the validated ``train:`` configuration.
- ``images``: decode and resize image files (tf.io), for training and prediction.
- ``dataset``: list a regrouped tree, stratified split, tf.data pipelines, undecodable files.
- ``backbones``: the supported backbones and how they are built and preprocessed.
- ``augment``: the named random augmentation layers.
- ``model``: feature extractor + head composed into the full classifier; fine-tuning switch.
- ``features``: the frozen backbone's features computed once and cached on disk (rule
  ``features``), so frozen epochs train the head alone on them.
- ``devices``: threads, GPUs, distribution strategy, mixed precision.
- ``targets``: soft training targets from the ``m`` codes (``maybe_labels: soft``).
- ``resume``: the run state kept in ``.backup/`` so a killed run continues where it stopped.
- ``callbacks``: per-epoch logging, history/best/early stopping, the resumable backup.
- ``run``: :func:`train_category`, the whole training of one category.
- ``weights``: the ImageNet no-top weights URLs and a one-time download.
"""
