"""bnutils.modes: hooks always removed, modes / noise / buffers always restored (also on an error), RNG restored."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from bnutils.models import MLP
from bnutils.modes import Hooks, rng_restored, rng_state, set_rng_state, temporary_mode
from bnutils.norms import SanturkarNoise


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_hooks_see_keys_and_are_removed_on_exit_and_on_error():
    model = MLP(6, width=8, depth=2, norm="batchnorm")
    seen: list = []
    with Hooks({"a": model.blocks[0], "b": model.head}, lambda k, m, i, o: seen.append((k, tuple(o.shape)))):
        model(torch.randn(4, 6))
    assert seen == [("a", (4, 8)), ("b", (4, 10))] and _hook_count(model) == 0
    with pytest.raises(RuntimeError, match="boom"), Hooks(list(model.blocks), lambda k, m, i: seen.append(k), pre=True):
        model(torch.randn(4, 6))
        raise RuntimeError("boom")
    assert seen[-2:] == [0, 1] and _hook_count(model) == 0


def test_hooks_remove_by_hand_is_idempotent():
    model = MLP(6, width=8, depth=2)
    hooks = Hooks(model.blocks, lambda k, m, i, o: None)
    assert _hook_count(model) == 2
    hooks.remove()
    hooks.remove()
    assert _hook_count(model) == 0


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


@pytest.mark.parametrize("train, noise", [(True, False), (True, True), (False, False), (False, True)])
def test_temporary_mode_sets_mode_and_noise_and_restores_each_submodule(train, noise):
    model = MLP(6, width=8, depth=2, norm="noisy").eval()
    model.blocks[1].train()  # mixed modes must come back exactly, not as the top module's
    before = _modes(model)
    with temporary_mode(model, train=train):
        pass
    with temporary_mode(model, train=train, noise=noise):
        for m in model.modules():
            assert m.training == (noise if isinstance(m, SanturkarNoise) else train)
    assert _modes(model) == before


def test_temporary_mode_keeps_buffers_and_restores_on_error():
    model = MLP(6, width=8, depth=2, norm="scratch").eval()
    before = {k: v.clone() for k, v in model.named_buffers()}
    with pytest.raises(RuntimeError, match="boom"), temporary_mode(model, train=True, keep_buffers=True):
        model(torch.randn(16, 6) * 3 + 1)
        assert not torch.equal(model.blocks[0].norm.running_mean, before["blocks.0.norm.running_mean"])
        raise RuntimeError("boom")
    assert all(torch.equal(before[k], v) for k, v in model.named_buffers()) and not any(_modes(model))
    with temporary_mode(model, train=True):  # without keep_buffers the statistics move
        model(torch.randn(16, 6) * 3 + 1)
    assert not torch.equal(model.blocks[0].norm.running_mean, before["blocks.0.norm.running_mean"])


def test_rng_restored_and_replay():
    state = rng_state()
    with rng_restored() as start:
        a = torch.rand(3)
        set_rng_state(start)
        assert torch.equal(torch.rand(3), a)
    assert torch.equal(torch.rand(3), a) and not torch.equal(state[0], torch.get_rng_state())
