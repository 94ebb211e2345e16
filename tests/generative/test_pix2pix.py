"""Pix2Pix parts (notes 8.18): U-Net, PatchGAN, losses, cost counters, Canny edges."""

import pytest
import torch
from torch import nn

from deepnotes.data.edges import canny_edges
from deepnotes.generative.gan import discriminator_bce, non_saturating_generator_loss
from deepnotes.generative.pix2pix import (
    LAMBDA_L1,
    FullImageDiscriminator,
    PatchDiscriminator,
    UNetGenerator,
    count_parameters,
    discriminator_loss,
    generator_loss,
    multiply_adds,
    rms_gradient,
    translate,
)


def test_unet_maps_28x28_to_28x28_in_tanh_range():
    torch.manual_seed(0)
    g = UNetGenerator(width=8)
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        out = g(x)
    assert out.shape == (3, 1, 28, 28)
    assert float(out.abs().max()) <= 1.0
    with pytest.raises(ValueError):
        g(torch.zeros(3, 1, 32, 32))


@pytest.mark.parametrize("skips", [True, False])
def test_unet_skips_carry_the_input_past_a_dead_bottleneck(skips):
    """With the bottleneck's output zeroed, only the skip connections can carry the input to
    the output: the U-Net's output still depends on it, the encoder-decoder's does not."""
    torch.manual_seed(0)
    g = UNetGenerator(width=8, skips=skips).eval()
    g.down[3].register_forward_hook(lambda module, args, out: torch.zeros_like(out))
    a, b = torch.rand(2, 1, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        differ = not torch.allclose(g(a), g(b))
    assert differ == skips


def _input_window(logit: torch.Tensor, x: torch.Tensor) -> tuple[list[int], list[int]]:
    (grad,) = torch.autograd.grad(logit, x)
    seen = grad[0].abs().sum(0) > 0  # (28, 28)
    rows = torch.nonzero(seen.any(1)).flatten().tolist()
    cols = torch.nonzero(seen.any(0)).flatten().tolist()
    return rows, cols


def test_patchgan_gives_a_grid_of_patch_logits_each_seeing_10x10_pixels():
    torch.manual_seed(0)
    d = PatchDiscriminator(width=8).eval()
    x = torch.rand(2, 1, 28, 28, requires_grad=True)
    y = torch.rand(2, 1, 28, 28)
    logits = d(x, y)
    assert logits.shape == (2, 1, 7, 7)
    assert d.receptive_field() == 10
    # The logit at (3, 3) depends on input rows/cols 4*3 - 3 .. 4*3 + 6 only (stride 4).
    rows, cols = _input_window(logits[0, 0, 3, 3], x)
    assert rows == cols == list(range(9, 19))
    # The full-image discriminator: one logit per pair, depending on every pixel.
    full = FullImageDiscriminator(width=8).eval()
    logit = full(x, y)
    assert logit.shape == (2,)
    rows, cols = _input_window(logit[0], x)
    assert rows == cols == list(range(28))
    with pytest.raises(ValueError):
        d(x, y[:1])


def test_multiply_adds_match_a_hand_count():
    conv = nn.Conv2d(2, 3, 3, padding=1)  # 3 x 5 x 5 outputs x (2 x 3 x 3) taps
    assert multiply_adds(conv, torch.zeros(1, 2, 5, 5)) == 75 * 18
    convt = nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1)  # 75 inputs x (2 x 4 x 4)
    assert multiply_adds(convt, torch.zeros(1, 3, 5, 5)) == 75 * 32
    linear = nn.Linear(10, 4)
    assert multiply_adds(linear, torch.zeros(2, 10)) == 2 * 4 * 10
    net = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(75, 1))
    assert multiply_adds(net, torch.zeros(1, 2, 5, 5)) == 1350 + 75
    # PatchGAN width 8 on one pair: 8x14x14 x 2x16, 16x7x7 x 8x16, 7x7 x 16.
    x = torch.zeros(1, 1, 28, 28)
    patch, full = PatchDiscriminator(8), FullImageDiscriminator(8)
    assert multiply_adds(patch, x, x) == 1568 * 32 + 784 * 128 + 49 * 16
    # The linear head over the 7x7 map costs what the 1x1 head does; it has more weights.
    assert multiply_adds(full, x, x) == multiply_adds(patch, x, x)
    assert count_parameters(full) - count_parameters(patch) == 16 * 49 - 16
    assert count_parameters(conv) == 3 * 18 + 3


