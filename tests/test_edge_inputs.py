"""Bad inputs fail fast with a ValueError naming the parameter, never a silent wrong result or a deep crash."""
from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
import torch.nn as nn

from bnutils import validate
from bnutils.data import Dataset, Split
from bnutils.experiments import divergence, ics, init_stats, landscape, noisy, random_matrices, resnets
from bnutils.metrics import ICS, band_summary
from bnutils.models import MLP, ResNet
from bnutils.norms import make_norm
from bnutils.train import Callback, evaluate, train


def _blobs(n: int = 16, features: int = 5, classes: int = 3) -> Dataset:
    """A tiny classification set of random vectors."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, features, generator=g), torch.arange(n) % classes
    return Dataset("blobs", Split(x, y), Split(x.clone(), y.clone()))


def _images(n: int = 8) -> Dataset:
    """A tiny CIFAR-shaped set (N, 3, 32, 32) of random images."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.arange(n) % 10
    return Dataset("images", Split(x, y), Split(x.clone(), y.clone()))


def _net(norm: str = "batchnorm") -> nn.Module:
    return MLP(5, width=8, depth=1, num_classes=3, norm=norm)


def test_misspelt_keyword_is_named_not_swallowed():
    """`widht` used to build a full-width net without BN and a confusing TypeError with it."""
    for norm in ("none", "batchnorm"):
        with pytest.raises(ValueError, match="widht") as e:
            ResNet(depth=8, norm=norm, widht=0.25)
        assert repr(norm) in str(e.value)


def test_bn_momentum_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match="momentum=2"):
        ResNet(depth=8, norm="batchnorm", momentum=2)


@pytest.mark.parametrize("kind,kwargs,name", [
    ("none", dict(momentum=0.1), "momentum"),
    ("batchnorm", dict(momentum=2), "momentum"),
    ("batchnorm", dict(momentum=-0.1), "momentum"),
    ("batchnorm", dict(eps=0.0), "eps"),
    ("batchnorm", dict(affine=1), "affine"),
    ("scratch", dict(scale=1.0), "scale"),
    ("noisy", dict(postion="after_affine"), "postion"),
    ("noise", dict(eps=1e-5), "eps"),
    ("l2", dict(track_running_stats=False), "track_running_stats"),
    ("l1", dict(momentum=None), "momentum"),
    ("linf", dict(eps=-1.0), "eps"),
])
def test_norm_keywords(kind: str, kwargs: dict[str, Any], name: str):
    with pytest.raises(ValueError, match=name):
        make_norm(kind, 4, **kwargs)


def test_allowed_norm_keywords_still_pass_through():
    assert make_norm("batchnorm", 4, dim=1, momentum=None, eps=1e-3).eps == 1e-3
    assert make_norm("noisy", 4, position="before_affine", scale=0.5).position == "before_affine"


class _Noop(Callback):
    """A callback that does nothing."""


def _train_args(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(model=_net(), data=_blobs(), steps=2, lr=0.1, batch_size=4, progress=False)
    args.update(changes)
    return args


def _split(x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> Dataset:
    d = _blobs()
    return Dataset("bad", Split(d.train.x if x is None else x, d.train.y if y is None else y), d.test)


@pytest.mark.parametrize("args,name", [
    (_train_args(callbacks=[_Noop()]), "callbacks"),
    (_train_args(data=None), "data"),
    (_train_args(data=_blobs().train), "data"),
    (_train_args(model=nn.ReLU()), "model"),
    (_train_args(batch_size=1), "batch_size"),
    (_train_args(data=_blobs(n=1), batch_size=None), "batch_size"),
    (_train_args(model=nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 30 * 30, 10)),
                 data=_images(), batch_size=1), "batch_size"),
    (_train_args(callbacks={"ics": ICS(_net(), every=1)}, batch_size=1), "batch_size"),
    (_train_args(data=_split(x=torch.randint(0, 255, (16, 5)))), r"data\.train\.x"),
    (_train_args(data=_split(x=torch.randn(16))), r"data\.train\.x"),
    (_train_args(data=_split(y=torch.rand(16))), r"data\.train\.y"),
    (_train_args(data=_split(y=torch.full((16,), 3))), r"data\.train\.y"),
    (_train_args(data=_split(y=torch.full((16,), -1))), r"data\.train\.y"),
    (_train_args(data=_split(y=torch.zeros(15, dtype=torch.long))), r"data\.train\.y"),
    (_train_args(model=_net().to("meta")), r"model.*data\.train"),
])
def test_train_rejects_bad_inputs(args: dict[str, Any], name: str):
    with pytest.raises(ValueError, match=name):
        train(**args)


