"""The DnCNN of notes 8.15: shapes, residual form, and training data that never holds a
test photo."""

import pytest
import torch

from deepnotes.restoration.denoisers import DnCNN, as_denoiser, sample_patches
from deepnotes.zoo.dncnn import training_images


def test_dncnn_keeps_the_shape_and_subtracts_its_predicted_noise():
    torch.manual_seed(0)
    model = DnCNN(channels=1, features=8, depth=4).eval()
    noisy = torch.rand(3, 1, 20, 24)
    out = model(noisy, torch.tensor([0.1, 0.2, 0.3]))
    assert out.shape == noisy.shape
    with torch.no_grad():
        assert torch.allclose(out, noisy - model.residual(noisy, torch.tensor([0.1, 0.2, 0.3])))
        last = model.body[-1]
        last.weight.zero_(), last.bias.zero_()
        assert torch.equal(model(noisy, 0.1), noisy)  # R = 0: the identity
    assert model.architecture["kwargs"] == {"channels": 1, "features": 8, "depth": 4}
    denoise = as_denoiser(model)
    assert denoise(torch.rand(20, 24, dtype=torch.float64), 0.1).dtype == torch.float64
    with pytest.raises(ValueError):
        DnCNN(depth=2)


def test_training_refuses_a_test_photo_and_samples_training_patches():
    with pytest.raises(ValueError, match="test photo"):
        training_images(("chelsea", "camera"))
    images = training_images(("coins",))
    patches = sample_patches(images, 5, 16, torch.Generator().manual_seed(0))
    assert patches.shape == (5, 1, 16, 16) and 0 <= patches.min() <= patches.max() <= 1
