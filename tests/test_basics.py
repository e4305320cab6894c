import math
"""Chapter 1's experiment functions."""

import numpy as np
import pytest
import torch

from bnutils import data as D
from bnutils.experiments import basics as B
from bnutils.models import VGG
from bnutils.train import train


def _images(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.randn(n, 3, 32, 32, generator=g) + y.view(-1, 1, 1, 1) * 0.3
    return D.Dataset("toy", D.Split(x[: n // 2], y[: n // 2]), D.Split(x[n // 2:], y[n // 2:]))


def test_scratch_vs_torch_agrees_and_would_notice_a_difference():
    x = torch.randn(16, 4, 5, 5) * 2 + 1
    assert max(B.scratch_vs_torch(x).values()) < 1e-10
    assert B.scratch_vs_torch(x, momentum=0.3)["running_mean"] < 1e-10


def test_train_mode_accuracy_restores_running_statistics():
    model = VGG("vgg11", width=1 / 16, norm="batchnorm")
    data = _images()
    train(model, data, steps=5, lr=0.05, batch_size=32, progress=False)
    before = {k: v.clone() for k, v in model.named_buffers()}
    model.eval()
    acc = B.train_mode_accuracy(model, data.test, 8, n_images=64)
    assert 0 <= acc <= 1 and not model.training
    assert all(torch.equal(before[k], v) for k, v in model.named_buffers())


def test_fold_model_removes_every_bn_and_keeps_outputs():
    model = VGG("vgg11", width=1 / 16, norm="batchnorm")
    train(model, _images(), steps=5, lr=0.05, batch_size=32, progress=False)
    model.eval()
    folded = B.fold_model(model)
    x = torch.randn(4, 3, 32, 32)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert (model(x) - folded(x)).abs().max() < 1e-4


def test_batch_mean_spread_shrinks_with_batch_size():
    model = VGG("vgg11", width=1 / 16, norm="batchnorm").eval()
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)][-1]
    data = _images(512)
    small, large = (B.batch_mean_spread(model, bn, data.train, b, n_batches=50)["std"] for b in (2, 64))
    assert small > 2 * large


def test_ioffe_fig1_records_percentiles_and_a_diverging_run_is_data(tmp_cache):
    data = D.Dataset("flat", D.Split(torch.randn(600, 20), torch.arange(600) % 10), D.Split(torch.randn(100, 20), torch.arange(100) % 10))
    r = B.ioffe_fig1(data, norm="batchnorm", steps=60, lr=0.1, record_every=10, eval_every=30)
    q = np.asarray(r["percentiles"])
    assert q.shape == (6, 3) and (q[:, 0] <= q[:, 1]).all() and (q[:, 1] <= q[:, 2]).all() and not r["diverged"]
    bad = B.ioffe_fig1(data, norm="none", steps=60, lr=1e12, record_every=10, eval_every=30)
    assert bad["diverged"]  # recorded, not raised


def test_percentile_range():
    assert B.percentile_range([[0, 0, 0], [0, 1, 2], [1, 1, 1], [0, 0, 0]]) == pytest.approx(4 / 3)  # ranges 1, 1, 2
    assert math.isnan(B.percentile_range([[0, 0, 0], [1, 1, 1]]))  # one record after skipping: nothing to measure


@pytest.mark.parametrize("call,match", [
    (lambda: B.ioffe_fig1(_images(), norm="noisy", steps=5, lr=0.1), r"norm='noisy'"),
    (lambda: B.scratch_vs_torch(torch.randn(4, 3), steps=0), r"steps=0"),
    (lambda: B.train_mode_accuracy(VGG("vgg11", width=1 / 16), _images().test, 0), r"batch_size=0"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
