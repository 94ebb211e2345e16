"""PnP-ADMM, RED and MAP of notes 8.14-8.15 on toys where the answer is known."""

import pytest
import torch

from deepnotes.restoration.admm import (
    GaussianPrior,
    data_prox,
    jacobian_symmetry,
    jacobian_symmetry_probes,
    map_admm,
    map_energy,
    map_gradient_descent,
    pnp_admm,
    red_fixed_point,
    red_gradient_mismatch,
)
from deepnotes.restoration.classical import fourier, gradient_transfer, tikhonov_deconvolve
from deepnotes.restoration.degradations import Blur, Denoising, gaussian_kernel

SHAPE = (12, 10)


def _problem(operator, sigma=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(SHAPE, generator=g, dtype=torch.float64)
    return clean, operator.observe(clean, sigma, g)


def _operators():
    return [Denoising(), Blur(gaussian_kernel(3, 0.7), SHAPE)]


def _smoother(c=0.3):
    """A linear denoiser with a symmetric Jacobian: transfer exp(−c|D̂|²) in (0, 1]."""
    transfer = torch.exp(-c * gradient_transfer(SHAPE))
    return lambda t: fourier(SHAPE).filter(t, transfer)


@pytest.mark.parametrize("operator", _operators(), ids=lambda o: type(o).__name__)
def test_x_step_is_the_exact_minimizer(operator):
    clean, y = _problem(operator)
    target = torch.rand(SHAPE, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    sigma, rho = 0.1, 7.0
    x = data_prox(operator, y, sigma, rho, target)
    grad = operator.adjoint(operator(x) - y) / sigma ** 2 + rho * (x - target)
    assert grad.abs().max() < 1e-9


@pytest.mark.parametrize("operator", _operators(), ids=lambda o: type(o).__name__)
def test_map_by_gradient_descent_equals_map_by_admm(operator):
    sigma, prior = 0.1, GaussianPrior(gamma=2.0)
    _, y = _problem(operator, sigma)
    x_gd, energies = map_gradient_descent(y, operator, sigma, prior, steps=3000)
    result = map_admm(y, operator, sigma, prior, rho=50.0, iterations=400)
    assert energies[-1] <= energies[0]
    assert (x_gd - result.x).abs().max() < 1e-6
    assert (result.x - result.v).abs().max() < 1e-6  # x = v at the solution
    if isinstance(operator, Blur):  # and both are Tikhonov with α = γσ²
        assert (x_gd - tikhonov_deconvolve(y, operator, prior.gamma * sigma ** 2)).abs().max() \
            < 1e-6
    x_gd.requires_grad_(True)
    (grad,) = torch.autograd.grad(map_energy(x_gd, y, operator, sigma, prior), x_gd)
    assert grad.abs().max() < 1e-3


def test_admm_residuals_decrease_on_a_toy():
    operator = Blur(gaussian_kernel(3, 0.7), SHAPE)
    _, y = _problem(operator)
    smoother = _smoother()
    result = pnp_admm(y, operator, 0.1, lambda t, s: smoother(t), rho=20.0, iterations=200)
    assert len(result.primal) == len(result.dual) == 200
    assert result.primal[-1] < 1e-3 * result.primal[0]
    assert result.dual[-1] < 1e-3 * result.dual[1]


@pytest.mark.parametrize("operator", _operators(), ids=lambda o: type(o).__name__)
def test_red_fixed_point_satisfies_its_stationarity_condition(operator):
    sigma, lam = 0.1, 40.0
    _, y = _problem(operator, sigma)
    denoise = _smoother()
    result = red_fixed_point(y, operator, sigma, denoise, lam, iterations=300)
    x = result.x
    stationarity = operator.adjoint(operator(x) - y) / sigma ** 2 + lam * (x - denoise(x))
    assert stationarity.abs().max() < 1e-8 and result.stationarity[-1] < 1e-10
    # a symmetric linear denoiser: RED's gradient formula x − D(x) is the true gradient
    assert red_gradient_mismatch(denoise, x) < 1e-10


def test_jacobian_symmetry_is_zero_for_symmetric_and_positive_for_asymmetric_denoisers():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(8, 8, generator=g, dtype=torch.float64)
    symmetric = Blur(gaussian_kernel(3, 1.0), (8, 8))  # symmetric kernel: A = Aᵀ
    kernel = torch.zeros(3, 3, dtype=torch.float64)
    kernel[1, 1], kernel[1, 2] = 0.6, 0.4  # a shift: Aᵀ ≠ A
    asymmetric = Blur(kernel, (8, 8))
    assert jacobian_symmetry(symmetric, x) < 1e-12
    assert jacobian_symmetry_probes(symmetric, x, 8, g) < 1e-12
    exact = jacobian_symmetry(asymmetric, x)
    assert exact > 0.3
    assert jacobian_symmetry_probes(asymmetric, x, 400, g) == pytest.approx(exact, rel=0.2)


def test_v_step_is_map_denoising_at_noise_level_sqrt_beta_over_lambda():
    """The notes' v-step argmin_v λ/2‖ṽ − v‖² + β s(v) is MAP denoising of ṽ with noise
    σ² = β/λ (here β = 1): the prior's prox equals the MAP denoiser at σ = 1/sqrt(λ)."""
    prior, rho = GaussianPrior(gamma=3.0), 25.0
    target = torch.rand(SHAPE, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    denoised, _ = map_gradient_descent(target, Denoising(), rho ** -0.5, prior, steps=2000)
    assert (prior.prox(target, rho) - denoised).abs().max() < 1e-8
