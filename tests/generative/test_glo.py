"""GLO codes and optimizer, IMLE's exact nearest-neighbour search and its FLOP count, the
Gaussian fit (notes 8.12, 8.13)."""

import numpy as np
import pytest
import torch

from deepnotes.generative.dcgan import DCGANGenerator
from deepnotes.generative.glo import (
    GLANNSampler,
    GLOSampler,
    LatentCodes,
    LatentMapper,
    PerceptualLoss,
    fit_gaussian,
    forward_flops,
    glo_loss,
    glo_optimizer,
    imle_flops,
    imle_loss,
    imle_search_flops,
    imle_select,
    nearest_neighbours,
    nn_search_flops,
    pca_codes,
    project_codes,
)


def _brute_force(q: torch.Tensor, c: torch.Tensor):
    d2 = (q[:, None, :] - c[None, :, :]).square().sum(-1)
    return d2.argmin(1), d2.min(1).values


# --- codes ---------------------------------------------------------------------------------
def test_codes_are_projected_after_reset_and_after_steps():
    g = torch.Generator().manual_seed(0)
    codes = LatentCodes(50, 8).reset_(3 * torch.randn(50, 8, generator=g))
    assert torch.allclose(codes.weight.norm(dim=1), torch.ones(50), atol=1e-6)
    gen = DCGANGenerator(8, 4)
    opt = glo_optimizer(gen, codes, 1e-3, 0.5)
    index = torch.tensor([3, 7, 11])
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    before = codes.weight.detach().clone()
    loss, _, _ = glo_loss(gen, codes(index), x)
    opt.zero_grad()
    loss.backward()
    opt.step()
    moved = codes.weight.detach()[index]
    assert not torch.allclose(moved, before[index])  # lr 0.5: they leave the sphere...
    codes.project_(index)
    assert torch.allclose(codes.weight.norm(dim=1), torch.ones(50), atol=1e-6)  # ...and return


def test_ball_projection_only_shrinks_long_codes():
    z = torch.tensor([[0.3, 0.4], [3.0, 4.0]])
    out = project_codes(z, "ball", 1.0)
    assert torch.allclose(out[0], z[0]) and torch.allclose(out[1], torch.tensor([0.6, 0.8]))
    assert torch.allclose(project_codes(z, "sphere", 2.0).norm(dim=1), torch.tensor([2.0, 2.0]))
    with pytest.raises(ValueError):
        project_codes(z, "cube")


def test_codes_have_their_own_learning_rate_in_their_own_param_group():
    gen, codes = DCGANGenerator(8, 4), LatentCodes(10, 8)
    opt = glo_optimizer(gen, codes, lr_generator=1e-3, lr_codes=3e-2)
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["generator"]["lr"] == 1e-3 and groups["codes"]["lr"] == 3e-2
    assert groups["codes"]["params"] == [codes.weight]
    assert {id(p) for p in groups["generator"]["params"]} == {id(p) for p in gen.parameters()}


def test_pca_codes_are_the_principal_coordinates():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 6, generator=g) * torch.tensor([5.0, 3.0, 2.0, 1.0, 0.5, 0.1])
    z = pca_codes(x, 2).double()
    centred = x.double() - x.double().mean(0)
    _, s, _ = torch.linalg.svd(centred, full_matrices=False)
    assert torch.allclose(z.norm(dim=0), s[:2], rtol=1e-5)  # captured variances, in order
    assert abs(float(z[:, 0] @ z[:, 1])) < 1e-3 * float(s[0] * s[1])  # uncorrelated


def test_perceptual_term_uses_the_cnn_features_and_reaches_the_generator():
    from deepnotes.conv import FashionCNN

    cnn = FashionCNN((4, 8)).eval()
    loss_fn = PerceptualLoss(cnn)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert float(loss_fn(x, x)) == 0.0
    gen = DCGANGenerator(8, 4)
    total, l2, perc = glo_loss(gen, torch.randn(4, 8), x, loss_fn, weight=2.0)
    assert torch.isclose(total, l2 + 2 * perc) and float(perc.detach()) > 0
    total.backward()
    assert gen.project.weight.grad is not None
    assert all(p.grad is None for p in loss_fn.parameters())  # the CNN stays frozen


# --- nearest neighbours --------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1000])
def test_nearest_neighbours_is_exact_against_brute_force(chunk):
    g = torch.Generator().manual_seed(2)
    q = torch.randn(37, 5, dtype=torch.float64, generator=g)
    c = torch.randn(64, 5, dtype=torch.float64, generator=g)
    index, d2 = nearest_neighbours(q, c, chunk)
    ref_index, ref_d2 = _brute_force(q, c)
    assert torch.equal(index, ref_index)
    assert torch.allclose(d2, ref_d2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 100])
