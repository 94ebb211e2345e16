"""Offline metrics of generative models (notes 8.9): FID, IS, KID, PSNR/SSIM, bits/dim, EMD.

* **FID** (Heusel et al. 2017): fit a Gaussian to the features of each image set and take the
  squared Fréchet distance ``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)``
  (:func:`deepnotes.metrics.distances.frechet_distance`, float64, no ``sqrtm``). In one
  dimension it is ``(mu_a - mu_b)^2 + (sigma_a - sigma_b)^2`` (:func:`frechet_distance_1d`;
  the notes print a minus sign, see docs/ERRATA.md). The features are not Inception's: offline
  we use the zoo's Fashion-MNIST CNN (:class:`CNNFeatures`, layer :data:`LAYER`), and every
  image-level result (:class:`FIDResult`) names the artifact's sha256, the layer and both N.
  FID is biased upward at finite N, so only numbers with the same N and network compare.
* **IS** (Salimans et al. 2016): ``exp E_x KL(p(y|x) || p(y))`` with ``p(y) = E_x p(y|x)`` the
  classifier's *marginal over the generated samples* (not the true class distribution, which
  would reward a generator that makes one class confidently), averaged over ``splits``.
* **KID** (Bińkowski et al. 2018): the unbiased squared MMD of the same features with the
  cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, mean and std over random subsets.
  This is the published KID (and torchmetrics'); :func:`deepnotes.metrics.distances.mmd_unbiased`
  is the same U-statistic with the IMQ kernel (chapter 7's WAE), see :func:`mmd_unbiased_kernel`.
* **PSNR / SSIM** through scikit-image with ``data_range`` always given by the caller;
  **bits per dimension** of a density on uniformly dequantized pixels; the **1-D earth
  mover's distance** ``W1 = int |F_u - G_v|``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from deepnotes.data import standardize_images
from deepnotes.metrics.distances import frechet_distance, gaussian_moments, mmd_unbiased_kernel

LAYER = "FashionCNN.embed"  # flattened last feature maps, the input of the linear classifier


def _as_float64(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


# --- FID -------------------------------------------------------------------------------------
def fid(features_a, features_b) -> float:
    """FID between two feature sets ``(N_a, d)`` and ``(N_b, d)`` (any N >= 2; float64)."""
    mu_a, sigma_a = gaussian_moments(features_a)
    mu_b, sigma_b = gaussian_moments(features_b)
    return frechet_distance(mu_a, sigma_a, mu_b, sigma_b)


def frechet_distance_1d(mu_a: float, sigma_a: float, mu_b: float, sigma_b: float) -> float:
    """``(mu_a - mu_b)^2 + (sigma_a - sigma_b)^2``: the 1-D case (``sigma`` = std deviation)."""
    if sigma_a < 0 or sigma_b < 0:
        raise ValueError(f"standard deviations must be >= 0, got {sigma_a} and {sigma_b}")
    return (mu_a - mu_b) ** 2 + (sigma_a - sigma_b) ** 2


class ReferenceStatistics:
    """Moments of one reference feature set, for many FIDs against it (same value as :func:`fid`).

    When a compared set has ``n <= d`` points its covariance is ``S_b = B^T B`` with ``B`` the
    centred features over ``sqrt(n - 1)``, ``(n, d)``; then ``S_a^1/2 S_b S_a^1/2 =
    (B S_a^1/2)^T (B S_a^1/2)`` has the nonzero eigenvalues of ``B S_a B^T`` (``n x n``), so the
    trace term needs an ``n x n`` eigendecomposition instead of two ``d x d`` ones. Larger sets
    go through :func:`frechet_distance`.
    """

    def __init__(self, features) -> None:
        self.mu, self.sigma = gaussian_moments(features)
        self.n = len(features)
        self._mu_t, self._sigma_t = torch.from_numpy(self.mu), torch.from_numpy(self.sigma)

    def fid(self, features) -> float:
        f = torch.from_numpy(_as_float64(features))
        n, d = f.shape if f.ndim == 2 else (0, 0)
        if f.ndim != 2 or d != len(self.mu) or n < 2:
            raise ValueError(f"expected (N >= 2, {len(self.mu)}) features, got {tuple(f.shape)}")
        if n > d:
            return frechet_distance(self.mu, self.sigma, *gaussian_moments(f))
        mu_b = f.mean(0)
        b = (f - mu_b) / math.sqrt(n - 1)  # (n, d)
        gram = b @ self._sigma_t @ b.T  # (n, n), eigenvalues of S_a^1/2 S_b S_a^1/2
        eig = torch.linalg.eigvalsh((gram + gram.T) / 2)
        floor = n * torch.finfo(torch.float64).eps * max(float(eig.max()), 0.0)
        tr_sqrt = float(torch.where(eig > floor, eig, 0.0).sqrt().sum())
        diff = self._mu_t - mu_b
        return float(diff @ diff + self._sigma_t.trace() + b.square().sum() - 2.0 * tr_sqrt)


@dataclass(frozen=True)
class FIDResult:
    """An FID and what it was computed with (numbers compare only at equal network and N)."""

    fid: float
    sha256: str  # of the feature network's weights (the zoo artifact)
    layer: str
    n_a: int
    n_b: int

    def record(self) -> dict:
        return {"fid": self.fid, "sha256": self.sha256, "layer": self.layer, "n_a": self.n_a,
                "n_b": self.n_b}


class CNNFeatures(nn.Module):
    """uint8 images ``(N, 28, 28)`` -> the CNN's penultimate features ``(N, d)`` (float32).

    Wraps a trained :class:`deepnotes.conv.FashionCNN` (BatchNorm folded, channels-last, eval:
    the same function as the network, faster). ``num_features`` lets torchmetrics' FID/KID use
    it as a custom feature extractor. ``prepare`` maps uint8 images to network input (default:
    Fashion-MNIST standardization, as :func:`deepnotes.zoo.fashion_cnn.prepare`).

    Args:
        model: the CNN; must have ``embed`` and ``embed_dim``.
        sha256: its artifact's weight hash, recorded with every FID.
        batch_size: images per forward pass.
    """

    def __init__(self, model: nn.Module, sha256: str,
                 prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 batch_size: int = 1000) -> None:
        super().__init__()
        self.net = model.folded().to(memory_format=torch.channels_last).eval()
        self.sha256, self.batch_size = sha256, batch_size
        self.num_features = int(model.embed_dim)
        self.prepare = prepare or (lambda x: standardize_images(x, channels_last=True))
        self.layer = f"{LAYER} ({self.num_features}-d)"

    def _batched(self, images: torch.Tensor, fn) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 3:
            raise ValueError(f"expected uint8 images (N, H, W), got {images.dtype} "
                             f"{tuple(images.shape)}")
        with torch.inference_mode():
            return torch.cat([fn(self.net, self.prepare(images[i:i + self.batch_size]))
                              for i in range(0, len(images), self.batch_size)])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self._batched(images, lambda net, x: net.embed(x))  # (N, d)

    def class_probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax of the classifier, ``(N, classes)``: the ``p(y|x)`` of the Inception Score."""
        return self._batched(images, lambda net, x: net(x).softmax(-1))


