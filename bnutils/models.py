"""The networks of the book, each configurable by depth, width and `norm=` (a kind from bnutils.norms).

Placement follows Ioffe & Szegedy: linear/conv -> norm -> nonlinearity. A layer followed by a norm that
re-centres (every kind but `none` and `noise`) has no bias: beta does its job. Initialisation is explicit:
He/Kaiming (fan-in, ReLU gain) for ReLU nets, Glorot for sigmoid/tanh/linear nets; PyTorch's default
would shrink deep ReLU nets and make the no-BN baseline look unfairly bad.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from . import validate
from .norms import check_norm_kwargs, make_norm

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}
INITS = ("kaiming", "glorot", "torch")
VGG_CONFIGS = {  # numbers are conv output channels at width 1.0, "M" is 2x2 max-pooling
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def _has_bias(norm: str) -> bool:
    return norm in ("none", "noise")


def init_weights(module: nn.Module, init: str, nonlinearity: str = "relu") -> None:
    """Initialise every conv/linear weight of `module` in place; biases to zero. `torch` keeps PyTorch's default."""
    validate.choice("init", init, INITS)
    if init == "torch":
        return
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if init == "kaiming":
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu" if nonlinearity == "relu" else "linear")
            else:
                nn.init.xavier_normal_(m.weight, gain=nn.init.calculate_gain("sigmoid" if nonlinearity == "sigmoid" else "linear"))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Block(nn.Sequential):
    """linear (or conv) -> norm -> activation, with the three parts named so hooks can find them."""

    def __init__(self, layer: nn.Module, norm: nn.Module, act: nn.Module):
        super().__init__()
        self.layer, self.norm, self.act = layer, norm, act