def test_nearest_neighbours_breaks_ties_by_lowest_index_for_every_chunk(chunk):
    # Integer coordinates: every distance is exact in float32, so ties are exact ties.
    g = torch.Generator().manual_seed(3)
    c = torch.randint(-2, 3, (12, 3), generator=g).float()
    c = torch.cat([c, c])  # each candidate twice: index i and i + 12 always tie
    q = torch.randint(-2, 3, (40, 3), generator=g).float()
    index, d2 = nearest_neighbours(q, c, chunk)
    d2_all = (q[:, None] - c[None]).square().sum(-1)
    first = torch.stack([torch.nonzero(row == row.min())[0, 0] for row in d2_all])
    assert torch.equal(index, first) and bool((index < 12).all())
    assert torch.equal(d2, d2_all.min(1).values)
    # Equidistant candidates: (1, 0) and (-1, 0) from the origin, (0, 1) later.
    index, d2 = nearest_neighbours(torch.zeros(1, 2), torch.tensor(
        [[2.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]), chunk)
    assert index.tolist() == [1] and d2.tolist() == [1.0]


def test_nearest_neighbours_rejects_bad_shapes():
    with pytest.raises(ValueError):
        nearest_neighbours(torch.zeros(2, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError):
        nearest_neighbours(torch.zeros(2, 3), torch.zeros(4, 3), chunk=0)


# --- FLOPs ---------------------------------------------------------------------------------
def test_search_flops_equal_a_hand_count():
    # n = 2 queries, m = 3 candidates, d = 4:
    #   q.c products: 6 pairs x 4 multiplies + 6 x 4 adds          = 48
    #   squared norms: (2 + 3) vectors x (4 multiplies + 4 adds)   = 40
    #   ||q||^2 + ||c||^2 - 2 q.c: 6 pairs x 3 (scale, add, add)   = 18
    #   comparisons for the minimum: 3 per query                   =  6
    assert nn_search_flops(2, 3, 4) == 48 + 40 + 18 + 6 == 112
    assert imle_search_flops(4, 2, 3, steps=10) == 1120
    assert imle_flops(4, 2, 3, steps=10, sample_flops=5) == 1120 + 10 * 3 * 5
    # Linear in d: the 64-d latent search against the 784-d pixel search.
    ratio = nn_search_flops(256, 2560, 64) / nn_search_flops(256, 2560, 784)
    assert 64 / 784 < ratio < 1 / 8


def test_search_flops_matmul_term_matches_torchs_counter_for_any_chunk():
    q, c = torch.randn(16, 10), torch.randn(50, 10)
    for chunk in (7, 50, 4096):
        assert forward_flops(nearest_neighbours, q, c, chunk) == 2 * 16 * 50 * 10


# --- the Gaussian fit, samplers, IMLE --------------------------------------------------------
def test_gaussian_fit_has_the_codes_mean_and_covariance():
    g = torch.Generator().manual_seed(4)
    a = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.5, 0.0], [0.1, -0.3, 0.2]])
    codes = torch.randn(500, 3, generator=g) @ a.T + torch.tensor([1.0, -2.0, 0.5])
    mean, tril = fit_gaussian(codes, jitter=0.0)
    np.testing.assert_allclose(mean.numpy(), codes.double().mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose((tril @ tril.T).numpy(), np.cov(codes.double().numpy().T),
                               rtol=1e-10, atol=1e-12)
    assert torch.equal(tril, torch.tril(tril))  # a Cholesky factor, full (not diagonal)
    assert abs(float(tril[1, 0])) > 0.1


def test_glo_sampler_draws_from_the_fitted_gaussian_then_projects():
    sampler = GLOSampler(latent=3, width=4)
    mean, tril = torch.tensor([2.0, 0.0, 0.0]), torch.diag(torch.tensor([0.1, 0.1, 0.1]))
    sampler.set_gaussian(mean, tril)
    z = sampler.latents(torch.randn(1000, 3, generator=torch.Generator().manual_seed(5)))
    assert torch.allclose(z.norm(dim=1), torch.ones(1000), atol=1e-6)
    assert float(z[:, 0].mean()) > 0.99  # around the mean's direction
    assert sampler(torch.randn(2, 3)).shape == (2, 1, 28, 28)
    assert GLANNSampler(3, 4, noise_dim=5, hidden=(8,))(torch.randn(2, 5)).shape == (
        2, 1, 28, 28)


def test_imle_pairs_each_target_with_its_nearest_candidate_and_the_step_pulls_it_closer():
    torch.manual_seed(6)
    mapper = LatentMapper(noise_dim=4, hidden=(16,), latent=3)
    targets = project_codes(torch.randn(8, 3))
    noise, d2 = imle_select(mapper, targets, 64, torch.Generator().manual_seed(7), chunk=10)
    with torch.no_grad():
        chosen = mapper(noise)
    assert torch.allclose((chosen - targets).square().sum(1), d2, atol=1e-5)
    candidates = mapper(torch.randn(64, 4, generator=torch.Generator().manual_seed(7)))
    _, ref = _brute_force(targets, candidates.detach())
    assert torch.allclose(d2, ref, atol=1e-5)
    opt = torch.optim.SGD(mapper.parameters(), lr=0.05)
    before = float(imle_loss(mapper, noise, targets).detach())
    for _ in range(20):
        opt.zero_grad()
        imle_loss(mapper, noise, targets).backward()
        opt.step()
    assert float(imle_loss(mapper, noise, targets).detach()) < before
