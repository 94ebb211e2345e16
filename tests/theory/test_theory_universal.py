"""Universal approximation pieces (notes 3.1): ramps, staircases, least-squares readout."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.theory import (
    fit_sigmoid_readout,
    random_sigmoid_layer,
    relu_network_function,
    relu_ramp,
    sigmoid_net,
    staircase_net,
    sup_error,
)
from deepnotes.theory.universal import sigmoid_features

X = torch.linspace(0, 1, 4001, dtype=torch.float64)


def test_relu_ramp_is_the_notes_relu_difference():
    # relu(Wx + b1) - relu(Wx + b2) with W = 1/delta, b1 - b2 = 1
    c, d = 0.3, 0.25
    x = torch.linspace(-1, 2, 3001, dtype=torch.float64)
    direct = torch.relu(x / d - c / d + 0.5) - torch.relu(x / d - c / d - 0.5)
    torch.testing.assert_close(relu_ramp(x, c, d), direct, rtol=0, atol=1e-12)
    assert relu_ramp(torch.tensor([c - d], dtype=torch.float64), c, d).item() == 0.0
    assert relu_ramp(torch.tensor([c + d], dtype=torch.float64), c, d).item() == 1.0
    assert relu_ramp(torch.tensor([c], dtype=torch.float64), c, d).item() == 0.5
    with pytest.raises(ValueError, match="delta"):
        relu_ramp(x, 0.0, 0.0)


def test_relu_difference_is_sigmoidal_exactly():
    ramp = relu_network_function([[[4], [4]], [[1, -1]]], [[1, 0], [0]])
    assert ramp.slope_left == 0 and ramp.slope_right == 0
    assert ramp(-100) == 0 and ramp(100) == 1
    assert all(s >= 0 for s in ramp.slopes()) and ramp(Fraction(-1, 8)) == Fraction(1, 2)
    # with b1 - b2 = 2 it is bounded but tends to 2: not sigmoidal in Cybenko's sense
    assert relu_network_function([[[1], [1]], [[1, -1]]], [[2, 0], [0]])(100) == 2


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 64), st.floats(0.2, 6.0), st.floats(0, 2 * math.pi))
def test_staircase_within_lipschitz_bound(cells, freq, phase):
    """Theorem: sup |f - g| <= L / N for an L-Lipschitz g (here L = 2 pi freq)."""
    g = lambda v: math.sin(2 * math.pi * freq * v + phase)  # noqa: E731
    L = 2 * math.pi * freq
    net = staircase_net(g, cells)
    assert net.hidden_units == max(1, 2 * (cells - 1))
    with torch.no_grad():
        err = sup_error(net(X), torch.sin(2 * math.pi * freq * X + phase))
    assert err <= L / cells + 1e-12


def test_staircase_is_exact_on_cell_midpoints_and_constant_inside():
    g = lambda v: v ** 2  # noqa: E731
    net = staircase_net(g, 4, delta=0.1)
    mids = torch.tensor([0.125, 0.375, 0.625, 0.875], dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(net(mids), mids ** 2, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="cells"):
        staircase_net(g, 0)


def test_least_squares_readout_recovers_a_net_of_the_same_features():
    gen = torch.Generator().manual_seed(0)
    w, b = random_sigmoid_layer(12, gen)
    alpha = torch.randn(12, generator=gen, dtype=torch.float64)
    y = sigmoid_net(X, w, b, alpha, torch.tensor(0.3, dtype=torch.float64))
    a_hat, c_hat = fit_sigmoid_readout(X, y, w, b)
    assert sup_error(sigmoid_net(X, w, b, a_hat, c_hat), y) < 1e-8


def test_nested_widths_never_increase_training_error():
    gen = torch.Generator().manual_seed(1)
    w, b = random_sigmoid_layer(64, gen)
    y = (X - 0.4).abs()
    errs = []
    for width in (1, 2, 4, 8, 16, 32, 64):
        a, c = fit_sigmoid_readout(X, y, w[:width], b[:width])
        errs.append((sigmoid_net(X, w[:width], b[:width], a, c) - y).pow(2).sum().item())
    assert all(e1 <= e0 + 1e-9 for e0, e1 in zip(errs, errs[1:], strict=False))
    assert errs[-1] < 1e-2 * errs[0]


def test_constant_activation_is_not_universal():
    """Hornik needs sigma bounded *and non-constant*: with sigma = const the net is a
    constant, whose sup distance to g(x) = x on [0, 1] is at least 1/2."""
    phi = torch.full((X.shape[0], 5), 0.7, dtype=torch.float64)  # sigma == 0.7
    design = torch.cat([phi, torch.ones_like(X)[:, None]], dim=1)
    sol = torch.linalg.lstsq(design, X[:, None], driver="gelsd").solution
    f = (design @ sol)[:, 0]
    assert sup_error(f, X) >= 0.5 - 1e-12


def test_random_layer_shapes_and_validation():
    w, b = random_sigmoid_layer(7, torch.Generator().manual_seed(0), (2.0, 3.0))
    assert w.shape == b.shape == (7,)
    assert bool(((w.abs() >= 2.0) & (w.abs() <= 3.0)).all())
    centers = -b / w
    assert bool(((centers >= 0) & (centers <= 1)).all())
    assert sigmoid_features(X, w, b).shape == (X.shape[0], 7)
    with pytest.raises(ValueError, match="width"):
        random_sigmoid_layer(0, torch.Generator())
    with pytest.raises(ValueError, match="both be"):
        fit_sigmoid_readout(X, X[:-1], w, b)
