"""Keskar sharpness and the test landscapes."""

from __future__ import annotations

import math

import pytest
import torch

from deepnotes.optim import (
    SGD,
    Quadratic,
    double_well,
    double_well_grad,
    keskar_sharpness,
    rosenbrock,
    rosenbrock_grad,
)


def test_sharpness_of_quadratic_reaches_the_box_corner():
    """f = 1/2 sum h_i x_i^2 at x = 0: the maximum over |delta_i| <= eps is the corner,
    1/2 eps^2 sum h_i, so sharpness = 100 * that / (1 + 0)."""
    h = torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    eps = 1e-2
    result = keskar_sharpness(lambda: 0.5 * (h * x**2).sum(), [x], eps=eps, steps=10,
                              generator=torch.Generator().manual_seed(0))
    assert result.loss == 0.0
    assert result.max_loss == pytest.approx(0.5 * eps**2 * h.sum().item(), rel=1e-12)
    assert result.sharpness == pytest.approx(100 * result.max_loss, rel=1e-12)
    assert torch.equal(x, torch.zeros(3, dtype=torch.float64))  # restored


def test_sharpness_box_scales_with_parameter_size_and_never_exceeds_brute_force():
    """Nonconvex 2-D loss: the ascent stays in C_eps = {|d_i| <= eps(|x_i|+1)}, so it can
    never beat a brute-force grid over that box, and it gets within 1% of it."""
    x = torch.tensor([0.3, -2.0], dtype=torch.float64, requires_grad=True)

    def f(z):  # z: (..., 2)
        return torch.sin(3 * z[..., 0]) * torch.cos(2 * z[..., 1]) + 0.1 * z[..., 1] ** 2 + 1.0

    eps = 0.05
    result = keskar_sharpness(lambda: f(x), [x], eps=eps, steps=40)
    w = eps * (x.detach().abs() + 1)
    a, b = torch.meshgrid(*[torch.linspace(-1, 1, 401, dtype=torch.float64) * wi for wi in w],
                          indexing="ij")
    best = f(x.detach() + torch.stack([a, b], -1)).max().item()  # brute force over the box
    assert result.max_loss <= best + 1e-12
    assert result.max_loss >= result.loss
    assert (result.max_loss - result.loss) >= 0.99 * (best - result.loss)


def test_sharper_minimum_has_larger_sharpness_and_inputs_are_checked():
    x = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    flat = keskar_sharpness(lambda: (x**2).sum(), [x], eps=1e-3).sharpness
    sharp = keskar_sharpness(lambda: 100 * (x**2).sum(), [x], eps=1e-3).sharpness
    assert sharp == pytest.approx(100 * flat, rel=1e-9)
    with pytest.raises(ValueError):
        keskar_sharpness(lambda: (x**2).sum(), [x], eps=0.0)
    with pytest.raises(ValueError):
        keskar_sharpness(lambda: (x**2).sum(), [x.detach()], eps=1e-3)


def test_landscapes_gradients_and_minima():
    z = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    value = rosenbrock(z)
    (grad,) = torch.autograd.grad(value, z)
    assert value.item() == 0.0 and torch.equal(grad, torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError):
        rosenbrock(torch.zeros(3))
    points = torch.randn(7, 2, dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(rosenbrock(points).sum(), points)
    torch.testing.assert_close(rosenbrock_grad(points.detach()), auto)
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(double_well(x, 0.3).sum(), x)
    torch.testing.assert_close(double_well_grad(x.detach(), 0.3), auto)


def test_quadratic_condition_number_and_heavy_ball_rate():
    """Polyak's tuning turns kappa = 100 into ~sqrt(kappa) convergence: after 200 steps the
    heavy-ball error |x| is below 1e-6 of the start, plain GD's (lr = 1/L) still above 1e-2."""
    q = Quadratic(20, 100.0, generator=torch.Generator().manual_seed(0))
    eig = torch.linalg.eigvalsh(q.A)
    assert (eig.max() / eig.min()).item() == pytest.approx(100.0, rel=1e-9)
    lr, momentum = q.heavy_ball_parameters()
    start = torch.ones(20, dtype=torch.float64)
    results = {}
    for name, opt_args in (("gd", dict(lr=1 / q.L)), ("hb", dict(lr=lr, momentum=momentum))):
        x = start.clone().requires_grad_()
        opt = SGD([x], **opt_args)
        for _ in range(200):
            x.grad = q.A @ x.detach()
            opt.step()
        results[name] = (x.detach().norm() / start.norm()).item()
    assert results["hb"] < 1e-6 < 1e-2 < results["gd"]
    assert math.isfinite(results["gd"])


def test_constant_loss_has_zero_sharpness_unlike_the_notes_ratio():
    """Erratum 9.2: Keskar subtracts f(x). The notes' max L(x+y)/(1+L(x)) would call a perfectly
    flat loss of 3 'sharp' (3/4 = 0.75); the metric here gives exactly 0."""
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    result = keskar_sharpness(lambda: 3.0 + 0.0 * x.sum(), [x], eps=1e-3, steps=3)
    assert result.sharpness == 0.0
    assert result.max_loss / (1 + result.loss) == pytest.approx(0.75)
