"""Measurements taken during training, one submodule per measurement:

activations (per-layer activation statistics over training).
"""
from .activations import ActivationRecorder, layer_array
from .landscape import LandscapeProbe, landscape_bands, probe_landscape

__all__ = ["ActivationRecorder", "layer_array"]
