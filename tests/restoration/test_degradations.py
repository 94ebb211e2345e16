"""The degradations of notes 8.14.1: adjoints, the FFT blur against direct convolution, and
the likelihood."""

import pytest
import torch
import torch.nn.functional as F

from deepnotes.data.photos import TEST_PHOTOS, TRAIN_PHOTOS, load_photo
from deepnotes.restoration.degradations import (
    Blur,
    Denoising,
    GaussianMeasurements,
    Inpainting,
    gaussian_kernel,
    uniform_kernel,
)


def _operators():
    g = torch.Generator().manual_seed(0)
    return [Denoising(), Blur(uniform_kernel(9), (16, 20)), Blur(gaussian_kernel(5, 1.3), (16, 20)),
            Inpainting.random((16, 20), 0.6, g), GaussianMeasurements(37, (16, 20), g)]


@pytest.mark.parametrize("op", _operators(), ids=lambda o: type(o).__name__)
def test_adjoint_satisfies_inner_product_identity(op):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 16, 20, generator=g, dtype=torch.float64)
    y = torch.randn(op(x).shape, generator=g, dtype=torch.float64)
    assert torch.allclose((op(x) * y).sum(), (x * op.adjoint(y)).sum(), rtol=1e-12, atol=1e-12)
    # and the adjoint is not the operator itself where A is not symmetric
    if isinstance(op, Blur) and not torch.equal(op.kernel, op.kernel.flip(0, 1)):
        assert not torch.allclose(op(x), op.adjoint(x))


def test_fft_blur_equals_circular_direct_convolution():
    g = torch.Generator().manual_seed(2)
    kernel = torch.rand(5, 5, generator=g, dtype=torch.float64)
    x = torch.randn(1, 1, 12, 14, generator=g, dtype=torch.float64)
    padded = F.pad(x, (2, 2, 2, 2), mode="circular")
    # conv2d is cross-correlation; flipping the kernel makes it the convolution A applies
    direct = F.conv2d(padded, kernel.flip(0, 1)[None, None])
    assert torch.allclose(Blur(kernel, (12, 14))(x), direct, atol=1e-12)


def test_box_blur_keeps_the_mean_and_smooths():
    x = torch.rand(32, 32, dtype=torch.float64)
    y = Blur(uniform_kernel(9), (32, 32))(x)
    assert y.mean().item() == pytest.approx(x.mean().item(), abs=1e-12)
    assert y.std() < 0.5 * x.std()


def test_measurements_have_unit_expected_energy_and_likelihood_is_the_scaled_residual():
    g = torch.Generator().manual_seed(3)
    op = GaussianMeasurements(400, (10, 10), g)
    x = torch.randn(50, 10, 10, generator=g, dtype=torch.float64)
    ratio = (op(x).pow(2).sum() / x.pow(2).sum()).item()
    assert ratio == pytest.approx(1.0, abs=0.1)
    y = op.observe(x[0], 0.5, torch.Generator().manual_seed(4))
    expected = (y - op(x[0])).pow(2).sum() / (2 * 0.25)
    assert op.negative_log_likelihood(x[0], y, 0.5).item() == pytest.approx(expected.item())


def test_observe_is_reproducible_and_noise_has_the_requested_level():
    x = torch.zeros(200, 200, dtype=torch.float64)
    a = Denoising().observe(x, 0.1, torch.Generator().manual_seed(5))
    b = Denoising().observe(x, 0.1, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert a.std().item() == pytest.approx(0.1, rel=0.02)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="0 \\(missing\\) and 1"):
        Inpainting(torch.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="built for"):
        Blur(uniform_kernel(3), (8, 8))(torch.zeros(9, 9))
    with pytest.raises(ValueError, match="expected"):
        GaussianMeasurements(5, (4, 4))(torch.zeros(5, 5))
    with pytest.raises(ValueError, match="sigma"):
        Denoising().observe(torch.zeros(2), -1.0)


def test_photos_are_unit_range_and_test_and_train_never_mix():
    x = load_photo("camera", 64)
    assert x.shape == (1, 64, 64) and 0.0 <= x.min() and x.max() <= 1.0
    assert load_photo("coffee", 32, grey=False).shape == (3, 32, 32)
    assert not set(TEST_PHOTOS) & set(TRAIN_PHOTOS)
    with pytest.raises(ValueError, match="never mix"):
        load_photo("camera", 64, split="train")
    with pytest.raises(ValueError, match="never mix"):
        load_photo("brick", 64)
