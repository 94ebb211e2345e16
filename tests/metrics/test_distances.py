"""The unbiased IMQ MMD and the Fréchet distance (deepnotes.metrics.distances)."""

import numpy as np
import pytest
import scipy.linalg
import torch

from deepnotes.metrics import frechet_distance, gaussian_moments, imq_kernel, mmd_unbiased


def _direct_mmd(x, y, c):
    """The U-statistic written as explicit loops over pairs."""
    k = lambda a, b: c / (c + float(((a - b) ** 2).sum()))  # noqa: E731
    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return kxx + kyy - 2 * kxy


def test_mmd_matches_direct_computation():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 3, generator=g, dtype=torch.float64), torch.randn(
        9, 3, generator=g, dtype=torch.float64) + 0.5
    assert float(mmd_unbiased(x, y, 6.0)) == pytest.approx(_direct_mmd(x, y, 6.0), rel=1e-12)
    both = float(mmd_unbiased(x, y, (1.0, 6.0)))
    assert both == pytest.approx(_direct_mmd(x, y, 1.0) + _direct_mmd(x, y, 6.0), rel=1e-12)


def test_mmd_same_distribution_near_zero_and_sometimes_negative():
    g = torch.Generator().manual_seed(1)
    values = [float(mmd_unbiased(torch.randn(200, 8, generator=g, dtype=torch.float64),
                                 torch.randn(200, 8, generator=g, dtype=torch.float64), 16.0))
              for _ in range(20)]
    shifted = float(mmd_unbiased(torch.randn(200, 8, generator=g, dtype=torch.float64),
                                 torch.randn(200, 8, generator=g, dtype=torch.float64) + 1.0,
                                 16.0))
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(len(values)) + 1e-4
    assert min(values) < 0  # an unbiased estimate of 0 falls below it about half the time
    assert shifted > 20 * max(abs(v) for v in values)


def test_mmd_rejects_bad_shapes_and_scales():
    with pytest.raises(ValueError, match="same d"):
        mmd_unbiased(torch.zeros(4, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="at least 2"):
        mmd_unbiased(torch.zeros(1, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="scale"):
        imq_kernel(torch.zeros(2, 2), torch.zeros(2, 2), 0.0)


def test_frechet_closed_forms():
    # Commuting (diagonal) covariances: tr(sqrt) = sum sqrt(a_i b_i).
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu1, mu2 = np.zeros(3), np.array([1.0, -2.0, 0.5])
    expect = (mu1 - mu2) @ (mu1 - mu2) + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expect, rel=1e-12)
    # One dimension: (mu1 - mu2)^2 + (s1 - s2)^2 with standard deviations s.
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9.0 + 1.0)
    # Identical Gaussians: 0.
    s = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert frechet_distance([1, 2], s, [1, 2], s) == pytest.approx(0.0, abs=1e-12)


def test_frechet_matches_scipy_sqrtm_formula_on_well_conditioned_matrices():
    rng = np.random.default_rng(0)
    for d in (2, 5, 16):
        a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
        s1, s2 = a @ a.T + d * np.eye(d), b @ b.T + d * np.eye(d)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        ref = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * covmean)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-9)


def test_frechet_rank_deficient_covariances_are_real_and_nonnegative():
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=(5, 20)), rng.normal(size=(5, 20))  # N = 5 < d = 20: rank 4
    value = frechet_distance(*gaussian_moments(f1), *gaussian_moments(f2))
    assert np.isfinite(value) and value >= 0
    m, s = gaussian_moments(f1)
    assert frechet_distance(m, s, m, s) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="one d"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
