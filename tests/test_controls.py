"""The chapters' live controls (bnutils.controls), run without a kernel: each at its defaults and at both ends of
every control's range on small data, returning a drawn Figure; out-of-range values refused before any work, with
the control and its range named. The control's own step counts are kept; only data and widths are small."""
from __future__ import annotations

import functools
import inspect
import math

import matplotlib.pyplot as plt
import pytest
from conftest import cifar_root
from matplotlib.figure import Figure

from bnutils import controls, data, models, train

needs_cifar = pytest.mark.skipif(cifar_root() is None, reason="offline CIFAR-10 not available")
N = 256  # images per split: below the ci profile's 2560 / 1000
NOISY_RUN = dict(lr=0.1, n_train=N, n_test=N, width=0.0625, batch_size=128, hist_every=5, cache=False)
SWEEP = dict(depth=8, width=0.125, n_train=N, n_test=N, device="cpu")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def cifar() -> data.Dataset:
    return data.load_cifar10(N, N, seed=0, root=cifar_root())


def ends(ranges: dict, end: int) -> dict:
    """Every control at the low (end=0) or high (end=-1) end of its range."""
    return {name: (r if isinstance(r, list) else r[:2])[end] for name, r in ranges.items()}


def short_and_slow(ranges: dict, short: dict, short_id: str) -> dict:
    """The cases of a control too slow to run at its defaults and high end in the fast tier: its low end and a
    short case always, the defaults and the high end in the slow tier (pytest.mark.parametrize's keywords)."""
    return dict(argvalues=[ends(ranges, 0), short, pytest.param({}, marks=pytest.mark.slow),
                           pytest.param(ends(ranges, -1), marks=pytest.mark.slow)],
                ids=["low", short_id, "defaults", "high"])


def drawn(fig) -> Figure:
    """The control's result is a Figure with something plotted on it."""
    assert isinstance(fig, Figure)
    assert any(ax.lines or ax.collections for ax in fig.axes), "the figure is empty"
    return fig


@needs_cifar
@pytest.mark.parametrize("values", [{}, ends(controls.RUNNING_MEAN, 0), ends(controls.RUNNING_MEAN, -1)],
                         ids=["defaults", "low", "high"])
def test_running_mean(cifar, values):
    model = models.VGG("vgg11", width=0.125, norm="batchnorm")
    fig = drawn(controls.running_mean(model, train.norm_layers(model)[-1], cifar.test, n_batches=20, **values))
    trace = fig.axes[0].lines[1].get_ydata()
    assert len(trace) == 20
    if values.get("momentum") == 1.0:  # momentum 1: the running mean is the last batch mean
        assert list(trace) == list(fig.axes[0].lines[0].get_ydata())


@needs_cifar
@pytest.mark.parametrize("values", **short_and_slow(controls.NOISE_STRENGTH, {"strength": 4.0, "steps": 20},
                                                    "strongest-short"))
def test_noise_strength(cifar, values):
    drawn(controls.noise_strength(cifar, NOISY_RUN, **values))


@pytest.mark.parametrize("values", **short_and_slow(controls.LANDSCAPE_PROBE, {**ends(controls.LANDSCAPE_PROBE, -1),
                                                                         "steps": 100}, "highest-short"))
def test_landscape_probe(values):
    fig = drawn(controls.landscape_probe(**values, cache=False))
    assert "BN" in fig.texts[0].get_text()  # the suptitle states the finding


@needs_cifar
@pytest.mark.parametrize("values", **short_and_slow(controls.LEARNING_RATE, {"log10_lr": 0.5, "steps": 50},
                                                    "largest-lr-short"))
def test_learning_rate(cifar_env, values):
    ax = drawn(controls.learning_rate(SWEEP, **values)).axes[0]
    if values.get("log10_lr") == 0.5:  # no BN diverges at lr 3.2: drawn as a cross, named in the title
        assert "no BN diverged" in ax.get_title()
        assert any(line.get_marker() == "x" for line in ax.lines)


@pytest.mark.parametrize("fn, ranges", [(controls.running_mean, controls.RUNNING_MEAN),
                                        (controls.noise_strength, controls.NOISE_STRENGTH),
                                        (controls.landscape_probe, controls.LANDSCAPE_PROBE),
                                        (controls.learning_rate, controls.LEARNING_RATE)])
def test_defaults_are_control_values(fn, ranges):
    """The sliders start at the function's defaults, so those must be values the controls can take."""
    params = inspect.signature(fn).parameters
    assert set(ranges) <= set(params)
    controls.check(ranges, **{name: params[name].default for name in ranges})


# The notebook's objects are None here: a bad control value must be refused before they are touched.
RUNNING_MEAN = functools.partial(controls.running_mean, None, None, None)
NOISE_STRENGTH = functools.partial(controls.noise_strength, None, {})
LEARNING_RATE = functools.partial(controls.learning_rate, {})


@pytest.mark.parametrize("fn, values, message", [
    (LEARNING_RATE, dict(log10_lr=float("nan")), r"log10_lr=nan must be a finite number in \[-4.0, 0.5\]"),
    (LEARNING_RATE, dict(log10_lr=1.0), r"log10_lr=1.0 .*\[-4.0, 0.5\]"),
    (LEARNING_RATE, dict(log10_lr="-1"), r"log10_lr='-1' must be a finite number"),
    (LEARNING_RATE, dict(steps=0), r"steps=0 must be an integer in \[50, 200\]"),
    (LEARNING_RATE, dict(steps=100.0), r"steps=100.0 must be an integer"),
    (LEARNING_RATE, dict(steps=True), r"steps=True must be an integer"),
    (RUNNING_MEAN, dict(batch_size=1), r"batch_size=1 must be an integer in \[2, 256\]"),
    (RUNNING_MEAN, dict(batch_size=257), r"batch_size=257"),
    (RUNNING_MEAN, dict(momentum=0.0), r"momentum=0.0 must be a finite number in \[0.01, 1.0\]"),
    (RUNNING_MEAN, dict(momentum=math.inf), r"momentum=inf"),
    (NOISE_STRENGTH, dict(strength=-0.25), r"strength=-0.25 must be a finite number in \[0.0, 4.0\]"),
    (NOISE_STRENGTH, dict(strength=float("nan")), r"strength=nan"),
    (NOISE_STRENGTH, dict(steps=10), r"steps=10 must be an integer in \[20, 500\]"),
    (NOISE_STRENGTH, dict(steps=520), r"steps=520"),
    (controls.landscape_probe, dict(lr=2e-6), r"lr=2e-06 is not one of the control's values"),
    (controls.landscape_probe, dict(max_rel=2.0), r"max_rel=2.0 is not one of .*\[1.0, 4.0, 16.0, 30.0\]"),
    (controls.landscape_probe, dict(steps=2050), r"steps=2050 must be an integer in \[50, 2000\]"),
])
def test_bad_values_name_the_control(fn, values, message):
    with pytest.raises(ValueError, match=message):
        fn(**values)
