"""Measurements taken during training, one submodule per measurement (the callback, accessors and summaries of
its own result):

activations (per-layer activation statistics over training), ics (Santurkar's internal covariate shift),
landscape (Santurkar's loss-landscape probes along the gradient).
"""
from .activations import ActivationRecorder, activation_shape_stats, channel_moment_changes, layer_array
from .landscape import LandscapeProbe, band_summary, landscape_bands, probe_landscape
from .ics import ICS, ics_array

__all__ = ["ActivationRecorder", "ICS", "LandscapeProbe", "activation_shape_stats", "band_summary",
           "channel_moment_changes", "ics_array", "landscape_bands", "layer_array", "probe_landscape"]
