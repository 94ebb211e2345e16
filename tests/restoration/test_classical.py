"""The classical baselines of notes 8.14-8.15: Wiener's inverse filter, Tikhonov against a
dense linear solve, and the scikit-image wrappers' torch round trip."""

import pytest
import torch

from deepnotes.restoration.classical import (
    circular_gradient,
    gradient_transfer,
    nlm_denoise,
    tikhonov_deconvolve,
    tv_denoise,
    wiener_deconvolve,
)
from deepnotes.restoration.degradations import Blur, gaussian_kernel, uniform_kernel


def _invertible_kernel():
    # δ plus a small neighbour: |K̂(ω)| >= 0.6 everywhere, so the blur is invertible
    kernel = torch.zeros(3, 3, dtype=torch.float64)
    kernel[1, 1], kernel[1, 2], kernel[2, 1] = 0.8, 0.1, 0.1
    return kernel


def test_wiener_without_noise_inverts_an_invertible_blur():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 12, 10, generator=g, dtype=torch.float64)
    blur = Blur(_invertible_kernel(), (12, 10))
    assert blur.transfer.abs().min() > 0.5
    assert torch.allclose(wiener_deconvolve(blur(x), blur, 0.0), x, atol=1e-12)
    with pytest.raises(ValueError, match="zeros"):  # a 2x2 box has a zero at Nyquist
        wiener_deconvolve(x, Blur(uniform_kernel(2), (12, 10)), 0.0)


def _dense(operator, n_h, n_w):
    basis = torch.eye(n_h * n_w, dtype=torch.float64).reshape(-1, n_h, n_w)
    return operator(basis).reshape(n_h * n_w, -1).T  # column j = A e_j


def test_tikhonov_matches_a_direct_linear_solve_on_a_tiny_image():
    g = torch.Generator().manual_seed(1)
    shape = (6, 5)
    blur = Blur(gaussian_kernel(3, 0.8), shape)
    y = torch.rand(shape, generator=g, dtype=torch.float64)
    alpha = 0.03
    a = _dense(blur, *shape)
    dh = _dense(lambda x: circular_gradient(x)[0], *shape)
    dw = _dense(lambda x: circular_gradient(x)[1], *shape)
    system = a.T @ a + alpha * (dh.T @ dh + dw.T @ dw)
    direct = torch.linalg.solve(system, a.T @ y.reshape(-1)).reshape(shape)
    assert torch.allclose(tikhonov_deconvolve(y, blur, alpha), direct, atol=1e-10)
    # |D̂|² is the spectrum of DᵀD
    assert torch.allclose(torch.linalg.eigvalsh(dh.T @ dh + dw.T @ dw).max(),
                          gradient_transfer(shape).max(), atol=1e-10)


def test_skimage_wrappers_keep_shape_dtype_and_denoise():
    g = torch.Generator().manual_seed(2)
    clean = torch.zeros(1, 32, 32)
    clean[:, 8:24, 8:24] = 1.0
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=g)
    outputs = [tv_denoise(noisy, 0.1), nlm_denoise(noisy, 0.1)]
    for out in outputs:
        assert out.shape == noisy.shape and out.dtype == noisy.dtype
        assert (out - clean).pow(2).mean() < 0.5 * (noisy - clean).pow(2).mean()
    colour = torch.rand(3, 16, 16, generator=g)
    assert tv_denoise(colour, 0.05).shape == (3, 16, 16)
    assert torch.equal(tv_denoise(noisy, 0.0), noisy)
