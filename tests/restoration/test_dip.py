"""Deep Image Prior (restoration/dip.py): the skip network, the fixed input, the output EMA,
the discrepancy early-stopping rule and a tiny fit."""

from __future__ import annotations

import math

import pytest
import torch

from deepnotes.restoration.dip import (
    DIPFit,
    SkipNet,
    discrepancy_stop,
    iterations_to_reach,
    make_input,
)


def _net(depth: int = 3, width: int = 8, skip: int = 2, **kwargs) -> SkipNet:
    torch.manual_seed(0)
    return SkipNet(in_channels=4, out_channels=kwargs.pop("out_channels", 1),
                   down=(width,) * depth, up=(width,) * depth, skip=(skip,) * depth, **kwargs)


@pytest.mark.parametrize("shape", [(16, 16), (17, 23), (37, 40)])
@pytest.mark.parametrize("upsample", ["bilinear", "nearest"])
def test_skipnet_keeps_odd_and_even_sizes_and_outputs_in_unit_interval(shape, upsample):
    net = _net(out_channels=3, upsample=upsample)
    out = net(torch.rand(2, 4, *shape))
    assert out.shape == (2, 3, *shape)
    assert bool(((out > 0) & (out < 1)).all())


def test_skipnet_refuses_images_too_small_for_its_depth():
    with pytest.raises(ValueError, match="at least 8 pixels"):
        _net(depth=3)(torch.rand(1, 4, 7, 12))
    with pytest.raises(ValueError, match="one entry per level"):
        SkipNet(4, 1, down=(8, 8), up=(8,), skip=(2, 2))


def test_skipnet_uses_its_skip_branches():
    net = _net(skip=2)
    z = torch.rand(1, 4, 16, 16)
    ref = net(z)
    # The skip branch of level 0 is a 1x1 block of z; zeroing its weights changes the output.
    with torch.no_grad():
        net.skips[0][0].weight.zero_()
        net.skips[0][0].bias.zero_()
    assert not torch.allclose(net(z), ref)
    # Without skips, level i's decoder sees only the deeper channels.
    plain = _net(skip=0)
    assert all(isinstance(s, torch.nn.Identity) for s in plain.skips)
    assert plain.norms[0].num_features == 8 and net.norms[0].num_features == 8 + 2
    assert plain(z).shape == (1, 1, 16, 16)
    # Gradients reach the skip branch (it is part of the computation graph).
    net.zero_grad()
    net(z).sum().backward()
    assert net.skips[1][0].weight.grad.abs().sum() > 0


def test_fixed_input_is_reproducible_from_its_stream():
    a = make_input(3, (5, 7), torch.Generator().manual_seed(11))
    b = make_input(3, (5, 7), torch.Generator().manual_seed(11))
    c = make_input(3, (5, 7), torch.Generator().manual_seed(12))
    assert a.shape == (1, 3, 5, 7) and torch.equal(a, b) and not torch.equal(a, c)
    assert 0 <= float(a.min()) and float(a.max()) < 0.1


def test_output_ema_is_the_exponential_average_of_the_raw_outputs():
    torch.manual_seed(0)
    target = torch.rand(1, 1, 16, 16)
    z = make_input(4, (16, 16), torch.Generator().manual_seed(0))
    decay = 0.7
    fit = DIPFit(_net(), z, target, lr=0.01, ema_decay=decay)
    outs = []
    for _ in range(4):
        # The output an iteration averages is the forward pass before its update.
        with torch.no_grad():
            before = {k: v.clone() for k, v in fit.net.state_dict().items()}
        outs.append(fit.output())  # same weights, same input, train-mode BN: same forward
        fit.net.load_state_dict(before)
        fit.step()
    expected = outs[0]
    for out in outs[1:]:
        expected = decay * expected + (1 - decay) * out
    torch.testing.assert_close(fit.state["ema"], expected, rtol=1e-5, atol=1e-6)
    assert len(fit.state["mse"]) == 4 and fit.state["psnr"] == []  # no clean image, no PSNR
    assert math.isclose(fit.state["mse_ema"][-1],
                        float((expected.double() - target.double()).pow(2).mean()), rel_tol=1e-4)


