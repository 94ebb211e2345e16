"""Deep generative priors (notes 8.16): the latent search, its prior term's sign, restarts, and
the Lasso baselines (deepnotes.restoration.generative_prior)."""

import math

import numpy as np
import pytest
import torch
from scipy.fft import dctn, idctn

from deepnotes.autoencoders import VAE
from deepnotes.generative.dcgan import DCGANGenerator
from deepnotes.generative.inversion import invert
from deepnotes.restoration.degradations import Denoising, GaussianMeasurements, Inpainting
from deepnotes.restoration.generative_prior import (
    UnitRange,
    VAEDecoderImages,
    best_restart,
    choose,
    dct_basis,
    discriminator_term,
    lasso_recover,
    operator_matrix,
    per_pixel_mse,
    prior_objective,
    recover,
    standard_normal_nll,
)


class Linear(torch.nn.Module):
    """G(z) = W z + b as (B, 1, 4, 4) images, float64."""

    def __init__(self, latent: int = 3, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn(16, latent, generator=g,
                                                     dtype=torch.float64))
        self.bias = torch.nn.Parameter(torch.randn(16, generator=g, dtype=torch.float64))
        self.latent = latent

    def forward(self, z):
        return (z @ self.weight.T + self.bias).reshape(len(z), 1, 4, 4)


def _ridge(g: Linear, y: torch.Tensor, lam: float) -> torch.Tensor:
    """argmin_z ‖y − W z − b‖² + λ‖z‖² in closed form, per image."""
    w = g.weight.detach()
    target = y.reshape(len(y), -1) - g.bias.detach()
    gram = w.T @ w + lam * torch.eye(w.shape[1], dtype=w.dtype)
    return torch.linalg.solve(gram, w.T @ target.T).T


