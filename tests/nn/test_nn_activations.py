"""Own sigmoid / relu / tanh / softmax against torch: values, gradients, extreme inputs."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.nn import activations as act

EXTREME = torch.tensor([-1e308, -800.0, -40.0, -1e-8, 0.0, 1e-8, 40.0, 800.0, 1e308,
                        -math.inf, math.inf], dtype=torch.float64)


def _values_and_grads(fn, x):
    x = x.clone().requires_grad_()
    y = fn(x)
    (g,) = torch.autograd.grad(y, x, torch.ones_like(y))
    return y.detach(), g


@pytest.mark.parametrize("ours, ref", [
    (act.sigmoid, torch.sigmoid), (act.relu, torch.relu), (act.tanh, torch.tanh),
    (act.identity, lambda x: x),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_elementwise_parity_with_torch(ours, ref, dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.cat([30 * torch.randn(200, generator=g, dtype=torch.float64), EXTREME]).to(dtype)
    y, gy = _values_and_grads(ours, x)
    y_ref, g_ref = _values_and_grads(ref, x)
    torch.testing.assert_close(y, y_ref, equal_nan=True)
    torch.testing.assert_close(gy, g_ref, equal_nan=True)
    assert torch.isfinite(gy).all()


def test_sigmoid_exact_limits_and_no_overflow():
    y = act.sigmoid(torch.tensor([-1000.0, 1000.0, -math.inf, math.inf]))
    assert y.tolist() == [0.0, 1.0, 0.0, 1.0]


def test_relu_nan_and_zero_conventions():
    assert math.isnan(act.relu(torch.tensor([math.nan])).item())
    x = torch.tensor([0.0], requires_grad=True)
    act.relu(x).sum().backward()
    assert x.grad.item() == 0.0  # torch's sub-gradient choice at 0


@pytest.mark.parametrize("name", ["sigmoid", "relu", "tanh", "identity"])
def test_derivatives_match_autograd(name):
    a = act.get_activation(name)
    z = torch.linspace(-6, 6, 101, dtype=torch.float64).requires_grad_()
    (g,) = torch.autograd.grad(a.fn(z).sum(), z)
    torch.testing.assert_close(a.derivative(z.detach()), g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax_parity(dim):
    g = torch.Generator().manual_seed(1)
    x = (50 * torch.randn(4, 6, generator=g, dtype=torch.float64))
    x[0, 0] = 1e4  # would overflow exp without the max shift
    x[1, :] = -1e4
    w = torch.randn(4, 6, generator=g, dtype=torch.float64)
    for ours, ref in [(act.softmax, torch.softmax), (act.log_softmax, torch.log_softmax)]:
        xa = x.clone().requires_grad_()
        xb = x.clone().requires_grad_()
        ya, yb = ours(xa, dim=dim), ref(xb, dim=dim)
        torch.testing.assert_close(ya, yb)
        (ga,) = torch.autograd.grad((ya * w).sum(), xa)
        (gb,) = torch.autograd.grad((yb * w).sum(), xb)
        torch.testing.assert_close(ga, gb)


def test_softmax_with_minus_inf_entries_matches_torch():
    x = torch.tensor([[0.0, -math.inf, 1.0], [-math.inf, 5.0, -math.inf]])
    torch.testing.assert_close(act.softmax(x), torch.softmax(x, -1))
    torch.testing.assert_close(act.log_softmax(x), torch.log_softmax(x, -1))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20), st.floats(-1e3, 1e3))
def test_softmax_is_a_distribution_and_shift_invariant(values, shift):
    x = torch.tensor(values, dtype=torch.float64)
    s = act.softmax(x)
    assert (s >= 0).all()
    assert s.sum().item() == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(act.softmax(x + shift), s, rtol=1e-9, atol=1e-12)


def test_unknown_activation_and_bad_dim_raise():
    with pytest.raises(ValueError, match="unknown activation"):
        act.get_activation("swish")
    with pytest.raises(ValueError, match="out of range"):
        act.softmax(torch.zeros(3), dim=1)
    with pytest.raises(ValueError, match="scalar"):
        act.softmax(torch.tensor(1.0))
    assert act.get_activation(None) is act.ACTIVATIONS["identity"]
