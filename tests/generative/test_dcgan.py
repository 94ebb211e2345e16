"""DCGAN networks and helpers (deepnotes.generative.dcgan, deepnotes.zoo.gan_fashion)."""

import pytest
import torch

from deepnotes.generative.dcgan import (
    DCGANDiscriminator,
    DCGANGenerator,
    ema_update,
    from_uint8,
    slerp,
    to_uint8,
)
from deepnotes.zoo.gan_fashion import sample


def test_shapes_ranges_and_logits():
    torch.manual_seed(0)
    g, d = DCGANGenerator(16, 8), DCGANDiscriminator(8)
    x = g(torch.randn(5, 16)).detach()
    assert x.shape == (5, 1, 28, 28) and float(x.abs().max()) <= 1
    logits = d(x)
    assert logits.shape == (5,) and float(logits.abs().max()) > 0  # raw logits, no sigmoid
    with pytest.raises(ValueError, match=r"\(N, 16\)"):
        g(torch.randn(5, 15))
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        d(torch.randn(5, 28, 28))


def test_conditional_networks_use_the_class():
    torch.manual_seed(0)
    g, d = DCGANGenerator(16, 8, classes=10), DCGANDiscriminator(8, classes=10)
    z = torch.randn(3, 16)
    g.eval()
    a, b = g(z, torch.tensor([0, 0, 0])), g(z, torch.tensor([1, 1, 1]))
    assert not torch.allclose(a, b)
    assert not torch.allclose(d(a, torch.tensor([0, 0, 0])), d(a, torch.tensor([5, 5, 5])))
    with pytest.raises(ValueError, match="classes y"):
        g(z)
    with pytest.raises(ValueError, match="classes y"):
        d(a)


def test_the_upsampling_uses_a_kernel_the_stride_divides():
    # Kernel 4, stride 2: every output pixel of a transposed convolution gets 4 taps (no
    # checkerboard of tap counts); kernel 3 would give 1, 2 or 4.
    conv = torch.nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)
    torch.nn.init.ones_(conv.weight)
    counts = conv(torch.ones(1, 1, 7, 7))[0, 0, 1:-1, 1:-1]
    assert torch.all(counts == 4)
    g = DCGANGenerator(4, 2)
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) for m in g.modules()
               if isinstance(m, torch.nn.ConvTranspose2d))


def test_sampling_uses_running_statistics_and_restores_the_mode():
    torch.manual_seed(0)
    g = DCGANGenerator(8, 4)
    g.train()
    z = torch.randn(6, 8)
    out = sample(g, z)
    assert g.training  # restored
    g.eval()
    assert torch.equal(out, g(z))  # eval-mode BatchNorm, not batch statistics
    # In training mode one sample's output depends on the rest of the batch; in eval not.
    g.train()
    with torch.no_grad():
        assert not torch.allclose(g(z)[:1], g(z[:1].repeat(6, 1))[:1])
    assert torch.allclose(sample(g, z[:1]), sample(g, z)[:1], atol=1e-6)


def test_ema_update_averages_parameters_and_copies_buffers():
    torch.manual_seed(0)
    a, b = DCGANGenerator(4, 2), DCGANGenerator(4, 2)
    before = [p.clone() for p in a.parameters()]
    b.net[0].running_mean.fill_(3.0)
    ema_update(a, b, 0.9)
    for p0, pa, pb in zip(before, a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, 0.9 * p0 + 0.1 * pb)
    assert torch.all(a.net[0].running_mean == 3.0)
    with pytest.raises(ValueError, match="decay"):
        ema_update(a, b, 1.0)


def test_uint8_round_trip_and_slerp():
    x = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    assert torch.equal(to_uint8(from_uint8(x)), x)
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(64, generator=g), torch.randn(64, generator=g)
    path = slerp(z0, z1, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    norms = path.norm(dim=1)  # slerp stays near the shell, lerp's midpoint falls inside
    assert float(norms.min()) > 0.9 * min(float(z0.norm()), float(z1.norm()))
    assert float(((z0 + z1) / 2).norm()) < 0.8 * float(norms[2])
