"""GAN theory on known densities (notes Cor. 8.6.1-8.6.2), the losses against their direct
formulas, the alternating step, and the notes' suspect sentences of 8.6-8.7.1 decided."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from deepnotes.conv import conv_transpose2d
from deepnotes.data.toy import make_ring, ring_centers
from deepnotes.generative.gan import (
    GAN,
    LEAST_SQUARES,
    MINIMAX,
    NON_SATURATING,
    adam_optimizers,
    discriminator_bce,
    gan_loss,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    minimax_generator_loss,
    mlp_discriminator,
    mlp_generator,
    non_saturating_generator_loss,
    optimal_discriminator,
    optimal_discriminator_logit,
    train_step,
    value_by_quadrature,
)
from deepnotes.generative.mode_coverage import mode_coverage
from deepnotes.info import js_divergence

GRID = torch.linspace(-12.0, 12.0, 24001, dtype=torch.float64)
DX = float(GRID[1] - GRID[0])


def _normal(mu: float, sigma: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((GRID - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def _normalized(p: torch.Tensor) -> torch.Tensor:
    return p / (p.sum() * DX)  # exact Riemann normalization: the JSD below sees the same sums


PAIRS = {
    "shifted": (_normal(0.0, 1.0), _normal(1.5, 0.7)),
    "mixture": (0.5 * _normal(-2.0, 0.5) + 0.5 * _normal(2.0, 0.5), _normal(0.0, 2.0)),
    "far": (_normal(-3.0, 0.3), _normal(3.0, 0.3)),
}


@pytest.mark.parametrize("pair", list(PAIRS))
def test_d_star_is_p_data_over_p_data_plus_p_g_by_brute_force_maximization(pair):
    p_data, p_g = PAIRS[pair]
    x = torch.arange(0, GRID.numel(), 600)  # a few grid points, each a 1-D problem
    a, b = p_data[x, None], p_g[x, None]
    y = torch.linspace(1e-6, 1 - 1e-6, 200001, dtype=torch.float64)[None, :]
    best = y[0, (torch.xlogy(a, y) + torch.xlogy(b, 1 - y)).argmax(dim=1)]
    assert torch.allclose(best, optimal_discriminator(p_data, p_g)[x], atol=1e-5)


@pytest.mark.parametrize("pair", list(PAIRS))
def test_value_at_d_star_is_two_jsd_minus_log4_by_quadrature(pair):
    p_data, p_g = (_normalized(p) for p in PAIRS[pair])
    logit_star = optimal_discriminator_logit(p_data, p_g)
    assert torch.allclose(torch.sigmoid(logit_star), optimal_discriminator(p_data, p_g),
                          atol=1e-12)
    v_star = value_by_quadrature(logit_star, p_data, p_g, DX)
    jsd = js_divergence(p_g * DX, p_data * DX, base=math.e)
    assert abs(v_star.item() - (2 * jsd.item() - math.log(4))) < 1e-10
    # and D* is the maximum: any other D scores lower
    for shift in (-0.3, 0.05, 0.3):
        assert value_by_quadrature(logit_star.clamp(-50, 50) + shift, p_data, p_g, DX) < v_star


def test_the_integrand_is_maximized_not_minimized():
    """8.6, Cor. 8.6.1's proof: "minimizing the integral ... minimize a log y + b log(1 - y)".
    The function is strictly concave on (0, 1): a/(a+b) is its maximum, and it has no minimum
    (it tends to -inf at both ends)."""
    a, b = 0.3, 0.7
    y = torch.tensor([a / (a + b)], dtype=torch.float64, requires_grad=True)
    f = a * torch.log(y) + b * torch.log(1 - y)
    (grad,) = torch.autograd.grad(f, y, create_graph=True)
    (second,) = torch.autograd.grad(grad, y)
    assert abs(grad.item()) < 1e-12 and second.item() < 0  # a stationary maximum
    ends = torch.tensor([1e-12, 1 - 1e-12], dtype=torch.float64)
    assert (a * torch.log(ends) + b * torch.log(1 - ends) < f.item() - 5).all()


def test_at_the_optimum_d_is_one_half_not_one():
    """8.6: "if the generator does a perfect job, then D(G(z)) ~ 1". With p_g = p_data,
    D* = 1/2 everywhere and V = -log 4; D = 1 on the fakes would give V = -inf."""
    p = _normalized(PAIRS["mixture"][0])
    d_star = optimal_discriminator(p, p)
    assert torch.equal(d_star, torch.full_like(p, 0.5))
    logit = optimal_discriminator_logit(p, p)
    assert abs(value_by_quadrature(logit, p, p, DX).item() + math.log(4)) < 1e-12
    certain = torch.full_like(p, math.inf)  # D = 1 everywhere, the fakes included
    assert value_by_quadrature(certain, p, p, DX).item() == -math.inf


def test_losses_match_direct_formulas_float64():
    g = torch.Generator().manual_seed(0)
    real, fake = (3 * torch.randn(64, 1, generator=g, dtype=torch.float64) for _ in range(2))
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    v = torch.log(d_real).mean() + torch.log(1 - d_fake).mean()
    assert torch.allclose(discriminator_bce(real, fake), -v, atol=1e-12)
    torch_bce = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                 + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    assert torch.allclose(discriminator_bce(real, fake), torch_bce, atol=1e-12)
    assert torch.allclose(minimax_generator_loss(fake), torch.log(1 - d_fake).mean(), atol=1e-12)
    assert torch.allclose(non_saturating_generator_loss(fake), -torch.log(d_fake).mean(),
                          atol=1e-12)
    assert torch.allclose(least_squares_discriminator_loss(real, fake),
                          ((real - 1) ** 2).mean() + (fake ** 2).mean(), atol=1e-12)
    assert torch.allclose(least_squares_generator_loss(fake), ((fake - 1) ** 2).mean(),
                          atol=1e-12)
    assert MINIMAX.discriminator is NON_SATURATING.discriminator is discriminator_bce
    assert gan_loss("least-squares") is LEAST_SQUARES
    with pytest.raises(ValueError, match="unknown GAN loss"):
        gan_loss("wasserstein")


def test_losses_stay_finite_where_the_sigmoid_saturates():
    logits = torch.tensor([[-200.0], [200.0]], requires_grad=True)
    for loss in (discriminator_bce(logits, logits), minimax_generator_loss(logits),
                 non_saturating_generator_loss(logits)):
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_discriminator_minimizes_bce_which_is_minus_v():
    """8.6: "The discriminator maximizes the binary cross entropy loss", with the BCE written
    as sum y log D + (1 - y) log(1 - D). That sum is the log-likelihood, minus the BCE: D
    maximizes it, i.e. *minimizes* the BCE. A descent step on the BCE raises V."""
    y = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    logit = torch.tensor([0.2, -0.1, 0.3, -0.4], dtype=torch.float64, requires_grad=True)
    notes_bce = (y * torch.log(torch.sigmoid(logit))
                 + (1 - y) * torch.log(1 - torch.sigmoid(logit))).sum()
    torch_bce = F.binary_cross_entropy_with_logits(logit, y, reduction="sum")
    assert torch.allclose(notes_bce, -torch_bce, atol=1e-12)
    loss = discriminator_bce(logit[:2], logit[2:])
    (grad,) = torch.autograd.grad(loss, logit)
    stepped = (logit - 0.1 * grad).detach()
    assert discriminator_bce(stepped[:2], stepped[2:]) < loss  # descent lowers the BCE ...
    v = -loss.item()
    assert -discriminator_bce(stepped[:2], stepped[2:]).item() > v  # ... and raises V


@pytest.mark.parametrize("d_fake", [1e-1, 1e-2, 1e-3, 1e-6])
def test_minimax_gradient_vanishes_as_d_of_fake_goes_to_zero_non_saturating_does_not(d_fake):
    """dL/dl = -D for the minimax loss and -(1 - D) for the non-saturating one: the ratio of
    their magnitudes is (1 - D)/D, which grows without bound as D(G(z)) -> 0 (notes 8.7.1)."""
    logit = torch.logit(torch.tensor([d_fake], dtype=torch.float64)).requires_grad_(True)
    (g_mm,) = torch.autograd.grad(minimax_generator_loss(logit), logit)
    (g_ns,) = torch.autograd.grad(non_saturating_generator_loss(logit), logit)
    assert abs(g_mm.item() + d_fake) < 1e-12 and abs(g_ns.item() + (1 - d_fake)) < 1e-12
    assert abs(g_ns.item() / g_mm.item() - (1 - d_fake) / d_fake) < 1e-6 / d_fake


def test_softmax_after_a_single_logit_is_constant_sigmoid_is_the_two_class_softmax():
    """8.7.1: "the last layer in D is usually a linear one, followed by a softmax". Over D's
    one output a softmax is identically 1 and passes no gradient; the probability is
    sigmoid(l), which is the softmax over the two logits (l, 0)."""
    logit = torch.linspace(-5, 5, 11, dtype=torch.float64).reshape(-1, 1).requires_grad_(True)
    soft = torch.softmax(logit, dim=1)
    (grad,) = torch.autograd.grad(soft.sum(), logit)
    assert torch.equal(soft, torch.ones_like(soft)) and torch.equal(grad, torch.zeros_like(grad))
    two = torch.softmax(torch.cat([logit, torch.zeros_like(logit)], dim=1), dim=1)[:, :1]
    assert torch.allclose(two, torch.sigmoid(logit), atol=1e-15)


def _coverage(kernel_size: int, stride: int, size: int = 8) -> torch.Tensor:
    """How many kernel copies paint each output pixel (ones in, ones kernel), interior only."""
    out = conv_transpose2d(torch.ones(1, 1, size, size, dtype=torch.float64),
                           torch.ones(1, 1, kernel_size, kernel_size, dtype=torch.float64),
                           stride=stride)[0, 0]
    return out[kernel_size:-kernel_size, kernel_size:-kernel_size]


def test_stride_two_alone_does_not_stop_uneven_overlap_the_checkerboard():
    """8.6: stride 2 is used "as to not give more weight to specific pixels that overlap".
    That holds for the notes' 2x2 kernel (stride = kernel size, no overlap) and for kernels
    divisible by the stride (4x4: every pixel painted 4 times). A 3x3 kernel at stride 2
    paints pixels 1, 2 or 4 times in a checkerboard (Odena et al. 2016); at stride 1 it paints
    every interior pixel 9 times."""
    notes = conv_transpose2d(torch.tensor([[[[0.0, 1], [2, 3]]]]),
                             torch.tensor([[[[0.0, 1], [2, 3]]]]), stride=2)[0, 0]
    assert notes.tolist() == [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]]
    ratio = {(k, s): (c.max() / c.min()).item() for k, s in ((2, 2), (4, 2), (3, 2), (3, 1))
             for c in [_coverage(k, s)]}
    assert ratio == {(2, 2): 1.0, (4, 2): 1.0, (3, 2): 4.0, (3, 1): 1.0}
    assert sorted(set(_coverage(3, 2).flatten().tolist())) == [1.0, 2.0, 4.0]


def test_mlp_networks_have_the_expected_shapes_and_parameter_counts():
    g, d = mlp_generator(3, 2, hidden=(8,)), mlp_discriminator(2, hidden=(8,))
    assert sum(p.numel() for p in g.parameters()) == 3 * 8 + 8 + 8 * 2 + 2
    assert sum(p.numel() for p in d.parameters()) == 2 * 8 + 8 + 8 + 1
    assert d(g(torch.zeros(5, 3))).shape == (5, 1)


def _tiny_gan(loss=NON_SATURATING) -> GAN:
    torch.manual_seed(0)
    return GAN(mlp_generator(2, 2, (16,)), mlp_discriminator(2, (16,)), latent_dim=2, loss=loss)


def test_train_step_is_d_steps_then_g_steps_written_out():
    g = torch.Generator().manual_seed(1)
    real = [torch.randn(8, 2, generator=g) for _ in range(2)]
    z_d = [torch.randn(8, 2, generator=g) for _ in range(2)]
    z_g = [torch.randn(8, 2, generator=g)]
    gan = _tiny_gan()
    opt_d, opt_g = adam_optimizers(gan, lr=1e-2)
    metrics = train_step(gan, opt_d, opt_g, real, z_d, z_g)
    ref = _tiny_gan()
    ref_d, ref_g = adam_optimizers(ref, lr=1e-2)
    for x, z in zip(real, z_d, strict=True):
        d_loss = (F.binary_cross_entropy_with_logits(ref.discriminator(x), torch.ones(8, 1))
                  + F.binary_cross_entropy_with_logits(
                      ref.discriminator(ref.generator(z).detach()), torch.zeros(8, 1)))
        ref_d.zero_grad()
        d_loss.backward()
        ref_d.step()
    fake_logit = ref.discriminator(ref.generator(z_g[0]))
    g_loss = F.binary_cross_entropy_with_logits(fake_logit, torch.ones(8, 1))
    ref_g.zero_grad()
    g_loss.backward()
    ref_g.step()
    assert metrics.d_loss == pytest.approx(d_loss.item(), abs=1e-6)
    assert metrics.g_loss == pytest.approx(g_loss.item(), abs=1e-6)
    for a, b in zip(gan.parameters(), ref.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    # the max-min order plays G against the D it had before this round: other numbers
    first = _tiny_gan()
    opt_d, opt_g = adam_optimizers(first, lr=1e-2)
    other = train_step(first, opt_d, opt_g, real, z_d, z_g, generator_first=True)
    assert other.g_loss != pytest.approx(metrics.g_loss, abs=1e-6)
    with pytest.raises(ValueError, match="one real and one noise batch per D step"):
        train_step(gan, opt_d, opt_g, real, z_d[:1], z_g)


def test_sample_uses_eval_mode_and_restores_training_mode():
    bn = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    gan = GAN(bn, mlp_discriminator(2, (4,)), latent_dim=2)
    z = torch.randn(1, 2)  # one sample: BatchNorm in training mode would refuse it
    assert gan.sample(z).shape == (1, 2) and bn.training


def test_mode_coverage_counts_modes_and_high_quality_samples():
    g = torch.Generator().manual_seed(0)
    centers = ring_centers(8, 2.0)
    x, _ = make_ring(4000, std=0.02, generator=g)
    full = mode_coverage(x, centers, std=0.02)
    assert full.modes_covered == 8 and full.high_quality > 0.98 and full.counts.sum() > 3900
    one = centers[3] + 0.02 * torch.randn(1000, 2, generator=g)
    collapsed = mode_coverage(one, centers, std=0.02)
    assert collapsed.modes_covered == 1 and collapsed.counts[3] == collapsed.counts.sum()
    off = mode_coverage(torch.zeros(100, 2), centers, std=0.02)  # the ring's empty middle
    assert off.modes_covered == 0 and off.high_quality == 0.0
    with pytest.raises(ValueError, match="share d"):
        mode_coverage(torch.zeros(3, 3), centers, std=0.02)
