"""Classical restoration baselines for notes 8.14-8.15: Wiener and Tikhonov deconvolution in
closed form, TV denoising and non-local means (scikit-image). Torch in, torch out.

Deconvolution uses the circular :class:`~deepnotes.restoration.degradations.Blur`, whose
operator is diagonal in Fourier space, so each estimate is one filter ``F⁻¹(H · F y)``:

* Wiener with a constant noise-to-signal ratio ``nsr``:
  ``H = conj(K̂) / (|K̂|² + nsr)``, the MAP estimate under a white Gaussian prior
  (``nsr = σ² / σ_x²``), i.e. Tikhonov with the identity as regularizer;
* Tikhonov with the gradient regularizer: ``argmin_x ‖y − k * x‖² + α ‖∇x‖²`` with circular
  forward differences, ``H = conj(K̂) / (|K̂|² + α |D̂|²)``, the MAP estimate under the
  Gaussian smoothness prior ``p(x) ∝ exp(−α ‖∇x‖² / (2σ²))``.

Images are ``(..., H, W)`` tensors, values in [0, 1].
"""

from __future__ import annotations

import math

import numpy as np
import torch

from deepnotes.restoration.degradations import Blur


def fourier(shape: tuple[int, int]) -> Blur:
    """The identity as a :class:`Blur` (kernel ``[[1]]``): its :meth:`Blur.filter` applies any
    Fourier-diagonal operator to ``shape`` images, also where no blur is involved."""
    return Blur(torch.ones(1, 1, dtype=torch.float64), shape)


def gradient_transfer(shape: tuple[int, int]) -> torch.Tensor:
    """``|D̂|²`` on the ``rfft2`` grid of ``shape``: the transfer function of ``DᵀD`` (minus
    the circular 5-point Laplacian) for the forward differences ``D = (∂_h, ∂_w)``."""
    height, width = shape
    wh = 2 * math.pi * torch.fft.fftfreq(height, dtype=torch.float64)
    ww = 2 * math.pi * torch.fft.rfftfreq(width, dtype=torch.float64)
    return (2 - 2 * torch.cos(wh))[:, None] + (2 - 2 * torch.cos(ww))[None, :]


def circular_gradient(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences with circular boundaries, ``(∂_h x, ∂_w x)`` (the ``D`` above)."""
    return torch.roll(x, -1, dims=-2) - x, torch.roll(x, -1, dims=-1) - x


def wiener_deconvolve(y: torch.Tensor, blur: Blur, nsr: float) -> torch.Tensor:
    """Wiener deconvolution ``F⁻¹(conj(K̂) Ŷ / (|K̂|² + nsr))``; ``nsr = 0`` is the inverse
    filter (exact for an invertible blur without noise)."""
    if nsr < 0:
        raise ValueError(f"the noise-to-signal ratio must be >= 0, got {nsr}")
    k = blur.transfer
    power = k.abs() ** 2
    if nsr == 0 and bool((power == 0).any()):
        raise ValueError("the blur's transfer function has zeros: the inverse filter (nsr=0) "
                         "does not exist; pass nsr > 0")
    return blur.filter(y, k.conj() / (power + nsr))


def tikhonov_deconvolve(y: torch.Tensor, blur: Blur, alpha: float) -> torch.Tensor:
    """``argmin_x ‖y − k * x‖² + α ‖∇x‖²`` (circular), solved in the FFT domain."""
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    k = blur.transfer
    return blur.filter(y, k.conj() / (k.abs() ** 2 + alpha * gradient_transfer(blur.shape)))


def _numpy_image(x: torch.Tensor) -> tuple[np.ndarray, int | None]:
    """(H, W) or (C, H, W) tensor -> float64 array and the channel axis for scikit-image."""
    if x.dim() == 2:
        return x.detach().double().cpu().numpy(), None
    if x.dim() == 3:
        if x.shape[0] == 1:
            return x[0].detach().double().cpu().numpy(), None
        return np.moveaxis(x.detach().double().cpu().numpy(), 0, -1), -1
    raise ValueError(f"expected an (H, W) or (C, H, W) image, got shape {tuple(x.shape)}")


def _back(array: np.ndarray, like: torch.Tensor, channel_axis: int | None) -> torch.Tensor:
    if channel_axis is not None:
        array = np.moveaxis(array, -1, 0)
    out = torch.from_numpy(np.ascontiguousarray(array)).reshape(like.shape)
    return out.to(like.dtype).to(like.device)


def tv_denoise(x: torch.Tensor, weight: float, iterations: int = 200) -> torch.Tensor:
    """Chambolle's TV denoising, ``argmin_u ½‖u − x‖² + weight · TV(u)`` (isotropic TV):
    the proximal operator of ``weight · TV`` (scikit-image's ``denoise_tv_chambolle``)."""
    from skimage.restoration import denoise_tv_chambolle

    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight}")
    if weight == 0:
        return x.clone()
    array, axis = _numpy_image(x)
    out = denoise_tv_chambolle(array, weight=weight, max_num_iter=iterations, channel_axis=axis)
    return _back(out, x, axis)


def nlm_denoise(x: torch.Tensor, sigma: float, h_factor: float = 0.8,
                patch_size: int = 5, patch_distance: int = 6) -> torch.Tensor:
    """Non-local means (scikit-image, fast mode) with ``h = h_factor · σ``. σ is the known
    noise level (every experiment here knows it; scikit-image's ``estimate_sigma`` would
    need PyWavelets, which deepnotes does not depend on)."""
    from skimage.restoration import denoise_nl_means

    array, axis = _numpy_image(x)
    if sigma < 0 or h_factor <= 0:
        raise ValueError(f"need sigma >= 0 and h_factor > 0, got {sigma}, {h_factor}")
    if sigma == 0:
        return x.clone()
    out = denoise_nl_means(array, patch_size=patch_size, patch_distance=patch_distance,
                           h=h_factor * sigma, sigma=sigma, fast_mode=True, channel_axis=axis)
    return _back(out, x, axis)
