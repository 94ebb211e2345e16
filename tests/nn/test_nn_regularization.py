"""Dropout, L1/L2 penalties (sec. 2.6.2), and the penalty-sign erratum."""

import math

import pytest
import torch

from deepnotes.nn import MLP, Dropout, dropout, l1_penalty, l2_penalty, weight_parameters


def test_dropout_is_inverted_and_keeps_the_expectation():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 500, dtype=torch.float64) + 0.5
    p = 0.3
    y = dropout(x, p, generator=g)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))
    n = x.numel()
    dropped = 1 - kept.double().mean().item()
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / n)  # binomial, 5 sigma
    # E[dropout(x)] = x: the mean over many masks approaches x (units dropped, not weights)
    x0 = x[0, :50]
    mean = dropout(x0.expand(4000, 50), p, generator=g).mean(0)  # 4000 masks per entry
    assert ((mean - x0).abs() / x0).max() < 0.05  # ~5 standard errors


def test_dropout_matches_torch_structure_and_modes():
    x = torch.randn(64, 32)
    torch.manual_seed(0)
    ref = torch.nn.functional.dropout(x, 0.5, training=True)
    ours = dropout(x, 0.5, generator=torch.Generator().manual_seed(0))
    both = (ref != 0) & (ours != 0)
    torch.testing.assert_close(ours[both], ref[both])  # same scaling 1/(1-p)
    m = Dropout(0.5)
    assert torch.equal(m.eval()(x), x)
    assert torch.equal(dropout(x, 0.0), x)
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    a = dropout(x, 0.5, generator=torch.Generator().manual_seed(7))
    b = dropout(x, 0.5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Dropout(1.5)


def test_penalties_values_and_weight_selection():
    mlp = MLP([3, 4, 2])
    weights = weight_parameters(mlp)
    assert [tuple(w.shape) for w in weights] == [(4, 3), (2, 4)]  # biases excluded
    expected_l1 = sum(w.abs().sum() for w in weights)
    expected_l2 = sum((w ** 2).sum() for w in weights)
    torch.testing.assert_close(l1_penalty(weights), expected_l1)
    torch.testing.assert_close(l2_penalty(weights), expected_l2)
    with pytest.raises(ValueError, match="no parameters"):
        l2_penalty([])


def test_l2_penalty_equals_sgd_weight_decay():
    torch.manual_seed(0)
    x, y = torch.randn(16, 3, dtype=torch.float64), torch.randn(16, 1, dtype=torch.float64)
    lam, lr = 0.05, 0.1
    a = torch.nn.Linear(3, 1, bias=False).double()
    b = torch.nn.Linear(3, 1, bias=False).double()
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.SGD(a.parameters(), lr=lr)
    opt_b = torch.optim.SGD(b.parameters(), lr=lr, weight_decay=2 * lam)
    for _ in range(5):
        opt_a.zero_grad()
        (((a(x) - y) ** 2).mean() + lam * l2_penalty(a.parameters())).backward()
        opt_a.step()
        opt_b.zero_grad()
        ((b(x) - y) ** 2).mean().backward()
        opt_b.step()
    torch.testing.assert_close(a.weight, b.weight)


def _gradient_descent(X, y, lam, sign, steps, lr):
    w = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
    for _ in range(steps):
        loss = ((X @ w - y) ** 2).sum() + sign * lam * (w ** 2).sum()
        (g,) = torch.autograd.grad(loss, w)
        with torch.no_grad():
            w -= lr * g
    return w.detach(), loss.item()


def test_penalty_must_be_added_not_subtracted():
    """Erratum sec. 2.6.2: L = ||Xw - y||^2 + lambda ||w||^2, not minus."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(50, 4, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64) + 0.3 * torch.randn(
        50, generator=g, dtype=torch.float64)
    gram = X.T @ X
    eig_min, eig_max = torch.linalg.eigvalsh(gram)[[0, -1]]
    I = torch.eye(4, dtype=torch.float64)
    ols = torch.linalg.solve(gram, X.T @ y)
    lr = 0.4 / eig_max.item()

    # + lambda: gradient descent reaches ridge (X^T X + lambda I)^{-1} X^T y, which shrinks.
    lam = 20.0
    w_plus, _ = _gradient_descent(X, y, lam, +1.0, 3000, lr)
    ridge = torch.linalg.solve(gram + lam * I, X.T @ y)
    torch.testing.assert_close(w_plus, ridge, rtol=1e-8, atol=1e-10)
    assert ridge.norm() < ols.norm()

    # - lambda, lambda below the smallest eigenvalue: a minimum exists but it *grows* the
    # weights ((X^T X - lambda I)^{-1} X^T y), the opposite of regularization.
    anti = torch.linalg.solve(gram - lam * I, X.T @ y)
    assert lam < eig_min and anti.norm() > ols.norm()

    # - lambda above the smallest eigenvalue: unbounded below; gradient descent diverges.
    w_minus, loss_minus = _gradient_descent(X, y, 2 * eig_min.item(), -1.0, 300, lr)
    assert w_minus.norm() > 1e6 and loss_minus < -1e12
