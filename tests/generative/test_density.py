"""KernelDensity against sklearn (every kernel, 1-D and 2-D), bandwidth selection against
GridSearchCV, the scipy gaussian_kde bandwidth mapping, LSCV and the exact ISE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.stats import gaussian_kde
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity as SklearnKernelDensity

from deepnotes.generative.density import (
    KERNELS,
    GaussianMixture,
    KernelDensity,
    _self_convolution,
    cv_log_likelihood,
    integrated_squared_error,
    kfold_slices,
    lscv_score,
    scipy_factor,
    select_bandwidth_cv,
    select_bandwidth_lscv,
)

MIXTURE = GaussianMixture((0.3, 0.7), ((-1.5,), (1.0,)), (0.4, 0.9))


def _data(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) * np.arange(1, d + 1)


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("kernel", KERNELS)
def test_score_samples_matches_sklearn_float64(kernel, d):
    x, q = _data(300, d), _data(80, d, seed=1) * 1.5
    ours = KernelDensity(0.6, kernel).fit(x).score_samples(q).numpy()
    # leaf_size = n: sklearn sums every kernel exactly (see the next test for its tree)
    ref = SklearnKernelDensity(bandwidth=0.6, kernel=kernel, leaf_size=len(x)).fit(x) \
        .score_samples(q)
    assert np.array_equal(np.isfinite(ours), np.isfinite(ref))
    assert np.isfinite(ref).sum() > 40
    # 1e-9 (the kde-bandwidth claim's tolerance): typical differences are 1e-14, but 2 of ~20
    # runs under CPU load showed 1e-10 on the gaussian-1 case, not reproduced since
    np.testing.assert_allclose(ours[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=0,
                               atol=1e-9)


def test_sklearn_default_tree_gives_no_visible_density_outside_a_compact_support():
    """sklearn's tree (leaf_size 40, atol = rtol = 0) bounds far nodes; at points farther
    than h from every sample it can return log density ~ -36 instead of -inf (found by the
    kde-bandwidth parity check; sklearn 1.9.1). Ours and sklearn with leaf_size = n give
    -inf; the tree's value, finite or not, stays below -30."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 2, generator=gen, dtype=torch.float64)
    q = 1.5 * torch.randn(400, 2, generator=gen, dtype=torch.float64)
    outside = (torch.cdist(q, x).min(1).values > 0.6).numpy()
    assert outside.sum() > 20
    ours = KernelDensity(0.6, "epanechnikov").fit(x).score_samples(q).numpy()
    exact = SklearnKernelDensity(bandwidth=0.6, kernel="epanechnikov", leaf_size=300) \
        .fit(x.numpy()).score_samples(q.numpy())
    tree = SklearnKernelDensity(bandwidth=0.6, kernel="epanechnikov").fit(x.numpy()) \
        .score_samples(q.numpy())
    assert np.array_equal(ours == -np.inf, outside) and np.array_equal(exact == -np.inf, outside)
    assert (tree[outside] < -30).all()


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("kernel", KERNELS)
def test_every_kernel_integrates_to_one(kernel, d):
    """Radial integral ``S_{d-1} int_0^inf r^{d-1} K(r) dr`` (sphere area ``S_{d-1} =
    2 pi^{d/2} / Gamma(d/2)``), independent of the closed-form normalizations."""
    kde = KernelDensity(1.0, kernel).fit(np.zeros((1, d)))

    def radial(r):
        point = np.zeros((1, d))
        point[0, 0] = r
        return r ** (d - 1) * math.exp(kde.score_samples(point)[0])

    sphere = 2 * math.pi ** (d / 2) / math.gamma(d / 2)
    total = sphere * integrate.quad(radial, 0, 1 if kernel != "gaussian" else 15, limit=200)[0]
    assert total == pytest.approx(1.0, abs=1e-8)


def test_kfold_slices_match_sklearn_kfold():
    from sklearn.model_selection import KFold
    for n, k in [(23, 5), (100, 4), (7, 7)]:
        ours = [np.arange(n)[s] for s in kfold_slices(n, k)]
        ref = [test for _, test in KFold(k).split(np.zeros(n))]
        assert all(np.array_equal(a, b) for a, b in zip(ours, ref, strict=True))
    with pytest.raises(ValueError):
        kfold_slices(3, 5)


