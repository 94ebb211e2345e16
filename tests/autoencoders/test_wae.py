"""The WAE's pieces (deepnotes.autoencoders.wae): penalties, adversary, helpers."""

import pytest
import torch
import torch.nn.functional as F

from deepnotes.autoencoders.wae import (
    WAE,
    LatentDiscriminator,
    decode_prior,
    latent_discriminator_loss,
    latent_encoder_penalty,
    mean_pairwise_distance,
    mmd_scales,
    sample_prior,
    squared_error,
    wae_mmd_penalty,
)
from deepnotes.metrics.distances import mmd_unbiased


def test_mmd_scales_are_the_papers_multiples_of_2_d_sigma2():
    assert mmd_scales(8) == pytest.approx((1.6, 3.2, 8.0, 16.0, 32.0, 80.0, 160.0))
    assert mmd_scales(2, prior_std=2.0)[3] == pytest.approx(16.0)


def test_mmd_penalty_separates_matching_from_shifted_codes():
    g = torch.Generator().manual_seed(0)
    prior = sample_prior(500, 8, g)
    matched = wae_mmd_penalty(sample_prior(500, 8, g), prior)
    shifted = wae_mmd_penalty(sample_prior(500, 8, g) + 1.0, prior)
    assert abs(float(matched)) < 0.01 < float(shifted)
    codes = sample_prior(500, 8, g)
    assert float(wae_mmd_penalty(codes, prior)) == pytest.approx(
        float(mmd_unbiased(codes, prior, mmd_scales(8))), rel=1e-6)


def test_penalty_gradient_pulls_codes_towards_the_prior():
    g = torch.Generator().manual_seed(1)
    prior = sample_prior(300, 4, g)
    z = (sample_prior(300, 4, g) + 2.0).requires_grad_()
    wae_mmd_penalty(z, prior).backward()
    assert float(z.grad.mean()) > 0  # descending moves the codes' mean (+2) back towards 0


def test_discriminator_loss_does_not_reach_the_encoder_but_the_penalty_does():
    torch.manual_seed(0)
    model, disc = WAE(input_dim=12, hidden=6, latent=3), LatentDiscriminator(3, 8)
    x = torch.rand(5, 12)
    _, z = model(x)
    latent_discriminator_loss(disc, z, torch.randn(5, 3)).backward()
    assert all(p.grad is None for p in model.parameters())
    assert all(p.grad is not None for p in disc.parameters())
    penalty = latent_encoder_penalty(disc, z)
    assert float(penalty) == pytest.approx(float(-F.logsigmoid(disc(z)).mean()), rel=1e-6)
    penalty.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_squared_error_and_shapes():
    torch.manual_seed(0)
    model = WAE(input_dim=10, hidden=7, latent=2)
    x = torch.rand(4, 10)
    logits, z = model(x)
    assert logits.shape == (4, 10) and z.shape == (4, 2)
    expect = ((torch.sigmoid(logits) - x) ** 2).sum(1)
    assert torch.allclose(squared_error(logits, x), expect)
    images = decode_prior(model, 6, torch.Generator().manual_seed(0))
    assert images.shape == (6, 10) and float(images.min()) >= 0 and float(images.max()) <= 1


def test_mean_pairwise_distance_excludes_the_diagonal():
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    assert mean_pairwise_distance(z) == pytest.approx((5 + 5 + 0) * 2 / 6)
    # Two prior draws in d dims are sqrt(2 d) apart on average (a bit less: Jensen).
    far = mean_pairwise_distance(sample_prior(2000, 8, torch.Generator().manual_seed(0)))
    assert 3.7 < far < 4.0
    with pytest.raises(ValueError, match=">= 2"):
        mean_pairwise_distance(z[:1])


def _notes_test_function_penalty(z, g, w):
    """Notes 7.3's sample penalty sum_k |mean_i Phi_k(E(I_i)) - mean_i Phi_k(g_i)| with
    Phi_k(z) = cos(w_k . z) (normalized by n, which the notes' formula omits)."""
    return (torch.cos(z @ w.T).mean(0) - torch.cos(g @ w.T).mean(0)).abs().sum()


def test_notes_test_function_penalty_is_biased_where_the_unbiased_mmd_is_not():
    # ERRATA 7.3: the sample form is not "equivalent" to the population penalty: |mean
    # difference| is positive on average even when P_E = P_gauss, shrinking like 1/sqrt(n);
    # the WAE's U-statistic MMD has expectation exactly 0 there.
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(16, 4, generator=gen, dtype=torch.float64)

    def mean_over_repeats(n, fn):
        return float(torch.tensor([fn(torch.randn(n, 4, generator=gen, dtype=torch.float64),
                                      torch.randn(n, 4, generator=gen, dtype=torch.float64))
                                   for _ in range(200)]).mean())

    notes_100 = mean_over_repeats(100, lambda a, b: _notes_test_function_penalty(a, b, w))
    notes_400 = mean_over_repeats(400, lambda a, b: _notes_test_function_penalty(a, b, w))
    assert notes_100 > 0.5  # 16 terms of E|N(0, s^2)| = s sqrt(2/pi), s ~ 0.1: about 1
    assert notes_400 == pytest.approx(notes_100 / 2, rel=0.15)  # the 1/sqrt(n) bias
    mmds = torch.tensor([float(mmd_unbiased(torch.randn(100, 4, generator=gen,
                                                        dtype=torch.float64),
                                            torch.randn(100, 4, generator=gen,
                                                        dtype=torch.float64), mmd_scales(4)))
                         for _ in range(200)])
    assert abs(float(mmds.mean())) < 3 * float(mmds.std()) / 200 ** 0.5
