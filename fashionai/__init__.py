"""FashionAI attribute-training pipeline: the logic behind the Snakemake workflow's scripts."""

__version__ = "0.1.0"
