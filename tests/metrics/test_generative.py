"""FID / IS / KID / PSNR / SSIM / bits-per-dim / EMD against references (notes 8.9), and the
PCA-Gaussian baseline."""

import math
from functools import partial

import numpy as np
import pytest
import scipy.stats
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from deepnotes.conv import FashionCNN
from deepnotes.generative.baselines import PCAGaussian
from deepnotes.metrics.distances import (
    frechet_distance,
    imq_kernel,
    mmd_unbiased,
    mmd_unbiased_kernel,
)
from deepnotes.metrics.generative import (
    LAYER,
    CNNFeatures,
    ReferenceStatistics,
    bits_per_dim,
    dequantize,
    emd_1d,
    fid,
    fid_from_images,
    frechet_distance_1d,
    inception_score,
    kid,
    polynomial_kernel,
    psnr,
    ssim,
)


def _cnn(seed: int = 0) -> FashionCNN:
    torch.manual_seed(seed)
    model = FashionCNN((4, 8))  # embed_dim 8 * 7 * 7 = 392
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding does something
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _images(n: int, seed: int, brightness: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 1, 7, 7, generator=g)
    up = torch.nn.functional.interpolate(base, size=28, mode="bilinear")[:, 0]  # smooth
    return (up * 255 * brightness).clamp(0, 255).to(torch.uint8)


# --- FID ---
def test_cnn_features_are_the_embed_of_the_unfolded_network_and_record_the_layer():
    model = _cnn()
    features = CNNFeatures(model, sha256="abc", batch_size=64)
    x = _images(150, 1)
    expected = model.embed(features.prepare(x).contiguous())
    assert features.num_features == 392 and features.layer == f"{LAYER} (392-d)"
    torch.testing.assert_close(features(x), expected, rtol=1e-4, atol=1e-5)
    probs = features.class_probabilities(x)
    torch.testing.assert_close(probs, model(features.prepare(x)).softmax(-1), rtol=1e-4,
                               atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        features(x.float())


def test_fid_from_images_matches_torchmetrics_with_the_cnn_as_feature_extractor():
    from torchmetrics.image.fid import FrechetInceptionDistance

    features = CNNFeatures(_cnn(), sha256="f" * 64)
    real, fake = _images(600, 2), _images(500, 3, brightness=0.8)
    ours = fid_from_images(features, real, fake)
    metric = FrechetInceptionDistance(feature=features)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    reference = float(metric.compute())
    assert ours.fid > 0.1  # the two sets do differ
    assert abs(ours.fid - reference) <= 1e-3 * reference
    assert ours.record() == {"fid": ours.fid, "sha256": "f" * 64, "layer": f"{LAYER} (392-d)",
                             "n_a": 600, "n_b": 500}


def test_fid_is_zero_for_one_set_and_the_closed_form_for_shifted_gaussians():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 5, generator=g, dtype=torch.float64)
    assert abs(fid(x, x)) < 1e-9
    shift = torch.tensor([1.0, -2.0, 0.0, 0.5, 0.0], dtype=torch.float64)
    assert fid(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-9)  # same cov


@pytest.mark.parametrize("n", [50, 300, 800])  # below d, below d, above d (d = 392)
def test_reference_statistics_fid_equals_fid_for_small_and_large_sets(n):
    g = torch.Generator().manual_seed(n)
    ref = torch.randn(1000, 392, generator=g, dtype=torch.float64) * torch.linspace(0.1, 2, 392)
    other = torch.randn(n, 392, generator=g, dtype=torch.float64) + 0.1
    assert ReferenceStatistics(ref).fid(other) == pytest.approx(fid(ref, other), rel=1e-9)


def test_one_dimensional_fid_has_a_plus_sign_not_the_notes_minus_sign():
    """Notes 8.9.2 print ``(mu_r - mu_g)^2 - (sigma_r - sigma_g)^2``; the general formula
    (and the 1-D W2 between Gaussians, the integral of squared quantile differences) give +."""
    mu_r, s_r, mu_g, s_g = 0.3, 1.0, -0.2, 2.5
    general = frechet_distance(np.array([mu_r]), np.array([[s_r ** 2]]),
                               np.array([mu_g]), np.array([[s_g ** 2]]))
    q = np.linspace(0.5 / 20000, 1 - 0.5 / 20000, 20000)  # midpoints: int_0^1 (F^-1 - G^-1)^2
    w2_squared = np.mean((scipy.stats.norm.ppf(q, mu_r, s_r) - scipy.stats.norm.ppf(q, mu_g,
                                                                                  s_g)) ** 2)
    ours = frechet_distance_1d(mu_r, s_r, mu_g, s_g)
    notes = (mu_r - mu_g) ** 2 - (s_r - s_g) ** 2
    assert ours == pytest.approx(general, rel=1e-12) == pytest.approx(w2_squared, rel=2e-3)
    assert notes < 0 < ours  # as printed, a "distance" that is negative


