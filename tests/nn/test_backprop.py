"""Manual back-propagation (sec. 2.5.3) against autograd in float64, and two sec. 2.5 errata."""

import pytest
import torch

from deepnotes.nn import MLP, l2_loss, manual_gradients


def _autograd_gradients(mlp, x, y):
    loss = l2_loss(mlp(x), y)  # 1/n sum ||f(x_i) - y_i||^2, the loss manual_gradients uses
    return torch.autograd.grad(loss, list(mlp.parameters()))


@pytest.mark.parametrize("sizes", [[3, 2], [5, 8, 4], [6, 16, 9, 12, 3], [4, 7, 7, 7, 7, 7, 2]])
@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh", "identity"])
@pytest.mark.parametrize("output_activation", [None, "sigmoid"])
def test_manual_gradients_equal_autograd(sizes, activation, output_activation):
    torch.manual_seed(len(sizes))
    mlp = MLP(sizes, activation=activation, output_activation=output_activation).double()
    x = torch.randn(13, sizes[0], dtype=torch.float64)
    y = torch.randn(13, sizes[-1], dtype=torch.float64)
    manual = manual_gradients(mlp, x, y)
    auto = _autograd_gradients(mlp, x, y)
    assert len(manual) == len(auto) == 2 * (len(sizes) - 1)
    for m, a, p in zip(manual, auto, mlp.parameters(), strict=True):
        assert m.shape == p.shape
        # relative to the largest entry of the reference gradient
        scale = a.abs().max().clamp_min(1e-300)
        assert ((m - a).abs().max() / scale).item() < 1e-10


def test_manual_gradients_without_bias_and_do_not_touch_autograd_state():
    torch.manual_seed(0)
    mlp = MLP([4, 6, 2], activation="sigmoid", bias=False).double()
    x, y = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    manual = manual_gradients(mlp, x, y)
    assert all(p.grad is None for p in mlp.parameters())
    assert not any(g.requires_grad for g in manual)
    for m, a in zip(manual, _autograd_gradients(mlp, x, y), strict=True):
        torch.testing.assert_close(m, a, rtol=1e-10, atol=1e-14)


def test_manual_gradients_validate_shapes():
    mlp = MLP([3, 4, 2])
    with pytest.raises(ValueError, match=r"x must have shape"):
        manual_gradients(mlp, torch.zeros(5, 4), torch.zeros(5, 2))
    with pytest.raises(ValueError, match=r"y must have shape"):
        manual_gradients(mlp, torch.zeros(5, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="MLP"):
        manual_gradients(torch.nn.Linear(3, 2), torch.zeros(5, 3), torch.zeros(5, 2))


def _train_from_zero(activation, steps=60, lr=0.5):
    torch.manual_seed(0)
    mlp = MLP([4, 8, 3], activation=activation).double()
    for p in mlp.parameters():
        torch.nn.init.zeros_(p)
    x = torch.randn(40, 4, dtype=torch.float64)
    y = torch.randn(40, 3, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(steps):
            for p, g in zip(mlp.parameters(), manual_gradients(mlp, x, y), strict=True):
                p -= lr * g
    return mlp


def test_zero_initialization_keeps_hidden_units_identical():
    """Erratum Algorithm 1 (sec. 2.5.2): from theta = 0 every hidden unit gets the same update,
    so they stay identical (exactly, up to rounding; the manual-backprop experiment shows that
    over thousands of steps the unstable symmetric state amplifies those rounding errors)."""
    sig = _train_from_zero("sigmoid")
    W1, b1, W2 = sig.linears[0].weight, sig.linears[0].bias, sig.linears[1].weight
    assert W1.abs().max() > 1e-3  # it did learn something ...
    assert (W1 - W1[:1]).abs().max() <= 1e-12 * W1.abs().max()  # ... but one row, 8 times
    assert (b1 - b1[0]).abs().max() <= 1e-12 * b1.abs().max()
    assert (W2 - W2[:, :1]).abs().max() <= 1e-12 * W2.abs().max()
    # relu: h = relu(0) = 0 and relu'(0) = 0, so both weight matrices stay exactly 0.
    rel = _train_from_zero("relu")
    assert rel.linears[0].weight.abs().max() == 0 and rel.linears[1].weight.abs().max() == 0
    assert rel.linears[1].bias.abs().max() > 1e-3  # only the output bias moves


def test_steepest_descent_direction_is_minus_the_gradient():
    """Sec. 2.5.1: among unit steps the first-order change d^T grad f is smallest for
    d = -grad/||grad|| (the notes' "max" gives the ascent direction +grad)."""
    g = torch.Generator().manual_seed(0)
    A = torch.randn(6, 6, generator=g, dtype=torch.float64)
    A = A @ A.T + torch.eye(6, dtype=torch.float64)
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    f = lambda v: 0.5 * v @ A @ v  # noqa: E731
    (grad,) = torch.autograd.grad(f(x), x)
    d = torch.randn(5000, 6, generator=g, dtype=torch.float64)
    d = d / d.norm(dim=1, keepdim=True)
    best = -grad / grad.norm()
    assert (d @ grad).min() >= best @ grad
    with torch.no_grad():
        assert f(x - 1e-3 * grad) < f(x) < f(x + 1e-3 * grad)
