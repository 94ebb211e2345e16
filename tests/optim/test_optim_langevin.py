"""Langevin sampling (notes 9.1): the temperature constant, the Gibbs density, SGD noise."""

from __future__ import annotations

import math

import pytest
import torch

from deepnotes.optim import (
    SGD,
    Langevin,
    double_well,
    double_well_grad,
    fit_gibbs_temperature,
    gibbs_density,
    langevin_temperature,
    sgd_temperature,
)


def _bin_tv(samples, temperature, tilt, bins=60, low=-2.2, high=2.2):
    """Total variation between the histogram of samples and exp(-E/T) integrated per bin."""
    hist = torch.histc(samples.double(), bins=bins, min=low, max=high) / samples.numel()
    fine = torch.linspace(-4.0, 4.0, 80_001, dtype=torch.float64)
    p = gibbs_density(double_well(fine, tilt), temperature, 8.0 / 80_000) * (8.0 / 80_000)
    edges = torch.linspace(low, high, bins + 1, dtype=torch.float64)
    which = torch.bucketize(fine, edges) - 1
    probs = torch.zeros(bins, dtype=torch.float64).index_add_(
        0, which.clamp(0, bins - 1), torch.where((which >= 0) & (which < bins), p, 0.0))
    outside = 1.0 - probs.sum()
    return 0.5 * ((hist - probs).abs().sum() + outside).item()


def test_temperature_formulas():
    assert langevin_temperature(0.01, math.sqrt(2 * 0.01 * 0.4)) == pytest.approx(0.4)
    assert sgd_temperature(0.1, 4.0, 8) == pytest.approx(0.1 * 4.0 / 16)
    with pytest.raises(ValueError):
        langevin_temperature(0.0, 1.0)
    with pytest.raises(ValueError):
        sgd_temperature(0.1, 1.0, 0)


def test_gibbs_density_normalizes_and_matches_gaussian():
    x = torch.linspace(-10, 10, 20_001, dtype=torch.float64)
    p = gibbs_density(0.5 * x**2 / 1.0, temperature=2.0, dx=1e-3)  # N(0, T) for E = x^2/2
    assert (p.sum() * 1e-3).item() == pytest.approx(1.0, rel=1e-9)
    gauss = torch.exp(-x**2 / 4.0) / math.sqrt(4.0 * math.pi)
    torch.testing.assert_close(p, gauss, rtol=1e-6, atol=1e-9)


def test_noisy_gradient_descent_samples_exp_minus_e_over_t():
    """Erratum 9.1: noise std s per step of size lr gives T = s^2/(2 lr), not s^2/lr.

    20k chains start uniform on [-2, 2] and cross the barrier of a tilted double well; their
    histogram matches exp(-E/T) with T = s^2/(2 lr) (TV < 0.05) and not the reading
    T = s^2/lr (TV > 0.1)."""
    torch.manual_seed(0)
    lr, noise_std, tilt = 0.01, math.sqrt(2 * 0.01 * 0.4), 0.3
    x = (torch.rand(20_000) * 4 - 2).requires_grad_()
    opt = Langevin([x], lr=lr, temperature=langevin_temperature(lr, noise_std))
    for _ in range(3000):
        x.grad = double_well_grad(x.detach(), tilt)
        opt.step()
    samples = x.detach()
    assert _bin_tv(samples, noise_std**2 / (2 * lr), tilt) < 0.05
    assert _bin_tv(samples, noise_std**2 / lr, tilt) > 0.1
    fitted = fit_gibbs_temperature(samples, lambda z: double_well(z, tilt), -4.0, 4.0)
    assert fitted == pytest.approx(0.4, rel=0.05)


def test_langevin_zero_temperature_is_gradient_descent_and_generator_is_used():
    a = torch.ones(3, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    for opt, p in ((Langevin([a], lr=0.1, temperature=0.0), a),
                   (torch.optim.SGD([b], lr=0.1), b)):
        p.grad = torch.full((3,), 2.0)
        opt.step()
    assert torch.equal(a, b)
    draws = []
    for _ in range(2):
        c = torch.zeros(5, requires_grad=True)
        c.grad = torch.zeros(5)
        Langevin([c], lr=0.5, temperature=1.0,
                 generator=torch.Generator().manual_seed(3)).step()
        draws.append(c.detach().clone())
    assert torch.equal(draws[0], draws[1]) and draws[0].abs().sum() > 0


def test_minibatch_sgd_stationary_variance_is_lr_sigma2_over_2b():
    """x <- x - lr (x - mean of B data points): Var(x) = T / (1 - lr/2), T = lr sigma^2 / (2B)."""
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(1000, generator=gen, dtype=torch.float64)
    data = (data - data.mean()) / data.std(correction=0)  # sigma^2 = 1 exactly
    for lr, batch in ((0.1, 4), (0.05, 16)):
        chains = torch.zeros(10_000, dtype=torch.float64, requires_grad=True)
        opt = SGD([chains], lr=lr)
        for _ in range(int(8 / lr)):  # > 15 relaxation times
            idx = torch.randint(0, 1000, (10_000, batch), generator=gen)  # with replacement
            batch_mean = data.index_select(0, idx.reshape(-1)).reshape(idx.shape).mean(1)
            chains.grad = chains.detach() - batch_mean
            opt.step()
        predicted = sgd_temperature(lr, 1.0, batch) / (1 - lr / 2)
        # relative standard error of a variance from 10k chains: sqrt(2/1e4) = 1.4%
        assert chains.detach().var().item() == pytest.approx(predicted, rel=0.07)


def test_fit_gibbs_temperature_recovers_gaussian_variance():
    gen = torch.Generator().manual_seed(1)
    samples = 0.7 * torch.randn(50_000, generator=gen, dtype=torch.float64)
    fitted = fit_gibbs_temperature(samples, lambda z: 0.5 * z**2, -8.0, 8.0)
    assert fitted == pytest.approx(0.49, rel=0.02)
    with pytest.raises(ValueError):
        fit_gibbs_temperature(samples.reshape(2, -1), lambda z: z, -1.0, 1.0)