def fid_from_images(features: CNNFeatures, images_a: torch.Tensor, images_b: torch.Tensor
                    ) -> FIDResult:
    """FID of two uint8 image sets on ``features``' penultimate layer, with its record."""
    value = fid(features(images_a), features(images_b))
    return FIDResult(value, features.sha256, features.layer, len(images_a), len(images_b))


# --- IS --------------------------------------------------------------------------------------
def inception_score(probs, splits: int = 10) -> tuple[float, float]:
    """Inception Score of class probabilities ``(N, K)``: mean and std over ``splits`` parts.

    Per part: ``exp(mean_i KL(p(y|x_i) || p(y)))`` with ``p(y) = mean_i p(y|x_i)`` of that
    part. Ranges from 1 (every sample classified alike) to K (confident and all classes equal).
    """
    p = _as_float64(probs)
    if p.ndim != 2 or p.shape[1] < 2 or (p < 0).any():
        raise ValueError(f"expected class probabilities (N, K >= 2), got shape {p.shape}")
    if not np.allclose(p.sum(1), 1.0, atol=1e-4):
        raise ValueError("each row of probs must sum to 1 (pass softmax outputs, not logits)")
    if not 1 <= splits <= len(p):
        raise ValueError(f"splits must be in [1, N={len(p)}], got {splits}")
    scores = []
    for part in np.array_split(p, splits):
        p_y = part.mean(0, keepdims=True)  # (1, K) marginal over these samples
        kl = np.where(part > 0, part * (np.log(np.where(part > 0, part, 1.0)) - np.log(p_y)),
                      0.0).sum(1)  # (n,), 0 log 0 = 0
        scores.append(math.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


# --- KID -------------------------------------------------------------------------------------
def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, degree: int = 3,
                      gamma: float | None = None, coef: float = 1.0) -> torch.Tensor:
    """``(gamma x.y + coef)^degree``, ``(n, m)``; ``gamma`` defaults to ``1 / d``."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * x @ y.T + coef) ** degree


def kid(features_a, features_b, subsets: int = 100, subset_size: int = 1000,
        generator: torch.Generator | None = None) -> tuple[float, float]:
    """KID: unbiased polynomial-kernel MMD^2 over ``subsets`` random subsets (float64).

    Each subset draws ``subset_size`` points of each side without replacement
    (``randperm`` of side a, then of side b, as torchmetrics does). Returns (mean, std) with
    the population std.
    """
    a = torch.from_numpy(_as_float64(features_a))
    b = torch.from_numpy(_as_float64(features_b))
    if not 2 <= subset_size <= min(len(a), len(b)):
        raise ValueError(f"subset_size must be in [2, {min(len(a), len(b))}], got {subset_size}")
    values = []
    for _ in range(subsets):
        ia = torch.randperm(len(a), generator=generator)[:subset_size]
        ib = torch.randperm(len(b), generator=generator)[:subset_size]
        values.append(float(mmd_unbiased_kernel(a[ia], b[ib], polynomial_kernel)))
    return float(np.mean(values)), float(np.std(values))


# --- Reconstruction and likelihood ----------------------------------------------------------
def _image_pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_float64(a), _as_float64(b)
    if a.shape != b.shape or a.ndim not in (2, 3):
        raise ValueError(f"expected two images (H, W) or batches (N, H, W) of one shape, got "
                         f"{a.shape} and {b.shape}")
    return (a[None], b[None]) if a.ndim == 2 else (a, b)


def psnr(reference, test, *, data_range: float) -> float:
    """Peak signal-to-noise ratio ``10 log10(R^2 / MSE)`` in dB (mean over a batch).
    ``data_range`` R (e.g. 1.0 or 255) is required: guessing it from the dtype is how tools
    disagree."""
    a, b = _image_pair(reference, test)
    return float(np.mean([peak_signal_noise_ratio(x, y, data_range=data_range)
                          for x, y in zip(a, b, strict=True)]))


def ssim(reference, test, *, data_range: float) -> float:
    """Structural similarity (Wang et al. 2004; scikit-image's defaults: 7x7 uniform window,
    sample covariances), mean over a batch. ``data_range`` is required."""
    a, b = _image_pair(reference, test)
    return float(np.mean([structural_similarity(x, y, data_range=data_range)
                          for x, y in zip(a, b, strict=True)]))


def dequantize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 pixels ``x`` -> ``(x + u) / 256``, ``u ~ U[0, 1)``: continuous values in [0, 1)."""
    if images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 pixels, got {images.dtype}")
    return (images.double() + torch.rand(images.shape, generator=generator,
                                         dtype=torch.float64)) / 256


