"""Standardization (fit on train, apply to test) against scikit-learn; augmentation ops."""

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from deepnotes.nn import Standardizer, gaussian_noise, horizontal_flip, random_crop


def test_standardizer_matches_sklearn_fit_on_train_only():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(100, 4, generator=g, dtype=torch.float64) * torch.tensor(
        [1e-3, 1.0, 1e3, 5.0], dtype=torch.float64) + 7
    test = torch.randn(30, 4, generator=g, dtype=torch.float64) * 100
    s = Standardizer().fit(train)
    ref = StandardScaler().fit(train.numpy())
    np.testing.assert_allclose(s.transform(test).numpy(), ref.transform(test.numpy()),
                               rtol=1e-12)
    z = s.transform(train)
    torch.testing.assert_close(z.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-12,
                               rtol=0)
    torch.testing.assert_close(z.std(0, correction=0), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(s.inverse_transform(s.transform(test)), test)
    # the test split is NOT centred: its statistics never entered
    assert s.transform(test).mean(0).abs().max() > 0.05


def test_standardizer_constant_feature_and_channels_and_errors():
    x = torch.tensor([[1.0, 2.0], [1.0, 4.0]])
    z = Standardizer().fit_transform(x)
    assert torch.isfinite(z).all() and (z[:, 0] == 0).all()
    imgs = torch.rand(10, 3, 5, 5)
    s = Standardizer(dim=(0, 2, 3)).fit(imgs)
    assert s.mean.shape == (1, 3, 1, 1)
    with pytest.raises(ValueError, match="fit"):
        Standardizer().transform(x)
    with pytest.raises(ValueError, match="float"):
        Standardizer().fit(torch.zeros(3, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="does not match"):
        Standardizer().fit(x).transform(torch.zeros(3, 5))


def _shift(img, dy, dx):
    """Reference: translate a (C, H, W) image by (dy, dx) with zero fill, by a loop."""
    out = torch.zeros_like(img)
    _, h, w = img.shape
    for i in range(h):
        for j in range(w):
            si, sj = i + dy, j + dx
            if 0 <= si < h and 0 <= sj < w:
                out[:, i, j] = img[:, si, sj]
    return out


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("shape", [(6, 7, 5), (6, 2, 7, 5)])
def test_random_crop_is_a_zero_filled_translation(dtype, shape):
    x = (torch.rand(shape) * 200 + 1).to(dtype)
    out = random_crop(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == dtype
    imgs = x if x.dim() == 4 else x[:, None]
    outs = out if out.dim() == 4 else out[:, None]
    for img, o in zip(imgs, outs, strict=True):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if torch.equal(_shift(img, dy, dx), o)]
        assert len(matches) == 1
    assert torch.equal(random_crop(x, 0, torch.Generator()), x)


def test_random_crop_offsets_cover_all_shifts_and_are_reproducible():
    x = torch.zeros(2000, 5, 5, dtype=torch.uint8)
    x[:, 2, 2] = 255  # a single bright pixel reveals the shift
    out = random_crop(x, 1, torch.Generator().manual_seed(1))
    positions = out.flatten(1).argmax(1)
    assert len(torch.unique(positions)) == 9  # all 3 x 3 offsets occur
    counts = torch.bincount(positions, minlength=25).double()
    assert counts[counts > 0].min() > 2000 / 9 * 0.7
    again = random_crop(x, 1, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)


def test_horizontal_flip():
    x = torch.arange(4 * 3 * 5).reshape(4, 3, 5).float()
    out = horizontal_flip(x, torch.Generator().manual_seed(0), p=1.0)
    assert torch.equal(out, x.flip(-1))
    assert torch.equal(horizontal_flip(x, torch.Generator(), p=0.0), x)
    big = torch.rand(4000, 1, 2, 3)
    half = horizontal_flip(big, torch.Generator().manual_seed(2))
    flipped = (half != big).flatten(1).any(1).double().mean().item()
    assert abs(flipped - 0.5) < 0.05
    unchanged_or_mirrored = ((half == big) | (half == big.flip(-1))).flatten(1).all(1)
    assert unchanged_or_mirrored.all()


def test_gaussian_noise_float_and_uint8():
    x = torch.zeros(200, 28, 28)
    y = gaussian_noise(x, 0.1, torch.Generator().manual_seed(0))
    assert abs(y.mean().item()) < 0.002 and abs(y.std().item() - 0.1) < 0.002
    u = torch.full((100, 28, 28), 250, dtype=torch.uint8)
    v = gaussian_noise(u, 0.1, torch.Generator().manual_seed(0))
    assert v.dtype == torch.uint8 and v.max() == 255  # clipped, not wrapped around
    assert 240 < v.float().mean().item() < 250
    assert torch.equal(v, gaussian_noise(u, 0.1, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="images"):
        gaussian_noise(torch.zeros(3, 3), 0.1, torch.Generator())
    with pytest.raises(ValueError, match="uint8 or float"):
        horizontal_flip(torch.zeros(2, 3, 3, dtype=torch.int64), torch.Generator())
