"""Perceptron rule (sec. 2.1): convergence within Novikoff's bound, XOR, and the sec. 2.1 errata."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.nn import Perceptron, novikoff_bound

XOR_X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = torch.tensor([-1.0, 1.0, 1.0, -1.0])


def _separable(n, d, margin, seed):
    """Points at distance >= margin from the hyperplane <u, x> + b = 0 (u, b known)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(d, generator=g, dtype=torch.float64)
    u = u / u.norm()
    b = 0.3
    x = torch.randn(4 * n, d, generator=g, dtype=torch.float64)
    s = x @ u + b
    keep = s.abs() >= margin
    x, s = x[keep][:n], s[keep][:n]
    return x, torch.sign(s), torch.cat([u, torch.tensor([b], dtype=torch.float64)])


def test_converges_and_separates_with_updates_within_novikoff_bound():
    x, y, sep = _separable(300, 3, 0.2, seed=0)
    result = Perceptron(max_epochs=10_000).fit(x, y)
    assert result.converged
    bound = novikoff_bound(x, y, sep)
    assert 0 < result.updates <= bound.bound
    p = Perceptron(max_epochs=10_000)
    p.fit(x, y)
    assert (p.predict(x) == y).all()


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 5), st.floats(0.05, 0.5), st.booleans())
def test_novikoff_bound_holds_for_any_order(seed, d, margin, shuffle):
    x, y, sep = _separable(60, d, margin, seed)
    gen = torch.Generator().manual_seed(seed) if shuffle else None
    result = Perceptron(max_epochs=100_000).fit(x, y, generator=gen)
    assert result.converged
    assert result.updates <= novikoff_bound(x, y, sep).bound


def test_never_converges_on_xor():
    result = Perceptron(max_epochs=5000).fit(XOR_X, XOR_Y)
    assert not result.converged
    assert result.epochs == 5000 and result.updates >= 5000  # >= 1 mistake in every pass


def test_one_update_adds_the_squared_norm():
    """Erratum sec. 2.1: y <x, w + y x> = y <x, w> + ||x||^2, not + ||x||."""
    x = torch.tensor([3.0, 4.0], dtype=torch.float64)  # ||x|| = 5, ||x||^2 = 25
    y, w = -1.0, torch.tensor([1.0, 1.0], dtype=torch.float64)
    before = y * (x @ w)
    after = y * (x @ (w + y * x))
    assert (after - before).item() == pytest.approx(25.0)


def test_one_update_can_break_another_example():
    """Erratum sec. 2.1: the per-update gain does not by itself end the loop: fixing one
    example can create a mistake on another (so termination needs separability)."""
    w = np.zeros(3)
    x_aug = np.hstack([XOR_X.double().numpy(), np.ones((4, 1))])
    y = XOR_Y.double().numpy()
    broke_another = False
    for _ in range(3):
        for i in range(4):
            if y[i] * (x_aug[i] @ w) <= 0:
                ok_before = y * (x_aug @ w) > 0
                w = w + y[i] * x_aug[i]
                ok_after = y * (x_aug @ w) > 0
                broke_another |= bool((ok_before & ~ok_after).any())
    assert broke_another


def test_half_plane_definition():
    """Erratum Def. 2.1.1: {x : <w,x> = b} is the hyperplane (the boundary), not a half-space,
    and it is not the same set as {x : sign(<w,x> - b) >= 0}."""
    w, b = torch.tensor([1.0, 2.0, 3.0]), 0.0
    a = torch.tensor([1.0, 2.0, 3.0])  # the notes' point a: <w, a> = 14 > 0, above the plane
    assert (w @ a).item() != b  # a is not on the set {<w,x> = b} ...
    assert torch.sign(w @ a - b).item() >= 0  # ... but it is in {sign(<w,x> - b) >= 0}
    assert (w @ torch.tensor([-1.0, -2.0, -1.0])).item() < 0  # the notes' b is below


def test_bound_rejects_a_non_separator_and_labels_must_be_signs():
    x, y, sep = _separable(50, 2, 0.1, seed=3)
    with pytest.raises(ValueError, match="does not separate"):
        novikoff_bound(x, y, -sep)
    with pytest.raises(ValueError, match="-1 or \\+1"):
        Perceptron().fit(x, (y > 0).double())
    with pytest.raises(ValueError, match="fit"):
        Perceptron().predict(x)