class MLP(nn.Module):
    """A fully connected net: `depth` hidden blocks of `width` units, then a linear classifier.

    Ioffe & Szegedy's MNIST net is MLP(784, width=100, depth=3, activation="sigmoid", init="glorot").
    """

    def __init__(self, in_features: int, width: int = 100, depth: int = 3, num_classes: int = 10,
                 activation: str = "relu", norm: str = "none", init: str | None = None, **norm_kwargs):
        super().__init__()
        validate.integer("in_features", in_features)
        validate.integer("width", width)
        validate.integer("depth", depth)
        validate.integer("num_classes", num_classes)
        validate.choice("activation", activation, ACTIVATIONS)
        check_norm_kwargs(norm, norm_kwargs)
        init = init or ("kaiming" if activation == "relu" else "glorot")
        dims = [in_features] + [width] * depth
        self.blocks = nn.ModuleList(
            Block(nn.Linear(dims[i], dims[i + 1], bias=_has_bias(norm)), make_norm(norm, width, dim=1, **norm_kwargs),
                  ACTIVATIONS[activation]())
            for i in range(depth))
        self.head = nn.Linear(width, num_classes)
        init_weights(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for b in self.blocks:
            x = b(x)
        return self.head(x)


class VGG(nn.Module):
    """The VGG used by Santurkar et al. on CIFAR-10: 3x3 conv blocks, max-pooling, one linear classifier.

    `width` scales every channel count (1.0 = 64..512, the `gpu` profile; 1/8 on a CPU). Kaiming init.
    """

    def __init__(self, config: str = "vgg16", width: float = 1.0, norm: str = "none", num_classes: int = 10,
                 init: str = "kaiming", **norm_kwargs):
        super().__init__()
        validate.choice("config", config, VGG_CONFIGS)
        validate.positive("width", width)
        check_norm_kwargs(norm, norm_kwargs)
        blocks: list[nn.Module] = []
        c_in = 3
        for v in VGG_CONFIGS[config]:
            if v == "M":
                blocks.append(nn.MaxPool2d(2))
                continue
            c = max(1, round(v * width))
            blocks.append(Block(nn.Conv2d(c_in, c, 3, padding=1, bias=_has_bias(norm)),
                                make_norm(norm, c, dim=2, **norm_kwargs), nn.ReLU()))
            c_in = c
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, num_classes)
        init_weights(self, init)

    @property
    def blocks(self) -> list[Block]:
        """The conv blocks in order (layer #1 is blocks[0])."""
        return [m for m in self.features if isinstance(m, Block)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class DeepLinear(nn.Module):
    """Santurkar et al.'s deep linear network: y = W_depth ... W_1 x, square `dim` x `dim` layers, no biases.

    With a norm (our choice of placement, which the paper leaves open): a norm layer after each of the
    first depth - 1 layers, none after the output layer. Glorot init.
    """

    def __init__(self, depth: int = 25, dim: int = 10, norm: str = "none", init: str = "glorot", **norm_kwargs):
        super().__init__()
        validate.integer("depth", depth)
        validate.integer("dim", dim)
        check_norm_kwargs(norm, norm_kwargs)
        self.blocks = nn.ModuleList(
            Block(nn.Linear(dim, dim, bias=False),
                  make_norm(norm, dim, dim=1, **norm_kwargs) if i < depth - 1 else nn.Identity(), nn.Identity())
            for i in range(depth))
        init_weights(self, init, "linear")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return x


class BasicBlock(nn.Module):
    """He et al.'s CIFAR residual block: conv-norm-relu-conv-norm, plus the shortcut, then relu.

    Downsampling shortcuts are option A (strided identity, zero-padded channels), as in the CIFAR ResNets.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str, **norm_kwargs):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=_has_bias(norm))
        self.norm1 = make_norm(norm, c_out, dim=2, **norm_kwargs)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=_has_bias(norm))
        self.norm2 = make_norm(norm, c_out, dim=2, **norm_kwargs)
        self.act = nn.ReLU()
        self.stride, self.pad = stride, c_out - c_in

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and self.pad == 0:
            return x
        x = x[:, :, ::self.stride, ::self.stride]
        return nn.functional.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.act(out + self.shortcut(x))


def resnet_plan(depth: int, width: float) -> tuple[list[int], list[tuple[int, int, int]]]:
    """The CIFAR ResNet's shape (He et al. 2016), shared by ResNet and FixupResNet: the three stages' channels
    (16/32/64 x width) and (c_in, c_out, stride) of each of the 3n residual blocks, depth = 6n + 2."""
    validate.integer("depth", depth, minimum=8)
    if (depth - 2) % 6:
        raise ValueError(f"depth={depth!r} must be 6n + 2 (e.g. 8, 14, 20, 32, 44, 56, 110)")
    validate.positive("width", width)
    chans = [max(1, round(c * width)) for c in (16, 32, 64)]
    plan, n = [], (depth - 2) // 6
    for stage, c in enumerate(chans):  # each stage's first block takes the previous stage's channels (stride 2)
        plan += [(chans[max(stage - 1, 0)] if i == 0 else c, c, 2 if stage and i == 0 else 1) for i in range(n)]
    return chans, plan


class ResNet(nn.Module):
    """The CIFAR ResNet of He et al. (2016): depth = 6n + 2 (20, 32, 44, 56, 110), stages of 16/32/64 channels.

    Bjorck et al. train ResNet-110 with and without BN; without BN nothing else changes. Kaiming init.
    """

    def __init__(self, depth: int = 110, norm: str = "batchnorm", width: float = 1.0, num_classes: int = 10,
                 init: str = "kaiming", *, block: type[BasicBlock] | None = None, **norm_kwargs):
        """`block`: the residual block class (BasicBlock when None; SkipInitResNet passes SkipInitBlock)."""
        super().__init__()
        block = BasicBlock if block is None else block
        if not (isinstance(block, type) and issubclass(block, BasicBlock)):
            raise ValueError(f"block={block!r} must be BasicBlock or a subclass of it")
        chans, plan = resnet_plan(depth, width)
        check_norm_kwargs(norm, norm_kwargs)
        self.stem = Block(nn.Conv2d(3, chans[0], 3, padding=1, bias=_has_bias(norm)),
                          make_norm(norm, chans[0], dim=2, **norm_kwargs), nn.ReLU())
        self.layers = nn.Sequential(*(block(c_in, c, stride, norm, **norm_kwargs) for c_in, c, stride in plan))
        self.head = nn.Linear(chans[-1], num_classes)
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))


class SkipInitBlock(BasicBlock):
    """De & Smith (2020), "Batch Normalization Biases Residual Blocks Towards the Identity Function in Deep
    Networks": SkipInit. The residual branch (conv-relu-conv, no normalization) is multiplied by a learnable
    scalar `alpha` initialised at 0, so at initialisation every block is its shortcut: relu(alpha * f(x) + x)."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str = "none", **norm_kwargs):
        super().__init__(c_in, c_out, stride, norm, **norm_kwargs)
        self.alpha = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.act(self.alpha * out + self.shortcut(x))


class SkipInitResNet(ResNet):
    """The CIFAR ResNet without normalization, with SkipInit's zero-initialised scalar on every residual branch
    (De & Smith 2020). Everything else (depth 6n + 2, option-A shortcuts, conv biases, Kaiming init) as ResNet."""

    def __init__(self, depth: int = 110, width: float = 1.0, num_classes: int = 10, init: str = "kaiming"):
        super().__init__(depth, norm="none", width=width, num_classes=num_classes, init=init, block=SkipInitBlock)

    @property
    def branch_scales(self) -> list[nn.Parameter]:
        """The scalar multiplier of every residual branch, in forward order."""
        return [b.alpha for b in self.layers]


class ScalarBias(nn.Module):
    """x + b with one learnable scalar b, initialised at 0 (Fixup's 'scalar bias')."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


FIXUP_M = 2  # weight layers per residual branch of the CIFAR BasicBlock


def fixup_rescale(n_branches: int, m: int = FIXUP_M) -> float:
    """Fixup's factor for the weight layers inside a residual branch: L^(-1/(2m - 2)) for L branches of m layers
    (Zhang, Dauphin & Ma 2019, rule 2); L^(-1/2) for the CIFAR ResNet's two-layer branches."""
    validate.integer("n_branches", n_branches)
    validate.integer("m", m, minimum=2)
    return float(n_branches) ** (-1.0 / (2 * m - 2))


class FixupBlock(nn.Module):
    """The CIFAR residual block under Fixup (Zhang, Dauphin & Ma 2019, "Fixup Initialization: Residual Learning
    Without Normalization"): no normalization; a scalar bias before each conv and the activation, a scalar
    multiplier (init 1) and bias at the end of the branch: relu(scale * conv2(relu(conv1(x + a1) + b1) + a2) + b2
    + shortcut(x)). The weights are set by FixupResNet (conv1 rescaled, conv2 zero). Option-A shortcuts."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bias1a = ScalarBias()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bias1b = ScalarBias()
        self.act = nn.ReLU()
        self.bias2a = ScalarBias()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.scale = nn.Parameter(torch.ones(()))
        self.bias2b = ScalarBias()
        self.stride, self.pad = stride, c_out - c_in

    shortcut = BasicBlock.shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bias1b(self.conv1(self.bias1a(x))))
        out = self.bias2b(self.conv2(self.bias2a(out)) * self.scale)
        return self.act(out + self.shortcut(x))


class FixupResNet(nn.Module):
    """The CIFAR ResNet without normalization, initialised by Fixup's three rules (Zhang, Dauphin & Ma 2019):
    1. the last layer of every residual branch and the classifier start at zero; 2. the other weight layers of a
    branch get the standard (here Kaiming fan-in, as in ResNet) initialisation scaled by L^(-1/(2m-2)) (L branches,
    m = 2 layers each: `rescale`); 3. scalar biases before each conv, linear layer and activation, and a scalar
    multiplier per branch. The stem is conv -> scalar bias -> relu (a Block), as in the paper's code."""

    def __init__(self, depth: int = 110, width: float = 1.0, num_classes: int = 10):
        super().__init__()
        chans, plan = resnet_plan(depth, width)
        validate.integer("num_classes", num_classes)
        self.stem = Block(nn.Conv2d(3, chans[0], 3, padding=1, bias=False), ScalarBias(), nn.ReLU())
        self.layers = nn.Sequential(*(FixupBlock(c_in, c, stride) for c_in, c, stride in plan))
        self.head_bias = ScalarBias()
        self.head = nn.Linear(chans[-1], num_classes)
        self.rescale = fixup_rescale(len(plan))
        init_weights(self, "kaiming")
        with torch.no_grad():
            for b in self.layers:
                b.conv1.weight.mul_(self.rescale)
                b.conv2.weight.zero_()
            self.head.weight.zero_()
            self.head.bias.zero_()

    @property
    def branch_scales(self) -> list[nn.Parameter]:
        """The scalar multiplier of every residual branch, in forward order."""
        return [b.scale for b in self.layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.head(self.head_bias(x.mean(dim=(2, 3))))


MODEL_NAMES = ("mlp", "vgg", "dln", "resnet")


def build_model(name: str, **kwargs) -> nn.Module:
    """Construct a model by name ('mlp', 'vgg', 'dln', 'resnet') with the class's keyword arguments."""
    validate.choice("model", name, MODEL_NAMES)
    return {"mlp": MLP, "vgg": VGG, "dln": DeepLinear, "resnet": ResNet}[name](**kwargs)


def stages(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The model as a chain of (qualified name, module) whose composition is its forward pass, or None when it
    is not a plain chain (the ResNet's skips). Lets a metric reuse the activations of a shared prefix of layers."""
    if isinstance(model, VGG):
        return [(f"features.{i}", m) for i, m in enumerate(model.features)] + [("", nn.Flatten(1)), ("head", model.head)]
    if isinstance(model, MLP):
        return [("", nn.Flatten(1))] + [(f"blocks.{i}", b) for i, b in enumerate(model.blocks)] + [("head", model.head)]
    if isinstance(model, DeepLinear):
        return [(f"blocks.{i}", b) for i, b in enumerate(model.blocks)]
    if type(model) is nn.Sequential:
        return [(name, m) for name, m in model.named_children()]
    return None


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The layers with a weight matrix (conv and linear) in forward order: 'layer #i' in the papers is
    weight_layers(model)[i - 1]."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
