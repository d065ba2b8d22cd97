"""The demo's synthetic dataset (``demo.synthetic``): used by rule make_synthetic and the tests."""