def test_generator_and_discriminator_losses():
    torch.manual_seed(0)
    logit, real = torch.randn(4, 1, 7, 7), torch.randn(4, 1, 7, 7)
    fake, target = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    l1 = (fake - target).abs().mean()
    both = generator_loss(logit, fake, target)
    assert torch.allclose(both, non_saturating_generator_loss(logit) + LAMBDA_L1 * l1)
    assert LAMBDA_L1 == 100.0
    assert torch.allclose(generator_loss(None, fake, target), LAMBDA_L1 * l1)
    assert torch.allclose(generator_loss(logit, fake, target, 0.0),
                          non_saturating_generator_loss(logit))
    with pytest.raises(ValueError):
        generator_loss(None, fake, target, 0.0)
    assert torch.allclose(discriminator_loss(real, logit), 0.5 * discriminator_bce(real, logit))


def test_translate_keeps_dropout_noise_and_restores_modes():
    torch.manual_seed(0)
    g = UNetGenerator(width=8)
    edges = canny_edges(torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8))
    torch.manual_seed(1)
    a = translate(g, edges)
    torch.manual_seed(1)
    b = translate(g, edges)
    torch.manual_seed(2)
    c = translate(g, edges)
    assert a.dtype == torch.uint8 and a.shape == (5, 28, 28)
    assert torch.equal(a, b) and not torch.equal(a, c)  # dropout draws from the seeded RNG
    assert g.training and all(m.training for m in g.modules())


def test_canny_edges_are_deterministic_binary_and_on_the_outline():
    images = torch.zeros(3, 28, 28, dtype=torch.uint8)
    images[1, 8:20, 8:20] = 200  # a bright square
    images[2] = torch.randint(0, 256, (28, 28), generator=torch.Generator().manual_seed(0))
    edges = canny_edges(images)
    assert edges.dtype == torch.uint8 and edges.shape == images.shape
    assert set(edges.unique().tolist()) <= {0, 255}
    assert torch.equal(edges, canny_edges(images))  # deterministic
    assert int(edges[0].sum()) == 0  # a blank image has no edges
    square = edges[1] > 0
    assert square.any()
    assert not square[12:16, 12:16].any()  # nothing inside the flat interior
    assert not square[:4].any() and not square[24:].any()  # nor far outside
    with pytest.raises(ValueError):
        canny_edges(images.float())


def test_rms_gradient_is_zero_on_constants_and_falls_with_blur():
    flat = torch.full((2, 28, 28), 90, dtype=torch.uint8)
    assert rms_gradient(flat) == pytest.approx(0.0, abs=1e-12)
    ramp = (torch.arange(28.0) * 9).round().to(torch.uint8).expand(1, 28, 28).contiguous()
    assert rms_gradient(ramp) == pytest.approx(9 / 255, rel=1e-6)
    sharp = torch.zeros(1, 28, 28, dtype=torch.uint8)
    sharp[:, :, 14:] = 255
    blurred = torch.nn.functional.avg_pool2d(sharp.float()[None], 5, 1, 2,
                                             count_include_pad=False)[0]
    # Sobel spreads the step over 2 pixels, the blur over 5 (+1): the squared gradient's sum
    # falls about 5 / 2-fold, the RMS to about sqrt(2 / 5) = 0.63.
    ratio = rms_gradient(blurred.round().to(torch.uint8)) / rms_gradient(sharp)
    assert 0.5 < ratio < 0.7
