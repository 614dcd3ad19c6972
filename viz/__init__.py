"""The visual layer: reads what regmix writes (metrics.jsonl, records) and draws figures.

regmix never imports this package; figures are rendered wherever the records are.
"""
from .curves import plot_loss_terms, read_metrics
from .export import save_figure

__all__ = ["plot_loss_terms", "read_metrics", "save_figure"]