def bits_per_dim(log_density: torch.Tensor, num_dims: int) -> torch.Tensor:
    """``(-log p(x~) + D log 256) / (D ln 2)`` per example, for ``log p(x~)`` (nats) the log
    density of dequantized pixels ``x~ = (x + u)/256`` in ``[0, 1)^D``. The ``D log 256`` is the
    log-Jacobian of scaling back to the 0..256 grid where the discrete pixels live; a density
    uniform on [0, 1)^D scores exactly 8 bits."""
    if num_dims < 1:
        raise ValueError(f"num_dims must be >= 1, got {num_dims}")
    return (-log_density + num_dims * math.log(256)) / (num_dims * math.log(2))


# --- 1-D earth mover's distance -------------------------------------------------------------
def emd_1d(u_values: Sequence[float] | np.ndarray | torch.Tensor,
           v_values: Sequence[float] | np.ndarray | torch.Tensor) -> float:
    """W1 between the empirical distributions of two 1-D samples: ``int |F_u(t) - F_v(t)| dt``.

    Both CDFs are step functions that only change at the pooled sample points, so the integral
    is a sum over the gaps between consecutive pooled points.
    """
    u, v = np.sort(_as_float64(u_values).ravel()), np.sort(_as_float64(v_values).ravel())
    if len(u) == 0 or len(v) == 0 or not (np.isfinite(u).all() and np.isfinite(v).all()):
        raise ValueError("emd_1d needs two non-empty samples of finite values")
    points = np.sort(np.concatenate([u, v]))
    gaps = np.diff(points)  # (n + m - 1,)
    cdf_u = np.searchsorted(u, points[:-1], side="right") / len(u)
    cdf_v = np.searchsorted(v, points[:-1], side="right") / len(v)
    return float(np.sum(np.abs(cdf_u - cdf_v) * gaps))
