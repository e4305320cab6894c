"""Measurements taken during training, one submodule per measurement:

activations (per-layer activation statistics over training), ics (Santurkar's internal covariate shift).
"""
from .activations import ActivationRecorder, layer_array
from .landscape import LandscapeProbe, landscape_bands, probe_landscape
from .ics import ICS

__all__ = ["ActivationRecorder", "ICS", "layer_array"]