def test_evaluate_rejects_an_empty_split():
    with pytest.raises(ValueError, match="split"):
        evaluate(_net(), Split(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("call", [
    lambda: validate.device("device", "cuda"),
    lambda: landscape.landscape_run("dln", "none", lr=1e-6, steps=2, probe_every=1, device="cuda", cache=False),
])
def test_cuda_without_cuda_fails_at_validation(call: Callable[[], Any]):
    with pytest.raises(ValueError, match="device='cuda'"):
        call()


@pytest.fixture
def tiny_cifar(monkeypatch: pytest.MonkeyPatch) -> Dataset:
    """Random images in place of CIFAR-10 for the experiment functions."""
    data = _images(16)
    monkeypatch.setattr(resnets, "cifar_subset", lambda *a, **k: data)
    monkeypatch.setattr(ics, "load_cifar10", lambda *a, **k: data)
    return data


@pytest.mark.parametrize("call,name", [
    (lambda d: divergence.lr_sweep([0.1], norms=[], steps=4, cache=False), "norms"),
    (lambda d: init_stats.diverging_update("none", 0.1, depth=8, layers=[], batch_size=4), "layers"),
    (lambda d: init_stats.diverging_update("none", 0.1, depth=8, layers=[2.5], batch_size=4), "layers"),
    (lambda d: random_matrices.random_product_singular_values(n=4, factors=[]), "factors"),
    (lambda d: random_matrices.random_product_singular_values(n=4, factors=[1.5]), "factors"),
    (lambda d: divergence.summarize_sweep([]), "runs"),
    (lambda d: landscape.landscape_runs("dln", norms=[], seeds=[0], lr=1e-6, steps=2, probe_every=1), "norms"),
    (lambda d: landscape.landscape_runs("dln", norms=["none"], seeds=[], lr=1e-6, steps=2, probe_every=1), "seeds"),
    (lambda d: landscape.theorem41_check(n_cases=2, batch_sizes=[]), "batch_sizes"),
    (lambda d: landscape.theorem41_check(n_cases=2, batch_sizes=[2.5]), "batch_sizes"),
    (lambda d: band_summary([]), "results"),
    (lambda d: noisy.four_networks([0], kinds=[], data=d), "kinds"),
    (lambda d: noisy.train_network("none", layers=[2.5], steps=1, width=0.0625, batch_size=4, data=d,
                                   cache=False), "layers"),
    (lambda d: noisy.summary([]), "runs"),
    (lambda d: noisy.instability([]), "runs"),
    (lambda d: ics.summarize([], [{}], 3), "runs_none"),
])
def test_empty_or_non_integer_lists(call: Callable[[Dataset], Any], name: str, tiny_cifar: Dataset):
    with pytest.raises(ValueError, match=name):
        call(tiny_cifar)


@pytest.mark.parametrize("call", [
    lambda: ics.vgg_run("batchnorm", 0.1, steps=1, batch_size=1, ics_every=1, cache=False),
    lambda: landscape.landscape_run("vgg", "batchnorm", lr=0.1, steps=1, probe_every=1, batch_size=1, cache=False),
])
def test_batch_of_one_with_bn_in_ics_and_landscape_probes(call: Callable[[], Any], tiny_cifar: Dataset,
                                                          monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(landscape, "load_cifar10", lambda *a, **k: tiny_cifar)
    with pytest.raises(ValueError, match="batch_size"):
        call()


@pytest.mark.parametrize("rule, good, bad", [
    ("count", 3, 0), ("count>=2", 2, 1), ("resnet depth", 14, 15), ("positive", 0.1, -1.0),
    ("positive list", [0.1, 1.0], []), ("nonnegative list", [0.0, 1.0], [-0.5]), ("lr pair", [0.1, 0.5], [0.1, 0.1]),
    ("increasing lr pair", [0.1, 0.5], [0.5, 0.1]), ("range", [0.5, 4.0], [4.0, 0.5]),
])
def test_notebook_parameters_name_the_parameter_and_the_rule(rule, good, bad):
    validate.parameters(knob=(good, rule), unset=(None, rule))
    with pytest.raises(ValueError, match="knob"):
        validate.parameters(knob=(bad, rule))


def test_notebook_parameters_reject_an_unknown_rule():
    with pytest.raises(ValueError, match="rule for knob"):
        validate.parameters(knob=(1, "counted"))
