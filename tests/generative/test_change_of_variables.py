"""The change-of-variables density of notes 8.5 against autograd's slogdet, scipy's
closed forms and histograms of pushed-forward draws, in 1-D and 2-D."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from deepnotes.generative.change_of_variables import (
    Affine,
    Coupling2D,
    Sinh,
    autograd_log_density,
    bin_masses,
    histogram_chi_square,
    inverse_jacobians,
    log_density,
    standard_normal_log_prob,
)

F64 = torch.float64


def _z(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


MAPS = {
    "affine-1d": Affine(torch.tensor([[-2.0]], dtype=F64), torch.tensor([0.5], dtype=F64)),
    "sinh-1d": Sinh(loc=0.5, scale=2.0),
    "affine-2d": Affine(torch.tensor([[1.0, -1.0], [1.0, 1.0]], dtype=F64),
                        torch.tensor([1.0, 0.0], dtype=F64)),
    "sinh-2d": Sinh(),
    "coupling-2d": Coupling2D(a=0.5, c=1.5),
}


@pytest.mark.parametrize("name", sorted(MAPS))
def test_closed_form_log_det_equals_autograd_slogdet(name):
    bijection = MAPS[name]
    d = 1 if name.endswith("1d") else 2
    x = bijection.forward(_z(64, d))
    np.testing.assert_allclose(bijection.inverse(x).numpy(), _z(64, d).numpy(), atol=1e-12)
    ours = log_density(x, bijection, standard_normal_log_prob)
    auto = autograd_log_density(x, bijection.inverse, standard_normal_log_prob)
    np.testing.assert_allclose(ours.numpy(), auto.numpy(), atol=1e-12)
    # the same density through the forward Jacobian: p_z(z) / |det J_M(z)|
    z = _z(64, d)
    forward_log_det = torch.linalg.slogdet(inverse_jacobians(z, bijection.forward)).logabsdet
    np.testing.assert_allclose(ours.numpy(), (standard_normal_log_prob(z) - forward_log_det)
                               .numpy(), atol=1e-12)


def test_1d_maps_match_scipy_closed_forms():
    x = torch.linspace(-6, 6, 101, dtype=F64)[:, None]
    affine = log_density(x, MAPS["affine-1d"], standard_normal_log_prob)
    np.testing.assert_allclose(affine.numpy(), stats.norm(0.5, 2.0).logpdf(x[:, 0].numpy()),
                               atol=1e-12)
    # z ~ N(0,1), x = exp(z) is log-normal: inverse log, |d log x / dx| = 1 / x
    xp = torch.linspace(0.05, 8, 101, dtype=F64)[:, None]
    lognormal = autograd_log_density(xp, torch.log, standard_normal_log_prob)
    np.testing.assert_allclose(lognormal.numpy(), stats.lognorm(1.0).logpdf(xp[:, 0].numpy()),
                               atol=1e-12)
    # sinh of a normal is Johnson's S_U: scipy.stats.johnsonsu(a=0, b=1, loc, scale)
    s = MAPS["sinh-1d"]
    np.testing.assert_allclose(log_density(x, s, standard_normal_log_prob).numpy(),
                               stats.johnsonsu(0, 1, loc=0.5, scale=2.0).logpdf(x[:, 0].numpy()),
                               atol=1e-12)


@pytest.mark.parametrize("name", sorted(MAPS))
def test_formula_matches_histogram_of_pushed_forward_draws(name):
    bijection = MAPS[name]
    d = 1 if name.endswith("1d") else 2
    x = bijection.forward(_z(100_000, d, seed=1))
    edges = [torch.linspace(-8, 8, 41 if d == 1 else 25, dtype=F64)] * d
    masses = bin_masses(lambda t: log_density(t, bijection, standard_normal_log_prob), edges)
    assert histogram_chi_square(x, masses, edges)[1] > 0.01
    # the test has power: dropping the Jacobian factor is rejected (except volume-preserving
    # maps, where |det J| is constant and normalization alone would fix it)
    wrong = bin_masses(lambda t: standard_normal_log_prob(bijection.inverse(t)), edges)
    assert histogram_chi_square(x, wrong / wrong.sum() * masses.sum(), edges)[1] < 1e-6 \
        or name.startswith("affine")


def test_abs_of_det_not_det_of_abs():
    """The notes print det|J|: for A = [[1, -1], [1, 1]] (rotation by 45 degrees times
    sqrt 2) det|A| = 0, which would make p_x vanish; |det A^{-1}| = 1/2 integrates to one."""
    A = MAPS["affine-2d"].A
    assert float(torch.linalg.det(A.abs())) == 0.0
    inv = torch.linalg.inv(A)
    assert float(torch.linalg.det(inv).abs()) == pytest.approx(0.5)
    edges = [torch.linspace(-9, 9, 181, dtype=F64)] * 2
    masses = bin_masses(lambda t: log_density(t, MAPS["affine-2d"], standard_normal_log_prob),
                        edges)
    assert float(masses.sum()) == pytest.approx(1.0, abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-2, 2), min_size=4, max_size=4),
       st.floats(-1, 1), st.floats(-2, 2))
def test_closed_form_matches_autograd_for_random_invertible_maps(entries, a, c):
    A = torch.tensor(entries, dtype=F64).reshape(2, 2) + 3 * torch.eye(2, dtype=F64)
    if abs(float(torch.linalg.det(A))) < 0.5:
        return  # too close to singular for a bounded grid
    coupling = Coupling2D(a=a, c=c)
    z = _z(16, 2, seed=3)
    x = coupling.forward(z)
    auto = autograd_log_density(x, coupling.inverse, standard_normal_log_prob)
    np.testing.assert_allclose(log_density(x, coupling, standard_normal_log_prob).numpy(),
                               auto.numpy(), atol=1e-10)
    affine = Affine(A, torch.zeros(2, dtype=F64))
    x = affine.forward(z)
    auto = autograd_log_density(x, affine.inverse, standard_normal_log_prob)
    np.testing.assert_allclose(log_density(x, affine, standard_normal_log_prob).numpy(),
                               auto.numpy(), atol=1e-10)


def test_non_invertible_fold_breaks_the_single_branch_formula():
    """x = |z| is two-to-one: the formula with one inverse branch (z = x) integrates to 1/2;
    the pushforward density sums over preimages. A GAN generator need not be invertible."""
    x = torch.linspace(0, 10, 100001, dtype=F64)[:, None]
    one_branch = autograd_log_density(x, lambda t: t, standard_normal_log_prob).exp()
    assert float(torch.trapezoid(one_branch, x[:, 0])) == pytest.approx(0.5, abs=1e-6)


def test_inputs_are_validated():
    with pytest.raises(ValueError, match="singular"):
        Affine(torch.ones(2, 2, dtype=F64), torch.zeros(2, dtype=F64))
    with pytest.raises(ValueError):
        Affine(torch.eye(3, dtype=F64), torch.zeros(2, dtype=F64))
    with pytest.raises(ValueError):
        inverse_jacobians(torch.zeros(3, dtype=F64), torch.log)
    assert math.isfinite(float(standard_normal_log_prob(torch.zeros(1, 3, dtype=F64))[0]))