def test_identity_operator_and_a_linear_generator_give_the_least_squares_z():
    g = Linear()
    y = torch.randn(5, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    z0 = torch.randn(1, 5, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    fit = recover(g, Denoising(), y, 3, lam=0.0, restarts=1, steps=3000, lr=0.02, z0=z0)
    w, b = g.weight.detach(), g.bias.detach()
    lstsq = torch.linalg.lstsq(w, (y.reshape(5, -1) - b).T).solution.T
    torch.testing.assert_close(fit.z, lstsq, atol=1e-5, rtol=0)
    torch.testing.assert_close(fit.images, g(lstsq).detach(), atol=1e-5, rtol=0)
    assert all(p.requires_grad for p in g.parameters()) and g.training  # restored


def test_the_objective_adds_lambda_norm_squared_so_z_shrinks_as_lambda_grows():
    g = Linear()
    y = torch.randn(4, 1, 4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    objective, residual = prior_objective(z, y, g, Denoising(), 0.7)
    torch.testing.assert_close(residual, (y - g(z)).reshape(4, -1).square().sum(1))
    torch.testing.assert_close(objective, residual + 0.7 * z.square().sum(1))  # + λ‖z‖²
    # λ‖z‖² is −log p_z up to a factor and a constant: subtracting log p_z, not adding it.
    nll = standard_normal_nll(z)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    torch.testing.assert_close(nll, -log_p)
    torch.testing.assert_close(2 * nll - 3 * math.log(2 * math.pi), z.square().sum(1))

    norms = []
    z0 = torch.zeros(1, 4, 3, dtype=torch.float64)
    for lam in (0.0, 1.0, 10.0, 100.0):
        fit = recover(g, Denoising(), y, 3, lam=lam, restarts=1, steps=3000, lr=0.02, z0=z0)
        torch.testing.assert_close(fit.z, _ridge(g, y, lam), atol=1e-5, rtol=0)
        norms.append(fit.z.norm(dim=1))
    for smaller, larger in zip(norms[1:], norms[:-1], strict=True):
        assert torch.all(smaller < larger)  # the minimizer moves toward z = 0 as λ grows


def test_the_notes_sign_adding_log_p_z_rewards_large_latents():
    """With L_z = +log p_z (the notes) the objective falls without bound along any ray once λ
    exceeds the smallest curvature of the data term: it is minimized by improbable z."""
    g = Linear()
    w = g.weight.detach()
    y = g(torch.zeros(1, 3, dtype=torch.float64)).detach()
    lam = 2 * float(torch.linalg.eigvalsh(w.T @ w).max())
    direction = torch.randn(1, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    values = []
    for scale in (1.0, 10.0, 100.0):
        z = scale * direction
        residual = (y - g(z)).reshape(1, -1).square().sum(1)
        notes = residual + lam * (-standard_normal_nll(z))  # λ · log p_z(z)
        values.append(float(notes.detach()))
    assert values[0] > values[1] > values[2]
    corrected = [float(prior_objective(s * direction, y, g, Denoising(), lam)[0].detach())
                 for s in (1.0, 10.0, 100.0)]
    assert corrected[0] < corrected[1] < corrected[2]


def test_the_discriminator_term_is_the_notes_l_gan_and_falls_as_d_calls_g_z_real():
    logit = torch.linspace(-8, 8, 17, dtype=torch.float64).reshape(17, 1)
    d = torch.sigmoid(logit)
    notes = (torch.log(1 - d) - torch.log(d)).reshape(-1)  # L_gan as printed
    torch.testing.assert_close(discriminator_term(logit), notes)
    assert torch.all(discriminator_term(logit).diff() < 0)  # smaller when D(G(z)) -> 1

    g = Linear()
    y = g(torch.zeros(2, 3, dtype=torch.float64)).detach()
    z = torch.ones(2, 3, dtype=torch.float64)
    disc = (lambda x: x.reshape(len(x), -1).sum(1, keepdim=True))
    with_d, residual = prior_objective(z, y, g, Denoising(), 0.5, disc, lam_gan=0.25)
    expected = residual + 0.5 * z.square().sum(1) + 0.25 * discriminator_term(disc(g(z)))
    torch.testing.assert_close(with_d, expected)


def test_restarts_keep_the_lowest_measurement_residual_not_the_lowest_objective():
    g = Linear()
    z_true = torch.full((1, 3), 3.0, dtype=torch.float64)
    y = g(z_true).detach()
    # Restart 0 is z = 0 (residual > 0, objective small); restart 1 the truth (residual 0,
    # but λ‖z‖² = 27 λ makes its objective the larger).
    z0 = torch.stack([torch.zeros(1, 3, dtype=torch.float64), z_true])
    fit = recover(g, Denoising(), y, 3, lam=100.0, restarts=2, steps=0, z0=z0)
    objectives = [float(prior_objective(z0[r], y, g, Denoising(), 100.0)[0].detach())
                  for r in range(2)]
    assert objectives[1] > objectives[0]
    assert fit.restart.tolist() == [1] and float(fit.residual) == pytest.approx(0.0, abs=1e-20)
    torch.testing.assert_close(fit.z, z_true)

    y = torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    fit = recover(g, Denoising(), y, 3, lam=0.1, restarts=4, steps=20,
                  rng=torch.Generator().manual_seed(7))
    torch.testing.assert_close(fit.residual, fit.residuals.min(0).values)
    assert torch.equal(fit.restart, best_restart(fit.residuals))


def test_per_image_lambda_runs_a_grid_in_one_batch_like_separate_runs():
    g = Linear()
    y = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    z0 = torch.randn(1, 2, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    lams = torch.tensor([0.5, 5.0], dtype=torch.float64)
    together = recover(g, Denoising(), y, 3, lam=lams, steps=50, lr=0.05, z0=z0)
    for i, lam in enumerate(lams.tolist()):
        alone = recover(g, Denoising(), y[i:i + 1], 3, lam=lam, steps=50, lr=0.05,
                        z0=z0[:, i:i + 1])
        torch.testing.assert_close(together.z[i:i + 1], alone.z)


def test_identity_operator_without_prior_is_the_8_7_2_inversion():
    """Same convention as generative.inversion.invert: minimize the squared error over z
    (sum over pixels here, mean there; Adam does not see the scale)."""
    torch.manual_seed(0)
    g = DCGANGenerator(8, 4).eval()
    with torch.no_grad():
        x = g(torch.randn(3, 8))
    z0 = torch.randn(3, 8)
    z_inv, _ = invert(g, x, z0, steps=40, lr=0.05)
    fit = recover(g, Denoising(), x, 8, lam=0.0, restarts=1, steps=40, lr=0.05, z0=z0[None])
    torch.testing.assert_close(fit.z, z_inv, atol=2e-3, rtol=0)


def test_generator_adapters_give_unit_range_images():
    g = UnitRange(DCGANGenerator(8, 4).eval())
    images = g(torch.randn(5, 8))
    assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1

    vae = VAE(hidden=16, latent=4)
    images = VAEDecoderImages(vae)(torch.randn(3, 4))
    assert images.shape == (3, 1, 28, 28) and g.latent == 8
    z = torch.randn(3, 4)
    torch.testing.assert_close(VAEDecoderImages(vae)(z).reshape(3, -1),
                               torch.sigmoid(vae.decode(z)))


def test_dct_basis_is_orthonormal_and_is_scipys_inverse_dct():
    psi = dct_basis((6, 5))
    np.testing.assert_allclose(psi.T @ psi, np.eye(30), atol=1e-12)
    c = np.random.default_rng(0).standard_normal((6, 5))
    np.testing.assert_allclose(psi @ c.ravel(), idctn(c, norm="ortho").ravel(), atol=1e-12)
    x = np.random.default_rng(1).standard_normal((6, 5))
    np.testing.assert_allclose(psi.T @ x.ravel(), dctn(x, norm="ortho").ravel(), atol=1e-12)


def test_operator_matrix_is_the_dense_form_of_the_operator():
    op = GaussianMeasurements(7, (4, 5), torch.Generator().manual_seed(0))
    np.testing.assert_allclose(operator_matrix(op, (4, 5)), op.matrix.numpy(), atol=1e-15)
    mask = Inpainting.box((4, 5), 1, 1, 2, 2)
    np.testing.assert_allclose(operator_matrix(mask, (4, 5)),
                               np.diag(mask.mask.numpy().ravel()), atol=0)


def test_lasso_in_the_dct_basis_recovers_an_exactly_sparse_dct_signal():
    rng = np.random.default_rng(0)
    shape, k, m = (28, 28), 8, 120
    c = np.zeros(784)
    c[rng.choice(784, k, replace=False)] = rng.choice([-1.0, 1.0], k) * rng.uniform(1, 2, k)
    x = idctn(c.reshape(shape), norm="ortho")
    op = GaussianMeasurements(m, shape, torch.Generator().manual_seed(1))
    y = op(torch.from_numpy(x)[None]).numpy()  # (1, m), noiseless
    matrix = op.matrix.numpy()
    dct = lasso_recover(matrix, y, [1e-4], basis=dct_basis(shape), max_iter=5000,
                        tol=1e-8)[1e-4]
    relative = np.linalg.norm(dct[0] - x.ravel()) / np.linalg.norm(x)
    assert relative < 0.02
    pixel = lasso_recover(matrix, y, [1e-4], max_iter=5000, tol=1e-8)[1e-4]
    assert np.linalg.norm(pixel[0] - x.ravel()) / np.linalg.norm(x) > 0.3  # wrong basis


def test_lasso_path_returns_every_alpha_and_choose_takes_the_lowest_error():
    rng = np.random.default_rng(2)
    matrix, y = rng.standard_normal((20, 30)), rng.standard_normal((3, 20))
    path = lasso_recover(matrix, y, [1e-3, 1e-1, 1e-2], max_iter=200)
    assert sorted(path) == [1e-3, 1e-2, 1e-1] and path[1e-3].shape == (3, 30)
    assert np.abs(path[1e-1]).sum() < np.abs(path[1e-3]).sum()  # more shrinkage
    assert choose([1.0, 2.0, 3.0], [0.5, 0.1, 0.1]) == 2.0
    with pytest.raises(ValueError):
        choose([1.0], [])
    np.testing.assert_allclose(per_pixel_mse(np.ones((2, 1, 2, 2)), np.zeros((2, 4))), [1, 1])
