"""WGAN (notes 8.17): the gradient penalty's per-sample interpolation and norm, clipping,
n_critic, and the exact earth mover's distance against POT and scipy."""

import numpy as np
import ot
import pytest
import scipy.stats
import torch
from torch import nn

from deepnotes.generative import wgan
from deepnotes.generative.gan import GAN, mlp_discriminator, mlp_generator
from deepnotes.metrics.distances import emd_assignment
from deepnotes.metrics.generative import emd_1d


class HalfSquaredNorm(nn.Module):
    """``c(x_i) = 0.5 ||x_i||^2`` per sample: ``grad c(x_i) = x_i``, known in closed form."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.reshape(len(x), -1).pow(2).sum(1)


def _images(seed: int, shape=(6, 2, 3, 4)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def test_interpolation_coefficient_is_one_per_sample():
    real, fake = torch.ones(5, 2, 3, 3), torch.zeros(5, 2, 3, 3)
    x_hat = wgan.interpolate(real, fake, torch.Generator().manual_seed(0))
    eps = torch.rand(5, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    # real = 1, fake = 0: x_hat is eps itself, constant over each sample's C, H, W.
    assert torch.equal(x_hat, eps.expand_as(x_hat))
    per_sample = x_hat.reshape(5, -1)
    assert (per_sample == per_sample[:, :1]).all() and per_sample[:, 0].unique().numel() == 5


def test_gradient_penalty_matches_the_hand_computed_per_sample_penalty():
    real, fake = _images(1)
    critic = HalfSquaredNorm()
    got = wgan.gradient_penalty(critic, real, fake, torch.Generator().manual_seed(7))
    # By hand: eps per sample from the same stream, grad c(x_hat) = x_hat, its norm over C, H, W.
    eps = torch.rand(6, 1, 1, 1, generator=torch.Generator().manual_seed(7))
    x_hat = eps * real + (1 - eps) * fake
    norms = x_hat.reshape(6, -1).norm(dim=1)
    expected = (norms - 1).pow(2).mean()
    torch.testing.assert_close(got, expected)
    # The two published mistakes give other numbers, so the comparison above can fail:
    eps_pixel = torch.rand(real.shape, generator=torch.Generator().manual_seed(7))
    x_pixel = eps_pixel * real + (1 - eps_pixel) * fake  # eps per pixel
    per_pixel = (x_pixel.reshape(6, -1).norm(dim=1) - 1).pow(2).mean()
    wrong_dim = (x_hat.norm(dim=1) - 1).pow(2).mean()  # norm over channels only
    assert abs(float(per_pixel - expected)) > 1e-2 * float(expected)
    assert abs(float(wrong_dim - expected)) > 1e-2 * float(expected)


def test_gradient_norms_are_per_sample_for_a_linear_critic_and_penalty_is_differentiable():
    w = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(3))
    conv = nn.Linear(24, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(w.reshape(1, -1))
    critic = nn.Sequential(nn.Flatten(), conv)
    real, fake = _images(2)
    norms = wgan.gradient_norms(critic, wgan.interpolate(real, fake))
    torch.testing.assert_close(norms, torch.full((6,), float(w.norm())))
    penalty = wgan.gradient_penalty(critic, real, fake)
    penalty.backward()  # create_graph: the penalty reaches the critic's weights
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    expected = 2 * (w.norm() - 1) * w / w.norm()
    torch.testing.assert_close(conv.weight.grad.reshape(w.shape), expected)


def test_clip_weights_uses_c_and_fraction_at_clip_counts_the_bounds():
    torch.manual_seed(0)
    model = mlp_discriminator(2, (16,))
    wgan.clip_weights(model, 0.03)
    def values():
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    before = values()
    assert float(before.abs().max()) == pytest.approx(0.03)
    assert wgan.fraction_at_clip(model, 0.03) > 0.5  # the default init is far beyond 0.03
    wgan.clip_weights(model, 0.5)  # nothing is beyond 0.5 now: clip 0.5 changes nothing
    assert torch.equal(values(), before)
    assert wgan.fraction_at_clip(model, 0.5) == 0.0
    with pytest.raises(ValueError):
        wgan.clip_weights(model, 0.0)


def test_train_step_takes_n_critic_critic_steps_then_one_generator_step():
    torch.manual_seed(0)
    gan = GAN(mlp_generator(4, 2, (8,)), mlp_discriminator(2, (8,)), 4, wgan.WASSERSTEIN)
    opt_c, opt_g = wgan.rmsprop_optimizers(gan, lr=1e-3)
    counts = {"c": 0, "g": 0}
    opt_c.register_step_post_hook(lambda *_: counts.__setitem__("c", counts["c"] + 1))
    opt_g.register_step_post_hook(lambda *_: counts.__setitem__("g", counts["g"] + 1))
    g = torch.Generator().manual_seed(1)
    for n_critic in (5, 2):
        real = [torch.randn(16, 2, generator=g) for _ in range(n_critic)]
        z = [gan.noise(16, g) for _ in range(n_critic)]
        out = wgan.train_step(gan, opt_c, opt_g, real, z, gan.noise(16, g), clip=0.01)
        assert out.critic_steps == n_critic
    assert counts == {"c": 7, "g": 2}
    assert all(float(p.detach().abs().max()) <= 0.01 for p in gan.discriminator.parameters())
    gens = [torch.Generator().manual_seed(k) for k in range(3)]
    out = wgan.train_step(gan, opt_c, opt_g, real[:1] * 3, z[:1] * 3, z[0], gp_weight=10.0,
                          gp_generators=gens)
    assert counts == {"c": 10, "g": 3} and out.penalty >= 0
    with pytest.raises(ValueError):  # no constraint at all
        wgan.train_step(gan, opt_c, opt_g, real, z, z[0])


def test_critic_loss_signs_and_image_critic_has_no_batch_statistics():
    real, fake = torch.tensor([3.0, 5.0]), torch.tensor([1.0, 1.0])
    assert float(wgan.w1_estimate(real, fake)) == 3.0 == -float(wgan.critic_loss(real, fake))
    assert float(wgan.generator_loss(fake)) == -1.0
    critic = wgan.WGANCritic(width=4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in critic.modules())
    x = torch.randn(3, 1, 28, 28)
    # Per-sample scores: a sample's score does not change with its batch mates.
    torch.testing.assert_close(critic(x)[:1], critic(x[:1]))
    assert critic.architecture["kwargs"] == {"width": 4, "norm": "layer"}


def test_emd_assignment_matches_pot_on_small_2d_samples():
    rng = np.random.default_rng(0)
    for n, shift in ((5, 0.0), (40, 1.5), (120, 0.3)):
        x = rng.normal(size=(n, 2))
        y = rng.normal(size=(n, 2)) * 0.5 + shift
        weights = np.full(n, 1.0 / n)
        exact = ot.emd2(weights, weights, ot.dist(x, y, metric="euclidean"))
        assert emd_assignment(x, y) == pytest.approx(exact, rel=1e-10, abs=1e-12)
    x = torch.randn(30, 2, generator=torch.Generator().manual_seed(1))
    assert emd_assignment(x, x[torch.randperm(30)]) == pytest.approx(0.0, abs=1e-12)


def test_emd_assignment_and_emd_1d_match_scipy_in_one_dimension():
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=200), rng.exponential(size=200)
    expected = scipy.stats.wasserstein_distance(u, v)
    assert emd_assignment(u, v) == pytest.approx(expected, rel=1e-10)
    assert emd_1d(u, v) == pytest.approx(expected, rel=1e-10)
