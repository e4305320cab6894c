"""The exercises' self-checks say right to a right answer and wrong (with how far off) to a wrong one."""
import pytest
import torch

from bnutils import checks


@pytest.mark.parametrize("exercise", list(checks.ANSWERS))
def test_answer_right_and_wrong(exercise):
    want = checks.ANSWERS[exercise][0]
    assert checks.answer(exercise, want).startswith("right")
    wrong = checks.answer(exercise, want * 2 + 1)
    assert wrong.startswith("wrong") and "too large" in wrong


def test_answer_rejects_unknown_exercises_and_non_numbers():
    with pytest.raises(ValueError, match="exercise='ch9.x'"):
        checks.answer("ch9.x", 1.0)
    with pytest.raises(ValueError, match="value=nan"):
        checks.answer("ch5.batch_for_half_lr", float("nan"))


def _right(x, gamma, g, eps):
    mean, var = x.mean(0), x.var(0, unbiased=False)
    xh = (x - mean) / torch.sqrt(var + eps)
    return gamma / torch.sqrt(var + eps) * (g - g.mean(0) - xh * (g * xh).mean(0))


def test_bn_backward_accepts_the_formula_and_catches_mistakes():
    assert checks.bn_backward(_right).startswith("right")
    no_projection = lambda x, gamma, g, eps: gamma / torch.sqrt(x.var(0, unbiased=False) + eps) * g
    assert checks.bn_backward(no_projection).startswith("wrong: off from autograd")
    unbiased = lambda x, gamma, g, eps: _right(x, gamma, g, eps) * (len(x) - 1) / len(x)
    assert checks.bn_backward(unbiased).startswith("wrong")
    assert "shape" in checks.bn_backward(lambda x, gamma, g, eps: g[:1])