@pytest.mark.parametrize("kernel,d", [("gaussian", 1), ("epanechnikov", 1), ("gaussian", 2),
                                      ("linear", 2)])
def test_cv_log_likelihood_matches_gridsearchcv(kernel, d):
    x = _data(150, d, seed=2)
    grid = [0.3, 0.5, 0.8, 1.2, 1.8]
    search = GridSearchCV(SklearnKernelDensity(kernel=kernel), {"bandwidth": grid}, cv=5)
    search.fit(x)
    ours = cv_log_likelihood(x, grid, kernel, folds=5).numpy()
    np.testing.assert_allclose(ours, search.cv_results_["mean_test_score"], rtol=1e-10)
    assert select_bandwidth_cv(x, grid, kernel) == search.best_params_["bandwidth"]


def test_scipy_gaussian_kde_mapping_in_1d_and_whitened_2d():
    x = _data(200, 1, seed=3)[:, 0] * 2.5 + 1
    q = np.linspace(-8, 10, 50)
    h = 0.7
    ref = gaussian_kde(x, bw_method=scipy_factor(h, x)).logpdf(q)
    np.testing.assert_allclose(KernelDensity(h).fit(x).score_samples(q).numpy(), ref,
                               atol=1e-10)
    # scipy's "scott" is a factor of the data's spread; sklearn's "scott" is the bare factor
    scott = len(x) ** (-1 / 5)
    np.testing.assert_allclose(KernelDensity(scott * x.std(ddof=1)).fit(x).score_samples(q)
                               .numpy(), gaussian_kde(x, "scott").logpdf(q), atol=1e-10)
    assert SklearnKernelDensity(bandwidth="scott").fit(x[:, None]).bandwidth_ == \
        pytest.approx(scott)
    with pytest.raises(ValueError):
        scipy_factor(h, np.zeros((5, 2)))
    # 2-D: scipy's kernel covariance is factor^2 * cov(x); on whitened data it is isotropic
    y = _data(300, 2, seed=4) @ np.array([[1.0, 0.6], [0.0, 0.8]])
    chol = np.linalg.cholesky(np.cov(y.T))
    white = np.linalg.solve(chol, y.T).T  # sample covariance = I
    qq = _data(40, 2, seed=5)
    ours = KernelDensity(0.5).fit(white).score_samples(np.linalg.solve(chol, qq.T).T).numpy()
    ours -= np.log(np.linalg.det(chol))  # density of y = chol @ white
    np.testing.assert_allclose(ours, gaussian_kde(y.T, bw_method=0.5).logpdf(qq.T), atol=1e-10)


@pytest.mark.parametrize("kernel", KERNELS)
def test_self_convolution_of_1d_kernels_by_quadrature(kernel):
    kde = KernelDensity(1.0, kernel).fit(np.zeros((1, 1)))

    def k(u):
        return math.exp(kde.score_samples(np.array([[u]]))[0])

    for t in (0.0, 0.4, 1.0, 1.5, 2.5):
        ref = integrate.quad(lambda u, t=t: k(u) * k(t - u), -12, 12,
                             points=[-1, 1, t - 1, t, t + 1], limit=200)[0]
        ours = float(_self_convolution(kernel, torch.tensor(t, dtype=torch.float64), 1))
        assert ours == pytest.approx(ref, abs=1e-7)


@pytest.mark.parametrize("kernel", KERNELS)
def test_lscv_equals_its_definition_by_quadrature(kernel):
    x = MIXTURE.sample(40, torch.Generator().manual_seed(0))
    h = 0.5
    kde = KernelDensity(h, kernel).fit(x)
    grid = torch.linspace(-8, 8, 160001, dtype=torch.float64)[:, None]
    square = float((kde.score_samples(grid).exp() ** 2).sum() * (16 / 160000))
    loo = np.mean([math.exp(KernelDensity(h, kernel).fit(torch.cat([x[:i], x[i + 1:]]))
                            .score_samples(x[i:i + 1])[0]) for i in range(len(x))])
    assert lscv_score(x, h, kernel) == pytest.approx(square - 2 * loo, abs=1e-5)


