"""Interactive explorers for JupyterLab (ipywidgets + plotly FigureWidget), each with export buttons.

AMRWeightExplorer:   alpha, beta, gamma, T sliders -> simplex flow, loss terms, softmax, sweep accuracy, fine-tune
DistributionExplorer: clean / initial / final adversarial softmax against the truth, across runs
LandscapeExplorer:   weight-space loss surface of a run (contour + 3D) with its smoothness numbers
"""
from .amr import AMRWeightExplorer
from .distribution import DistributionExplorer
from .export_bar import ExportBar
from .landscape import LandscapeExplorer

__all__ = ["AMRWeightExplorer", "DistributionExplorer", "ExportBar", "LandscapeExplorer"]
