import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from bnutils import plots


def test_frames_slider_is_self_contained():
    html = plots.frames_slider(lambda fig, v: fig.subplots().plot([0, v]), [1, 2, 3], figsize=(2, 2))
    assert html.count("data:image/png;base64") == 3  # one embedded frame per value
    assert "https://" not in html and 'class="fa' not in html and 'type="range"' in html


def test_band_handles_diverged_runs_of_different_length():
    fig, ax = plt.subplots()
    plots.band(ax, range(5), [[1, 2, 3, 4, 5], [1, 2, math.nan], [2, 3]], kind="batchnorm")
    line = ax.get_lines()[0]
    assert np.allclose(line.get_ydata()[:2], [4 / 3, 7 / 3]) and line.get_ydata()[3] == 4
    plt.close(fig)


def test_histograms_over_time_one_column_per_record():
    fig, ax = plt.subplots()
    rng = np.random.default_rng(0)
    plots.histograms_over_time(ax, [0, 10, 20], [rng.normal(size=100), rng.normal(2, size=100), [np.nan, 1.0]], bins=10)
    assert ax.images[0].get_array().shape == (10, 3)
    plt.close(fig)


def test_every_variant_has_a_colour_and_label():
    from bnutils.norms import NORM_KINDS
    assert all(k in plots.COLORS and k in plots.LABELS for k in NORM_KINDS)
