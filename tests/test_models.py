import pytest
import torch
import torch.nn as nn

from bnutils.models import MLP, VGG, DeepLinear, ResNet, build_model, weight_layers
from bnutils.norms import NORM_KINDS
from bnutils.profiles import PROFILES


@pytest.mark.parametrize("profile", list(PROFILES))
def test_vgg_and_resnet_shapes_for_every_profile(profile):
    p = PROFILES[profile]
    x = torch.randn(2, 3, 32, 32)
    vgg = VGG(width=p.vgg_width, norm="batchnorm")
    assert vgg(x).shape == (2, 10) and len(vgg.blocks) == 13
    from bnutils.experiments.divergence import SCALES

    for depth in {SCALES[profile]["sweep_depth"], SCALES[profile]["deep_depth"]}:  # the depths the chapters build
        res = ResNet(depth=depth, norm="batchnorm", width=SCALES[profile]["width"])
        assert sum(isinstance(m, nn.Conv2d) for m in res.modules()) == depth - 1
    assert ResNet(depth=SCALES[profile]["sweep_depth"], width=SCALES[profile]["width"])(x).shape == (2, 10)


@pytest.mark.parametrize("norm", NORM_KINDS)
def test_every_norm_kind_in_every_model(norm):
    assert MLP(12, width=8, depth=2, norm=norm)(torch.randn(4, 12)).shape == (4, 10)
    assert VGG("vgg11", width=1 / 16, norm=norm)(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert DeepLinear(depth=4, dim=5, norm=norm)(torch.randn(6, 5)).shape == (6, 5)
    assert ResNet(depth=8, width=0.5, norm=norm)(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_bias_dropped_before_a_norm_and_kept_without():
    assert all(l.bias is None for l in weight_layers(VGG(width=0.125, norm="batchnorm"))[:-1])
    assert all(l.bias is not None for l in weight_layers(VGG(width=0.125, norm="none")))


def test_kaiming_init_keeps_deep_relu_signal():
    torch.manual_seed(0)
    net = MLP(256, width=256, depth=20, norm="none")
    h = torch.randn(512, 256)
    for b in net.blocks:
        h = b(h)
    assert 0.3 < h.pow(2).mean().item() < 3.0  # He init: second moment preserved through 20 ReLU layers


def test_dln_has_no_bias_and_norm_everywhere_but_last():
    net = DeepLinear(depth=25, dim=10, norm="batchnorm")
    assert len(weight_layers(net)) == 25 and all(l.bias is None for l in weight_layers(net))
    assert sum(isinstance(m, nn.BatchNorm1d) for m in net.modules()) == 24


@pytest.mark.parametrize("call,match", [
    (lambda: build_model("alexnet"), r"model='alexnet'"),
    (lambda: ResNet(depth=21), r"depth=21 must be 6n \+ 2"),
    (lambda: MLP(10, depth=0), r"depth=0"),
    (lambda: MLP(10, width=-3), r"width=-3"),
    (lambda: MLP(10, activation="gelu"), r"activation='gelu'"),
    (lambda: VGG("vgg19"), r"config='vgg19'"),
    (lambda: VGG(width=0), r"width=0"),
    (lambda: DeepLinear(norm="layernorm"), r"norm='layernorm'"),
    (lambda: MLP(10, init="orthogonal"), r"init='orthogonal'"),
])
def test_bad_model_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_resnet_plan_is_the_cifar_resnet_shape_for_both_resnets():
    """Three stages of n = (depth - 2) / 6 blocks; each later stage's first block downsamples (stride 2) from the
    previous stage's channels, even when a tiny width rounds two stages to the same channel count."""
    from bnutils.models import FixupResNet, ResNet, resnet_plan

    chans, plan = resnet_plan(14, 0.25)
    assert chans == [4, 8, 16]
    assert plan == [(4, 4, 1), (4, 4, 1), (4, 8, 2), (8, 8, 1), (8, 16, 2), (16, 16, 1)]
    assert [s for _, _, s in resnet_plan(8, 0.01)[1]] == [1, 2, 2]
    for net in (ResNet(14, width=0.25), FixupResNet(14, width=0.25)):
        assert [(b.conv1.in_channels, b.conv1.out_channels, b.stride) for b in net.layers] == plan
    with pytest.raises(ValueError, match="6n"):
        resnet_plan(15, 1.0)