def test_input_noise_regularization_draws_from_the_given_stream():
    target = torch.rand(1, 1, 16, 16)
    z = make_input(4, (16, 16), torch.Generator().manual_seed(0))
    runs = []
    for seed in (5, 5, 6):
        fit = DIPFit(_net(), z, target, reg_noise_std=0.05)
        fit.run(range(3), generator=lambda step, s=seed: torch.Generator().manual_seed(s + step))
        runs.append(fit.state["mse"])
    assert runs[0] == runs[1] and runs[0] != runs[2]
    plain = DIPFit(_net(), z, target).run(range(3)).state["mse"]
    assert plain != runs[0] and plain[0] == pytest.approx(runs[0][0], rel=0.2)


def test_discrepancy_rule_stops_where_the_residual_first_reaches_sigma_squared():
    sigma = 0.1
    # Synthetic fit: the residual decays from 0.1 towards 0 (the noise gets fitted too).
    curve = [0.1 * math.exp(-t / 20) for t in range(200)]
    t = discrepancy_stop(curve, sigma)
    assert t == next(i for i, v in enumerate(curve) if v <= 0.01)
    assert curve[t] <= sigma ** 2 < curve[t - 1]
    assert t == math.ceil(20 * math.log(10))
    assert discrepancy_stop([0.5, 0.3, 0.2], sigma) is None  # never reaches the noise level
    assert discrepancy_stop([0.01], sigma) == 0  # equality counts
    with pytest.raises(ValueError):
        discrepancy_stop(curve, 0.0)
    assert iterations_to_reach([3, 2, 1], 2) == 1 and iterations_to_reach([3], 1) is None


def test_online_stop_and_oracle_snapshots_match_the_curves():
    gen = torch.Generator().manual_seed(3)
    clean = torch.rand(1, 1, 16, 16, generator=gen)
    sigma = 0.1
    noisy = clean + sigma * torch.randn(clean.shape, generator=gen)
    z = make_input(4, (16, 16), torch.Generator().manual_seed(0))
    fit = DIPFit(_net(width=16), z, noisy, lr=0.02, ema_decay=0.5, clean=clean, sigma=sigma)
    fit.run(range(150))
    s = fit.state
    assert s["stop"] == discrepancy_stop(s["mse_ema"], sigma)
    assert s["stop"] >= 0  # a small image is fitted below the noise level within 150 steps
    best = max(range(len(s["psnr_ema"])), key=s["psnr_ema"].__getitem__)
    assert s["best"] == best
    from deepnotes.metrics.generative import psnr

    assert psnr(clean[0], s["best_image"][0], data_range=1.0) == pytest.approx(
        s["psnr_ema"][best], abs=1e-4)
    assert s["seconds"] == sorted(s["seconds"]) and len(s["seconds"]) == 150


def test_a_tiny_fit_reduces_the_mse():
    target = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    z = make_input(4, (16, 16), torch.Generator().manual_seed(0))
    fit = DIPFit(_net(), z, target, lr=0.01).run(range(40))
    assert fit.state["mse"][-1] < 0.5 * fit.state["mse"][0]


def test_bf16_autocast_and_channels_last_fit_like_fp32():
    target = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    z = make_input(4, (16, 16), torch.Generator().manual_seed(0))
    ref = DIPFit(_net(), z, target).run(range(10)).state["mse"]
    for options in ({"channels_last": True}, {"autocast": True}):
        other = DIPFit(_net(), z, target, **options).run(range(10)).state["mse"]
        assert other[-1] == pytest.approx(ref[-1], rel=0.1)


def test_dip_minimizes_the_negative_log_likelihood():
    """Erratum 8.14/8.14.2: E(x, y) = -log p(y|x) (minimized), not +log p(y|x)."""
    from deepnotes.restoration.degradations import Denoising

    gen = torch.Generator().manual_seed(4)
    clean = torch.rand(1, 1, 16, 16, generator=gen)
    sigma = 0.1
    noisy = Denoising().observe(clean, sigma, generator=gen)
    z = make_input(4, (16, 16), torch.Generator().manual_seed(0))
    fit = DIPFit(_net(), z, noisy)
    nll = []
    for _ in range(30):
        out = fit.output()
        nll.append(float(Denoising().negative_log_likelihood(out.double(), noisy.double(),
                                                             sigma)))
        row = fit.step()
        assert row["mse"] == pytest.approx(2 * sigma ** 2 / noisy.numel() * nll[-1], rel=1e-4)
    assert nll[-1] < 0.5 * nll[0]
