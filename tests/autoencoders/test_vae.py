"""The VAE pieces of notes 7.2: the closed-form KL (against Monte Carlo and
torch.distributions), its sign in the loss, the prior inside the KL, which weights set mu and
sigma, sigma versus sigma^2, and the importance-weighted bound (against an exact likelihood)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from deepnotes.autoencoders import (
    VAE,
    dynamic_binarize,
    elbo_bound,
    gaussian_kl,
    gaussian_log_density,
    grey_neg_elbo,
    iwae_bound,
    kl_weight,
    log_importance_weights,
    reparameterize,
)
from deepnotes.metrics.likelihood import active_units, iwae_from_log_weights


def _posterior(n=64, latent=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, latent, generator=g) * 1.5, torch.randn(n, latent, generator=g)


def test_gaussian_kl_equals_torch_distributions_and_is_one_value_per_sample():
    mu, log_var = _posterior()
    kl = gaussian_kl(mu, log_var)
    ref = kl_divergence(Normal(mu, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(-1)
    assert kl.shape == (64,)
    torch.testing.assert_close(kl, ref, rtol=1e-5, atol=1e-5)
    assert (kl >= 0).all() and gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max() == 0


def test_gaussian_kl_matches_monte_carlo():
    mu, log_var = _posterior(n=4, latent=3, seed=1)
    mu, log_var = mu.double(), log_var.double()
    g = torch.Generator().manual_seed(2)
    z = reparameterize(mu.expand(200_000, 4, 3), log_var.expand(200_000, 4, 3), g)
    log_ratio = gaussian_log_density(z, mu, log_var) + 0.5 * (math.log(2 * math.pi)
                                                              + z.square()).sum(-1)
    estimate, se = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(200_000)
    assert ((estimate - gaussian_kl(mu, log_var)).abs() <= 5 * se).all()


def test_kl_must_be_added_not_subtracted():
    """7.2.1: the notes' L_i adds sum_j 1/2(1 + log sigma_j^2 - sigma_j^2 - mu_j^2), which is
    -KL (their own -D_KL line is right). Added, it is <= 0 and unbounded below: the loss is
    lowered by pushing mu away from 0 and sigma to 0 or infinity, away from the prior."""
    mu, log_var = _posterior()
    notes_term = (0.5 * (1 + log_var - log_var.exp() - mu.square())).sum(-1)
    torch.testing.assert_close(notes_term, -gaussian_kl(mu, log_var))
    assert (notes_term <= 0).all()
    for t in (1.0, 10.0, 100.0):  # unbounded below in mu and in log sigma^2
        big = torch.full((1, 1), t)
        assert float(0.5 * (1 + 0 - 1 - big.square()).sum()) == pytest.approx(-t * t / 2)
    m = torch.tensor([0.5], requires_grad=True)
    for sign, moves_away in ((+1, False), (-1, True)):  # +KL (correct) vs the notes' -KL
        (sign * gaussian_kl(m[None], torch.zeros(1, 1))).sum().backward()
        step = -0.1 * m.grad
        assert (abs(float((m + step).detach())) > 0.5) == moves_away
        m.grad = None


def test_the_kl_is_against_the_prior_not_the_likelihood():
    """7.2.1 writes D_KL(q(z|x_i) || p(x_i|z)). The KL in the ELBO is against the prior p(z)
    = N(0, I): p(x_i|z), as a function of z, is not a density in z (it does not integrate to
    1), so that 'KL' is no divergence; the closed form the notes then derive is the prior's."""
    torch.manual_seed(0)
    vae = VAE(input_dim=20, hidden=8, latent=1)
    x = (torch.arange(20.0) % 2)[None]
    z = torch.linspace(-12, 12, 20001)[:, None]
    with torch.no_grad():
        lik = torch.exp(-torch.nn.functional.binary_cross_entropy_with_logits(
            vae.decode(z), x.expand(len(z), 20), reduction="none").sum(-1))
    integral = float(torch.trapezoid(lik, z[:, 0]))
    assert integral < 0.01  # about 24 x 2^-20: nowhere near 1
    mu, log_var = _posterior(n=8, latent=1)
    ref = kl_divergence(Normal(mu, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, log_var), ref, rtol=1e-5, atol=1e-5)


def test_the_encoder_sets_mu_and_sigma_and_reparameterization_lets_gradients_reach_it():
    """7.2.1 says mu and sigma are functions of theta_D and the sampled points go forward
    through theta_E: swapped. mu, sigma come from the encoder (theta_E); without
    reparameterization no gradient of the reconstruction reaches theta_E; with it, it does."""
    torch.manual_seed(0)
    vae = VAE(input_dim=12, hidden=6, latent=2)
    x = torch.rand(5, 12)
    mu, log_var = vae.encode(x)
    dec = list(vae.decoder.parameters())
    assert all(g is None for g in torch.autograd.grad(mu.sum() + log_var.sum(), dec,
                                                      allow_unused=True))
    enc = list(vae.encoder.parameters())
    sampled = torch.normal(mu, (0.5 * log_var).exp()).detach()  # sampling blocks the path
    rec = torch.nn.functional.binary_cross_entropy_with_logits(vae.decode(sampled), x)
    assert all(g is None for g in torch.autograd.grad(rec, enc, allow_unused=True))
    z = reparameterize(mu, log_var, torch.Generator().manual_seed(1))
    rec = torch.nn.functional.binary_cross_entropy_with_logits(vae.decode(z), x)
    grads = torch.autograd.grad(rec, enc)
    assert all(g.abs().sum() > 0 for g in grads)