# --- IS ---
def _numpy_inception_score(p: np.ndarray, splits: int) -> tuple[float, float]:
    scores = []
    for k in range(splits):
        part = p[k * (len(p) // splits):(k + 1) * (len(p) // splits)]
        py = np.mean(part, axis=0)
        kl = [np.sum(row * (np.log(row) - np.log(py))) for row in part]
        scores.append(np.exp(np.mean(kl)))
    return float(np.mean(scores)), float(np.std(scores))


def test_inception_score_matches_a_direct_numpy_computation():
    g = torch.Generator().manual_seed(0)
    probs = (torch.randn(1000, 10, generator=g, dtype=torch.float64) * 2).softmax(-1)
    mean, std = inception_score(probs, splits=10)
    ref_mean, ref_std = _numpy_inception_score(probs.numpy(), 10)
    assert mean == pytest.approx(ref_mean, rel=1e-12) and std == pytest.approx(ref_std,
                                                                              rel=1e-9)
    assert 1 < mean < 10 and std > 0


def test_inception_score_uses_the_marginal_over_samples_so_mode_collapse_scores_one():
    """The notes' p(y) is the true class distribution; with it a generator that makes one
    class confidently would score K (the best possible). The marginal of p(y|x) over the
    generated samples gives it 1, and a confident uniform spread gets K."""
    k = 10
    collapsed = np.tile(np.eye(k)[3] * 0.999 + 0.001 / k, (500, 1))
    spread = np.eye(k)[np.arange(500) % k] * 0.999 + 0.001 / k
    assert inception_score(collapsed, splits=5)[0] == pytest.approx(1.0, abs=1e-12)
    assert inception_score(spread, splits=5)[0] == pytest.approx(k, rel=0.01)
    true_py = np.full(k, 1 / k)  # the notes' reading: KL to the true (uniform) labels
    notes_score = math.exp(np.mean(np.sum(collapsed * np.log(collapsed / true_py), 1)))
    assert notes_score > 0.9 * k
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(np.ones((10, 3)), splits=2)


# --- KID ---
def test_kid_matches_torchmetrics_kernel_inception_distance():
    from torchmetrics.image.kid import KernelInceptionDistance

    class Float64Features(torch.nn.Module):  # torchmetrics' kernel sums then run in float64
        def __init__(self, inner):
            super().__init__()
            self.inner, self.num_features = inner, inner.num_features

        def forward(self, x):
            return self.inner(x).double()

    features = CNNFeatures(_cnn(1), sha256="0" * 64)
    real, fake = _images(300, 4), _images(260, 5, brightness=0.7)
    metric = KernelInceptionDistance(feature=Float64Features(features), subsets=4,
                                     subset_size=200)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    torch.manual_seed(7)  # torchmetrics draws its subsets from the global generator
    ref_mean, ref_std = (float(v) for v in metric.compute())
    mean, std = kid(features(real), features(fake), subsets=4, subset_size=200,
                    generator=torch.Generator().manual_seed(7))
    assert mean > 1e-3
    assert abs(mean - ref_mean) <= 1e-9 * ref_mean and abs(std - ref_std) <= 1e-6 * ref_std


def test_the_generic_u_statistic_is_distances_mmd_unbiased_for_the_imq_kernel():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = torch.randn(30, 3, generator=g, dtype=torch.float64) + 0.5
    value = mmd_unbiased_kernel(x, y, partial(imq_kernel, scale=2.0))
    torch.testing.assert_close(value, mmd_unbiased(x, y, 2.0), rtol=1e-12, atol=0)
    k = polynomial_kernel(x, y)
    torch.testing.assert_close(k, (x @ y.T / 3 + 1) ** 3)


# --- PSNR / SSIM / bits per dim ---
def test_psnr_and_ssim_match_skimage_and_need_an_explicit_data_range():
    g = np.random.default_rng(0)
    clean = g.random((3, 28, 28))
    noisy = np.clip(clean + 0.1 * g.standard_normal(clean.shape), 0, 1)
    mse = np.mean((clean - noisy) ** 2, axis=(1, 2))
    assert psnr(clean, noisy, data_range=1.0) == pytest.approx(
        np.mean(10 * np.log10(1 / mse)), rel=1e-12)
    assert psnr(clean[0], noisy[0], data_range=1.0) == pytest.approx(
        peak_signal_noise_ratio(clean[0], noisy[0], data_range=1.0), rel=1e-12)
    assert ssim(clean, noisy, data_range=1.0) == pytest.approx(np.mean(
        [structural_similarity(a, b, data_range=1.0) for a, b in zip(clean, noisy,
                                                                     strict=True)]), rel=1e-12)
    assert ssim(clean, clean, data_range=1.0) == pytest.approx(1.0)
    # The same images as 0..255 values: equal scores only when data_range follows the scale.
    assert psnr(clean * 255, noisy * 255, data_range=255.0) == pytest.approx(
        psnr(clean, noisy, data_range=1.0), rel=1e-12)
    assert psnr(clean * 255, noisy * 255, data_range=1.0) < psnr(clean, noisy, data_range=1.0)
    with pytest.raises(TypeError):
        psnr(clean, noisy)  # data_range is keyword-only and has no default
    with pytest.raises(TypeError):
        ssim(clean, noisy, 1.0)


def test_bits_per_dim_is_8_for_uniform_and_the_discrete_entropy_for_a_binned_density():
    d = 784
    assert float(bits_per_dim(torch.zeros(()), d)) == pytest.approx(8.0, rel=1e-15)
    # A density constant on each 1/256 bin, 256 p_k there, is the categorical p in disguise:
    # its bits/dim on dequantized pixels is the discrete cross-entropy in bits.
    g = torch.Generator().manual_seed(0)
    p = torch.rand(256, generator=g, dtype=torch.float64) + 0.1
    p /= p.sum()
    x = torch.randint(0, 256, (20, d), generator=g, dtype=torch.uint8)
    x_tilde = dequantize(x, generator=g)
    assert 0 <= float(x_tilde.min()) and float(x_tilde.max()) < 1
    assert torch.equal((x_tilde * 256).floor().to(torch.uint8), x)
    log_density = torch.log(256 * p[(x_tilde * 256).floor().long()]).sum(1)  # (20,)
    discrete_bits = -torch.log2(p[x.long()]).sum(1) / d
    torch.testing.assert_close(bits_per_dim(log_density, d), discrete_bits, rtol=1e-12,
                               atol=1e-12)


# --- EMD ---
@pytest.mark.parametrize("n, m", [(1, 1), (7, 7), (50, 13), (400, 1000)])
def test_emd_1d_matches_scipy_wasserstein_distance(n, m):
    g = np.random.default_rng(n * m)
    u, v = g.normal(0, 1, n), g.exponential(2.0, m)
    v[: m // 3] = np.round(v[: m // 3])  # ties
    assert emd_1d(u, v) == pytest.approx(scipy.stats.wasserstein_distance(u, v), rel=1e-12)
    assert emd_1d(torch.from_numpy(u), u) == 0.0


def test_emd_1d_of_a_shift_is_the_shift():
    x = np.random.default_rng(0).normal(size=100)
    assert emd_1d(x, x + 0.7) == pytest.approx(0.7, rel=1e-12)


# --- PCA-Gaussian baseline ---
def test_pca_gaussian_keeps_95_percent_and_reproduces_the_kept_covariance():
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([5.0, 3.0, 1.0, 0.3, 0.1, 0.05], dtype=torch.float64)
    basis = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))[0]
    x = (torch.randn(20000, 6, generator=g, dtype=torch.float64) * scales) @ basis.T + 2.0
    model = PCAGaussian(0.95).fit(x)
    share = (scales ** 2).cumsum(0) / (scales ** 2).sum()  # 0.70, 0.96, ...: k = 2
    assert model.num_components == 2 and model.explained >= 0.95
    assert float(share[0]) < 0.95 <= float(share[1])
    samples = model.sample(20000, torch.Generator().manual_seed(1))
    torch.testing.assert_close(samples.mean(0), x.mean(0), atol=0.1, rtol=0)
    top = basis[:, :2]  # the kept directions: variance 25 and 9 there, none elsewhere
    torch.testing.assert_close((samples @ top).var(0), scales[:2] ** 2, rtol=0.05, atol=0)
    centred = samples - model.mean  # lies in the span of the kept components exactly
    off = centred - centred @ model.components.T @ model.components
    assert float(off.abs().max()) < 1e-9
    z = model.encode(x[:100])
    torch.testing.assert_close(model.encode(model.decode(z)), z)  # decode is encode's inverse
    with pytest.raises(ValueError, match="fit"):
        PCAGaussian().sample(3)
