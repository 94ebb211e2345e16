"""Samplers of notes 8.4 by Kolmogorov-Smirnov tests with fixed seeds, the exact CLT error
and its rates, Box-Muller, a full-covariance Gaussian, tabulated inversion."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from deepnotes.generative.sampling import (
    INVERSE_CDFS,
    box_muller,
    clt_gaussian,
    clt_sup_error,
    gaussian,
    inverse_cdf_sample,
    sample,
    tabulated_inverse_cdf,
    uniform,
)

N = 20000
P_MIN = 0.01  # a correct sampler fails a KS test at this level 1% of the time; seeds fixed

SCIPY = {
    "exponential": (dict(rate=2.0), stats.expon(scale=0.5)),
    "cauchy": (dict(loc=1.0, scale=0.5), stats.cauchy(loc=1.0, scale=0.5)),
    "laplace": (dict(loc=-1.0, scale=2.0), stats.laplace(loc=-1.0, scale=2.0)),
    "logistic": (dict(loc=0.5, scale=1.5), stats.logistic(loc=0.5, scale=1.5)),
    "rayleigh": (dict(scale=2.0), stats.rayleigh(scale=2.0)),
    "pareto": (dict(shape=3.0, scale=1.0), stats.pareto(3.0)),
}


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_uniform_box_passes_ks_per_coordinate_and_is_seeded():
    u = uniform((N, 3), _g(), low=-1.0, high=2.0)
    assert u.dtype == torch.float64 and u.min() >= -1 and u.max() < 2
    for k in range(3):
        assert stats.kstest(u[:, k].numpy(), stats.uniform(-1, 3).cdf).pvalue > P_MIN
    assert abs(np.corrcoef(u.numpy().T)[0, 1]) < 4 / math.sqrt(N)
    assert torch.equal(u, uniform((N, 3), _g(), low=-1.0, high=2.0))
    with pytest.raises(ValueError):
        uniform((3,), _g(), low=1.0, high=1.0)
    with pytest.raises(ValueError, match="Generator"):
        uniform((3,), 0)


def test_inverse_cdf_list_is_covered_here():
    assert set(SCIPY) == set(INVERSE_CDFS)


@pytest.mark.parametrize("name", sorted(SCIPY))
def test_inverse_cdf_samplers_pass_ks_against_scipy(name):
    params, ref = SCIPY[name]
    x = sample(name, N, _g(1), **params)
    assert torch.isfinite(x).all()
    assert stats.kstest(x.numpy(), ref.cdf).pvalue > P_MIN
    # the test has power: a wrong parameter is rejected
    assert stats.kstest((x * 1.1).numpy(), ref.cdf).pvalue < 1e-6


def test_box_muller_gives_two_independent_standard_normals():
    z = box_muller(N, _g(2))
    assert z.shape == (N, 2)
    for k in range(2):
        assert stats.kstest(z[:, k].numpy(), "norm").pvalue > P_MIN
    assert abs(float((z[:, 0] * z[:, 1]).mean())) < 4 / math.sqrt(N)
    # independence beyond correlation: the radius^2 is chi^2_2 and the angle uniform
    r2 = (z ** 2).sum(1).numpy()
    angle = np.arctan2(z[:, 1].numpy(), z[:, 0].numpy())
    assert stats.kstest(r2, stats.chi2(2).cdf).pvalue > P_MIN
    assert stats.kstest(angle, stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue > P_MIN


def test_full_covariance_gaussian_not_only_diagonal():
    cov = torch.tensor([[2.0, 1.2], [1.2, 1.0]], dtype=torch.float64)
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)
    x = gaussian(N, mean, cov, _g(3))
    emp = torch.cov(x.T)
    assert (emp - cov).abs().max() < 0.06 and (x.mean(0) - mean).abs().max() < 0.04
    # every direction is N(w' mu, w' cov w)
    w = torch.tensor([0.6, -0.8], dtype=torch.float64)
    proj = stats.norm(float(w @ mean), math.sqrt(float(w @ cov @ w)))
    assert stats.kstest((x @ w).numpy(), proj.cdf).pvalue > P_MIN
    with pytest.raises(ValueError):
        gaussian(5, mean, torch.eye(3, dtype=torch.float64), _g())


def test_clt_sum_matches_irwin_hall_and_its_error_falls_like_one_over_n():
    x = clt_gaussian((N,), 12, _g(4))
    ref = stats.irwinhall(12)
    assert stats.kstest((x * 1.0 + 6).numpy(), ref.cdf).pvalue > P_MIN
    assert x.abs().max() <= 6  # bounded: no tails beyond 6 standard deviations
    ns = [4, 8, 16, 32, 64]
    uni = [clt_sup_error(n) for n in ns]
    expo = [clt_sup_error(n, "exponential") for n in ns]
    slope_uni = np.polyfit(np.log(ns), np.log(uni), 1)[0]
    slope_expo = np.polyfit(np.log(ns), np.log(expo), 1)[0]
    assert slope_uni == pytest.approx(-1.0, abs=0.05)  # symmetric base: O(1/n)
    assert slope_expo == pytest.approx(-0.5, abs=0.05)  # skewed base: Berry-Esseen O(n^-1/2)
    # a sampled KS statistic agrees with the exact error (within the KS noise)
    sampled = stats.kstest(clt_gaussian((N,), 2, _g(5)).numpy(), "norm").statistic
    assert abs(sampled - clt_sup_error(2)) < 1.6 / math.sqrt(N)


def test_clt_needs_finite_variance_cauchy_mean_stays_cauchy():
    for n in (1, 16, 256):
        c = sample("cauchy", 4000 * n, _g(6)).reshape(4000, n).mean(1)
        assert stats.kstest(c.numpy(), "cauchy").pvalue > P_MIN


def test_tabulated_inverse_cdf_samples_any_density():
    def bimodal(x):
        return 0.3 * torch.exp(-(x + 2) ** 2 / 0.5) + 0.7 * torch.exp(-(x - 1) ** 2 / 2)

    grid = np.linspace(-10, 10, 200001)
    pdf = bimodal(torch.from_numpy(grid)).numpy()
    cdf = np.cumsum(pdf) / pdf.sum()
    x = inverse_cdf_sample(tabulated_inverse_cdf(bimodal, -10, 10), N, _g(7)).numpy()
    assert stats.kstest(x, lambda t: np.interp(t, grid, cdf)).pvalue > P_MIN
    inv = tabulated_inverse_cdf(lambda t: torch.exp(-t ** 2 / 2), -9, 9)
    u = torch.tensor([0.025, 0.5, 0.975], dtype=torch.float64)
    np.testing.assert_allclose(inv(u).numpy(), stats.norm.ppf(u.numpy()), atol=1e-4)
    with pytest.raises(ValueError):
        tabulated_inverse_cdf(lambda t: -torch.ones_like(t), 0, 1)