def test_lscv_of_gaussian_kernel_in_2d_by_grid():
    mix = GaussianMixture((1.0,), ((0.0, 0.0),), (1.0,))
    x = mix.sample(30, torch.Generator().manual_seed(1))
    kde = KernelDensity(0.6).fit(x)
    axis = torch.linspace(-7, 7, 701, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    square = float((kde.score_samples(grid).exp() ** 2).sum() * (14 / 700) ** 2)
    dens = torch.stack([KernelDensity(0.6).fit(torch.cat([x[:i], x[i + 1:]]))
                        .score_samples(x[i:i + 1]).exp()[0] for i in range(len(x))])
    assert lscv_score(x, 0.6) == pytest.approx(square - 2 * float(dens.mean()), abs=1e-6)
    with pytest.raises(ValueError, match="1-D only"):
        lscv_score(x, 0.6, "tophat")


@pytest.mark.parametrize("d", [1, 2])
def test_exact_mixture_ise_equals_grid_quadrature(d):
    means = ((-1.5,), (1.0,)) if d == 1 else ((-1.0, 0.5), (1.0, -0.5))
    mix = GaussianMixture((0.3, 0.7), means, (0.4, 0.9))
    x = mix.sample(100, torch.Generator().manual_seed(2))
    axis = torch.linspace(-7, 7, 20001 if d == 1 else 561, dtype=torch.float64)
    grid = axis[:, None] if d == 1 else torch.cartesian_prod(axis, axis)
    cell = (14 / (len(axis) - 1)) ** d
    kde = KernelDensity(0.35).fit(x)
    numeric = integrated_squared_error(kde, lambda g: mix.log_prob(g).exp(), grid, cell)
    assert mix.ise_gaussian_kde(x, 0.35) == pytest.approx(numeric, rel=1e-5)


def test_lscv_tracks_the_true_ise_on_average_and_small_h_is_not_best():
    """E[LSCV(h)] + int f^2 = MISE(h) of a sample of n - 1: averaged over 40 samples the two
    curves agree within their Monte-Carlo error and share their minimizer's neighbourhood."""
    grid = [0.1, 0.2, 0.3, 0.45, 0.7, 1.0]
    axis = torch.linspace(-10, 10, 20001, dtype=torch.float64)[:, None]
    f_sq = float((2 * MIXTURE.log_prob(axis)).exp().sum() * 20 / 20000)  # int f^2
    lscv, ise = np.zeros(len(grid)), np.zeros(len(grid))
    for seed in range(40):
        x = MIXTURE.sample(100, torch.Generator().manual_seed(seed))
        lscv += [lscv_score(x, h) / 40 for h in grid]
        ise += [MIXTURE.ise_gaussian_kde(x, h) / 40 for h in grid]
    np.testing.assert_allclose(lscv + f_sq, ise, atol=0.006)
    assert abs(int(np.argmin(lscv)) - int(np.argmin(ise))) <= 1
    # MISE is U-shaped: its minimizer is interior, the smallest h is not the best (erratum)
    assert 0 < int(np.argmin(ise)) < len(grid) - 1 and ise[0] > 2 * ise.min()


def test_selectors_return_grid_points_and_inputs_are_validated():
    x = MIXTURE.sample(80, torch.Generator().manual_seed(3))
    grid = [0.2, 0.4, 0.8]
    assert select_bandwidth_lscv(x, grid) in grid and select_bandwidth_cv(x, grid) in grid
    with pytest.raises(ValueError, match="kernel"):
        KernelDensity(1.0, "cosine")
    with pytest.raises(ValueError, match="bandwidth"):
        KernelDensity(0.0)
    with pytest.raises(ValueError, match="fit"):
        KernelDensity(1.0).score_samples(x)
    with pytest.raises(ValueError, match="dimension"):
        KernelDensity(1.0).fit(x).score_samples(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        KernelDensity(1.0).fit(np.array([[np.nan]]))
