import math

import pytest
import torch
import torch.nn as nn

from bnutils import norms
from bnutils.norms import BatchNorm, LpBatchNorm, NoisyBatchNorm, SanturkarNoise, fold_batchnorm, make_norm, recalibrate


def _pair(shape, **kw):
    c = shape[1]
    ref = (nn.BatchNorm1d if len(shape) in (2, 3) else nn.BatchNorm2d)(c, **kw).double()
    ours = BatchNorm(c, **kw).double()
    if kw.get("affine", True):
        with torch.no_grad():
            w, b = torch.randn(c).double(), torch.randn(c).double()
            ref.weight.copy_(w); ref.bias.copy_(b); ours.weight.copy_(w); ours.bias.copy_(b)
    return ref, ours


@pytest.mark.parametrize("shape", [(16, 5), (8, 4, 7), (6, 3, 5, 5)])
@pytest.mark.parametrize("kw", [{}, {"affine": False}, {"momentum": 0.3}, {"momentum": None}, {"track_running_stats": False}])
def test_scratch_matches_pytorch_train_and_eval(shape, kw):
    ref, ours = _pair(shape, **kw)
    for step in range(3):  # several steps, so running statistics accumulate
        x = (torch.randn(*shape) * 3 + 2).double()
        xr, xo = x.clone().requires_grad_(), x.clone().requires_grad_()
        out_r, out_o = ref(xr), ours(xo)
        assert torch.allclose(out_r, out_o, atol=1e-5)
        g = torch.randn_like(out_r)
        out_r.backward(g); out_o.backward(g)
        assert torch.allclose(xr.grad, xo.grad, atol=1e-5)
        if kw.get("affine", True):
            assert torch.allclose(ref.weight.grad, ours.weight.grad, atol=1e-5)
            assert torch.allclose(ref.bias.grad, ours.bias.grad, atol=1e-5)
    if kw.get("track_running_stats", True):
        assert torch.allclose(ref.running_mean, ours.running_mean, atol=1e-5)
        assert torch.allclose(ref.running_var, ours.running_var, atol=1e-5)
        assert int(ref.num_batches_tracked) == int(ours.num_batches_tracked) == 3
    ref.eval(); ours.eval()
    x = torch.randn(*shape).double()
    assert torch.allclose(ref(x), ours(x), atol=1e-5)


def test_running_var_is_unbiased_and_momentum_is_pytorchs():
    bn = BatchNorm(1, momentum=0.1)
    x = torch.tensor([[1.0], [2.0], [3.0], [6.0]])
    bn(x)
    assert math.isclose(float(bn.running_mean), 0.9 * 0 + 0.1 * 3.0, rel_tol=1e-6)
    assert math.isclose(float(bn.running_var), 0.9 * 1 + 0.1 * x.var(unbiased=True).item(), rel_tol=1e-6)


def test_batchnorm_rejects_single_value_per_channel_in_training():
    with pytest.raises(ValueError, match="more than 1 value"):
        BatchNorm(3)(torch.randn(1, 3))


def test_fold_conv_and_linear():
    conv, bn = nn.Conv2d(3, 6, 3, padding=1, bias=True), nn.BatchNorm2d(6)
    bn.train()
    for _ in range(5):
        bn(conv(torch.randn(8, 3, 8, 8)))
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2); bn.bias.normal_()
    bn.eval()
    x = torch.randn(4, 3, 8, 8)
    assert (fold_batchnorm(conv, bn)(x) - bn(conv(x))).abs().max() < 1e-5
    lin, bn1 = nn.Linear(5, 4, bias=False), BatchNorm(4)
    bn1(lin(torch.randn(32, 5))); bn1.eval()
    z = torch.randn(7, 5)
    assert (fold_batchnorm(lin, bn1)(z) - bn1(lin(z))).abs().max() < 1e-5


def test_recalibrate_gives_exact_population_statistics():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    data = [torch.randn(50, 4) * 2 + 1 for _ in range(4)]
    recalibrate(model, data)
    h = torch.cat([model[0](d) for d in data]).detach()
    assert torch.allclose(model[1].running_mean, h.mean(0), atol=1e-5)
    per_batch_unbiased = torch.stack([model[0](d).detach().var(0, unbiased=True) for d in data]).mean(0)
    assert torch.allclose(model[1].running_var, per_batch_unbiased, atol=1e-5)
    assert model[1].momentum == 0.1 and model.training