def test_sigma_multiplies_eps_and_sigma_squared_is_the_variance():
    """Fig. 7.1 writes N(mu_1, sigma_1) and the derivation uses 'sigma = E((x - mu)^2)': it is
    sigma^2 = E((z - mu)^2). z = mu + sigma * eps has standard deviation sigma and variance
    sigma^2, and E_q[(z - mu_q)^2] / (2 sigma_q^2) = 1/2 holds with sigma^2 only."""
    mu, log_var = torch.tensor([[0.5]]), torch.tensor([[math.log(4.0)]])  # sigma 2, sigma^2 4
    z = reparameterize(mu.expand(400_000, 1, 1), log_var.expand(400_000, 1, 1),
                       torch.Generator().manual_seed(3))
    second_moment = float((z - mu).square().mean())
    assert second_moment == pytest.approx(4.0, rel=0.01) and float(z.std()) == pytest.approx(
        2.0, rel=0.01)
    assert second_moment / (2 * 4.0) == pytest.approx(0.5, rel=0.01)  # the 1/2 of the notes
    assert abs(second_moment / (2 * 2.0) - 0.5) > 0.4  # with sigma in place of sigma^2: 1


def test_iwae_is_a_lower_bound_that_rises_with_k_towards_the_exact_likelihood():
    """A 1-D latent makes log p(x) computable by quadrature: ELBO <= IWAE_1 ~ <= IWAE_10 <=
    IWAE_1000 <= log p(x), and IWAE_1000 is close to it."""
    torch.manual_seed(0)
    vae = VAE(input_dim=6, hidden=16, latent=1).double()
    x = dynamic_binarize(torch.rand(40, 6, dtype=torch.float64), torch.Generator().manual_seed(0))
    z = torch.linspace(-10, 10, 8001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        log_joint = (-torch.nn.functional.binary_cross_entropy_with_logits(
            vae.decode(z)[:, None].expand(-1, 40, 6), x.expand(len(z), 40, 6),
            reduction="none").sum(-1) - 0.5 * (math.log(2 * math.pi) + z.square()))
    exact = torch.logsumexp(log_joint, 0) + math.log(float(z[1] - z[0]))  # (40,)
    bounds = {k: iwae_bound(vae, x, k, torch.Generator().manual_seed(k), images_per_batch=16,
                            samples_per_chunk=64).mean() for k in (1, 10, 1000)}
    elbo = elbo_bound(vae, x, samples=2000, generator=torch.Generator().manual_seed(9)).mean()
    assert float(elbo) <= float(bounds[10]) <= float(bounds[1000]) <= float(exact.mean()) + 1e-3
    one = iwae_bound(vae, x.repeat(500, 1), 1, torch.Generator().manual_seed(4))
    se = float(one.std()) / math.sqrt(len(one))
    assert abs(float(one.mean()) - float(elbo)) < 5 * se + 0.01  # IWAE_1 = ELBO in expectation
    assert float(exact.mean() - bounds[1000]) < 0.05


def test_iwae_chunks_combine_like_one_logsumexp():
    logw = torch.randn(300, 7, dtype=torch.float64) * 30 - 500  # exp() underflows
    direct = torch.log(torch.exp(logw + 500).mean(0)) - 500
    torch.testing.assert_close(iwae_from_log_weights(logw), direct)
    parts = torch.stack([torch.logsumexp(c, 0) for c in logw.split(64)])
    torch.testing.assert_close(torch.logsumexp(parts, 0) - math.log(300), direct)
    torch.manual_seed(0)
    vae = VAE(input_dim=10, hidden=8, latent=3)
    xb = torch.bernoulli(torch.full((4, 10), 0.3))
    assert log_importance_weights(vae, xb, 5).shape == (5, 4)
    with pytest.raises(ValueError, match="k must be"):
        iwae_bound(vae, xb, 0)


def test_active_units_count_the_variance_of_the_means():
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([1.0, 0.5, 0.05, 0.001])
    count, activity = active_units(torch.randn(5000, 4, generator=g) * scales)
    assert count == 2 and activity.shape == (4,)
    torch.testing.assert_close(activity, scales.square(), rtol=0.1, atol=1e-6)


def test_kl_weight_beta_and_linear_annealing():
    assert kl_weight(0) == kl_weight(10**6) == 1.0
    assert kl_weight(5, beta=4.0) == 4.0
    assert [kl_weight(s, beta=2.0, anneal_steps=4) for s in (0, 2, 4, 8)] == [0, 1, 2, 2]


def test_binarization_is_seeded_and_grey_neg_elbo_is_pytorch_examples_objective():
    x = torch.rand(200, 784)
    a = dynamic_binarize(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, dynamic_binarize(x, torch.Generator().manual_seed(1)))
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert abs(float(a.mean() - x.mean())) < 0.01
    torch.manual_seed(0)
    vae = VAE()
    with torch.no_grad():
        logits, mu, log_var = vae(x, torch.Generator().manual_seed(5))
    # pytorch/examples: F.binary_cross_entropy(sigmoid, x, reduction="sum") + KLD, per image.
    kld = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
    ref = (torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum")
           + kld) / len(x)
    got = grey_neg_elbo(vae, x, torch.Generator().manual_seed(5))["neg_elbo"]
    assert got == pytest.approx(float(ref), rel=1e-5)
