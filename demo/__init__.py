"""The demo's synthetic dataset (``demo.synthetic``, drawn by ``demo.drawing``, planned by
``demo.planning``, written by ``demo.writing``): used by rule make_synthetic and the tests."""