def test_noise_statistics_match_algorithm_1():
    noise = SanturkarNoise()
    x = torch.zeros(400, 64, 4, 4)
    mus, sigmas, ms, ss = [], [], [], []
    for _ in range(50):
        mu, sigma, m, s = noise.sample(x)
        mus.append(mu); sigmas.append(sigma)
        ms.append(m - mu.view(1, -1, 1, 1)); ss.append(s - sigma.view(1, -1, 1, 1))
    mu, sigma, dm, ds = torch.cat(mus), torch.cat(sigmas), torch.cat([v.flatten() for v in ms]), torch.cat([v.flatten() for v in ss])
    assert mu.min() >= -0.5 and mu.max() <= 0.5 and abs(mu.mean()) < 0.03 and abs(mu.std() - 1 / math.sqrt(3) * 0.5) < 0.02
    assert sigma.min() >= 1 and sigma.max() <= 1.25 and abs(sigma.mean() - 1.125) < 0.01
    assert dm.abs().max() <= 0.1 + 1e-6 and abs(dm.std() - 0.1 / math.sqrt(3)) < 0.002
    assert abs(ds.mean()) < 0.002 and abs(ds.std() - 0.1) < 0.002


def test_noise_redrawn_every_step_and_off_in_eval():
    nbn = NoisyBatchNorm(8)
    x = torch.randn(32, 8, 4, 4)
    a, b = nbn(x), nbn(x)
    assert not torch.allclose(a, b)
    nbn.eval()
    clean = BatchNorm(8)
    clean.load_state_dict({k: v for k, v in nbn.state_dict().items() if not k.startswith("noise")})
    clean.eval()
    assert torch.equal(nbn(x), clean(x)) and torch.equal(nbn(x), nbn(x))
    assert torch.equal(SanturkarNoise().eval()(x), x)
    assert torch.equal(SanturkarNoise(scale=0.0)(x), x)


def test_noise_position_before_affine_is_scaled_by_gamma():
    nbn = NoisyBatchNorm(4, position="before_affine")
    with torch.no_grad():
        nbn.weight.zero_()
    out = nbn(torch.randn(16, 4))
    assert torch.allclose(out, torch.zeros_like(out))  # gamma = 0 wipes noise added before it


@pytest.mark.parametrize("p,expected", [(1, lambda x: x.abs().mean(0)), (2, lambda x: x.pow(2).mean(0).sqrt()),
                                        (math.inf, lambda x: x.abs().amax(0))])
def test_lp_norm_reading(p, expected):
    x = torch.randn(64, 5) * 3 + 1
    layer = LpBatchNorm(5, p=p, affine=False, eps=0.0)
    y = layer(x)
    assert torch.allclose(y, (x - x.mean(0)) / expected(x), atol=1e-5)
    layer.eval()
    assert torch.isfinite(layer(x)).all()


@pytest.mark.parametrize("kind", norms.NORM_KINDS)
@pytest.mark.parametrize("dim,shape", [(1, (8, 6)), (2, (4, 6, 3, 3))])
def test_make_norm_every_kind_runs(kind, dim, shape):
    layer = make_norm(kind, 6, dim=dim)
    y = layer(torch.randn(*shape))
    assert y.shape == shape and torch.isfinite(y).all()


@pytest.mark.parametrize("call,match", [
    (lambda: make_norm("batchnrom", 4), r"norm='batchnrom' is not allowed; choose one of"),
    (lambda: make_norm("batchnorm", 0), r"num_features=0"),
    (lambda: make_norm("batchnorm", 4, dim=3), r"dim=3"),
    (lambda: BatchNorm(4, momentum=1.5), r"momentum=1.5 must be in"),
    (lambda: BatchNorm(4, eps=-1.0), r"eps=-1.0"),
    (lambda: SanturkarNoise(n_sigma=0.5), r"n_sigma=0.5"),
    (lambda: SanturkarNoise(r_mu=float("nan")), r"r_mu=nan"),
    (lambda: NoisyBatchNorm(4, position="middle"), r"position='middle'"),
    (lambda: LpBatchNorm(4, p=3), r"p=3 is not allowed"),
    (lambda: fold_batchnorm(nn.ReLU(), nn.BatchNorm1d(3)), r"layer must be"),
])
def test_bad_arguments_name_themselves(call, match):
    with pytest.raises(ValueError, match=match):
        call()
