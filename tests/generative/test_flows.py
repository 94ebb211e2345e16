"""Glow's layers (notes 8.11): exact inverses, log-determinants against autograd's full
Jacobians in float64, shapes, single-channel inputs, ActNorm after a checkpoint load, the
LU and plain 1x1 convolutions, bits/dim, and the notes' log-likelihood derivation."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.generative.flows import (
    ActNorm,
    AffineCoupling,
    FlowStep,
    Glow,
    InvConv1x1,
    PixelHistogram,
    Split,
    Squeeze,
    bits_per_dim_bits,
    dequantize_bits,
    reduce_bits,
    squeeze,
    standard_normal_log_prob,
    to_levels,
    unsqueeze,
)
from deepnotes.metrics.generative import bits_per_dim

F64 = torch.float64


def _randomize(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> torch.nn.Module:
    """Perturb every parameter (zero-initialized last layers and priors included), so that no
    layer is the identity; ActNorm is marked initialized."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for m in module.modules():
            if isinstance(m, ActNorm):
                m.initialized.fill_(True)
    return module


def _x(shape, seed: int = 1, dtype=F64) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _jacobian_log_det(fn, x: torch.Tensor) -> torch.Tensor:
    """``log|det d fn(x_i) / d x_i|`` per example by autograd's full Jacobian (float64)."""
    out = []
    for xi in x:
        jac = torch.autograd.functional.jacobian(
            lambda v, s=xi.shape: fn(v.reshape(1, *s))[0].reshape(-1), xi.reshape(-1),
            vectorize=True)
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)


def _layers(c: int) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {"actnorm": ActNorm(c), "conv1x1": InvConv1x1(c, lu=False),
            "conv1x1_lu": InvConv1x1(c, lu=True), "coupling": AffineCoupling(c, hidden=8),
            "squeeze": Squeeze(), "split": Split(c), "step": FlowStep(c, hidden=8)}


@pytest.mark.parametrize("name", list(_layers(4)))
def test_each_layer_inverts_and_its_log_det_is_the_jacobians(name):
    layer = _randomize(_layers(4)[name].double())
    x = _x((2, 4, 4, 4))
    y, log_det = layer(x)
    assert y.shape == (2, 16, 2, 2) if name == "squeeze" else y.shape == x.shape
    assert (layer.inverse(y) - x).abs().max() <= 1e-10
    assert log_det.shape == (2,)
    torch.testing.assert_close(log_det, _jacobian_log_det(layer, x), rtol=0, atol=1e-9)


def test_whole_glow_log_det_is_the_jacobians_and_float32_inverts_to_1e5():
    torch.manual_seed(0)
    model = _randomize(Glow(1, 8, levels=2, steps=2, hidden=8, logit=0.05).double(), scale=0.1)
    x = _x((2, 1, 8, 8))
    z, log_det = model(x)
    assert z.shape == (2, 64)
    torch.testing.assert_close(log_det, _jacobian_log_det(model, x), rtol=0, atol=1e-8)
    m32 = model.float()
    x32 = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    assert (m32.inverse(m32(x32)[0]) - x32).abs().max() <= 1e-5
    u = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(3), dtype=F64)
    y, ld = model.double().preprocess(u)  # logit: elementwise, its log-det is exact too
    torch.testing.assert_close(model.postprocess(y), u, rtol=0, atol=1e-12)
    torch.testing.assert_close(ld, _jacobian_log_det(model.preprocess, u), rtol=0, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(c=st.integers(2, 6), h=st.sampled_from([2, 4, 6]), w=st.sampled_from([2, 4]),
       n=st.integers(1, 3), lu=st.booleans(), seed=st.integers(0, 1000))
def test_flow_step_property_over_shapes(c, h, w, n, lu, seed):
    torch.manual_seed(seed)
    step = _randomize(FlowStep(c, hidden=4, lu=lu).double(), seed)
    x = _x((n, c, h, w), seed)
    y, log_det = step(x)
    assert y.shape == x.shape and torch.isfinite(log_det).all()
    assert (step.inverse(y) - x).abs().max() <= 1e-9
    torch.testing.assert_close(log_det, _jacobian_log_det(step, x), rtol=0, atol=1e-8)


@settings(max_examples=10, deadline=None)
@given(c=st.integers(1, 3), levels=st.integers(1, 2), size=st.sampled_from([4, 8, 12]),
       seed=st.integers(0, 1000))
def test_glow_property_over_shapes(c, levels, size, seed):
    if size % 2 ** levels:
        with pytest.raises(ValueError, match="divisible"):
            Glow(c, size, levels=levels)
        return
    torch.manual_seed(seed)
    model = _randomize(Glow(c, size, levels=levels, steps=1, hidden=4).double(), seed, 0.1)
    x = _x((2, c, size, size), seed)
    z, log_det = model(x)
    assert z.shape == (2, c * size * size) and log_det.shape == (2,)
    assert (model.inverse(z) - x).abs().max() <= 1e-9
    assert squeeze(x).shape == (2, 4 * c, size // 2, size // 2)
    assert torch.equal(unsqueeze(squeeze(x)), x)


def test_single_channel_28x28_trains_scores_and_samples():
    torch.manual_seed(0)
    model = Glow(1, 28, levels=2, steps=1, hidden=8)  # 28 -> 14 -> 7
    assert model.shapes == [(2, 14, 14), (8, 7, 7)]
    images = (torch.rand(4, 28, 28, generator=torch.Generator().manual_seed(0)) * 255
              ).to(torch.uint8)
    x = dequantize_bits(images).float().unsqueeze(1)
    lp = model.log_prob_unit(x)
    assert lp.shape == (4,) and torch.isfinite(lp).all()
    s = model.sample(5, temperature=0.7, generator=torch.Generator().manual_seed(1))
    assert s.shape == (5, 1, 28, 28) and torch.isfinite(s).all()
    with pytest.raises(ValueError, match="2 channels"):
        AffineCoupling(1)


def test_actnorm_initializes_once_and_not_again_after_load_state_dict(tmp_path):
    from safetensors.torch import load_file, save_file

    a = ActNorm(3)
    x = _x((64, 3, 5, 5), dtype=torch.float32) * torch.tensor([1.0, 5.0, 0.1]).view(1, 3, 1, 1)
    y, _ = a(x + 4.0)
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std((0, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)
    assert "initialized" in a.state_dict() and bool(a.initialized)
    trained = {k: v.clone() for k, v in a.state_dict().items()}
    a(x * 100)  # a second batch does not initialize again
    assert all(torch.equal(a.state_dict()[k], v) for k, v in trained.items())
    save_file({k: v.contiguous() for k, v in a.state_dict().items()}, str(tmp_path / "a.st"))
    b = ActNorm(3)
    b.load_state_dict(load_file(str(tmp_path / "a.st")))
    b(-x * 50)  # a loaded checkpoint's first batch: no re-initialization
    assert bool(b.initialized)
    assert all(torch.equal(b.state_dict()[k], v) for k, v in trained.items())


def test_lu_and_plain_1x1_convolutions_agree():
    w = torch.linalg.qr(_x((6, 6)))[0] @ torch.diag(torch.tensor([2.0, 0.5, 1, 3, -1, 0.7],
                                                                 dtype=F64))
    plain = InvConv1x1(6, lu=False, weight=w).double()
    lu = InvConv1x1(6, lu=True, weight=w).double()
    torch.testing.assert_close(lu.matrix(), w, rtol=0, atol=1e-12)
    x = _x((3, 6, 4, 5))
    (y_p, ld_p), (y_l, ld_l) = plain(x), lu(x)
    torch.testing.assert_close(y_l, y_p, rtol=0, atol=1e-12)
    torch.testing.assert_close(ld_l, ld_p, rtol=0, atol=1e-12)
    torch.testing.assert_close(ld_p, 20 * torch.linalg.slogdet(w)[1].expand(3), rtol=0, atol=1e-12)
    torch.testing.assert_close(lu.inverse(y_l), plain.inverse(y_p), rtol=0, atol=1e-12)
    torch.testing.assert_close(lu.inverse_matrix(), torch.linalg.inv(w), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_no_nan_over_seeds_in_a_few_training_steps(seed):
    torch.manual_seed(seed)
    model = Glow(1, 28, levels=2, steps=2, hidden=16, logit=0.05)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    base = torch.zeros(16, 28, 28)
    base[:, 6:22, 8:20] = 200.0  # a black background with a bright garment: the hard case
    for _ in range(4):
        images = (base + 40 * torch.rand(16, 28, 28, generator=g)).clamp(0, 255)
        x = dequantize_bits(images.to(torch.uint8), generator=g).float().unsqueeze(1)
        loss = bits_per_dim_bits(model.log_prob_unit(x), 784).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 50.0)
        opt.step()
        assert torch.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.isfinite(model.sample(8, 1.0, g)).all()


def test_bits_per_dim_dequantization_and_n_bits():
    images = torch.arange(256, dtype=torch.uint8).reshape(16, 16)
    assert torch.equal(reduce_bits(images, 5), images >> 3)
    for n_bits in (8, 5, 1):
        x = dequantize_bits(images, n_bits, torch.Generator().manual_seed(0))
        levels = (images >> (8 - n_bits)).double()
        assert ((x * 2 ** n_bits - levels) >= 0).all() and ((x * 2 ** n_bits - levels) < 1).all()
        assert torch.equal(to_levels(x, n_bits), (images >> (8 - n_bits)) << (8 - n_bits))
        # The density uniform on [0, 1)^D scores n_bits bits; the formula of the issue.
        assert float(bits_per_dim_bits(torch.zeros(1), 784, n_bits)) == pytest.approx(n_bits)
        lp = torch.tensor([-300.0, 120.0])
        expected = (-lp + 784 * math.log(2 ** n_bits)) / (784 * math.log(2))
        torch.testing.assert_close(bits_per_dim_bits(lp, 784, n_bits), expected)
    torch.testing.assert_close(bits_per_dim_bits(lp, 784), bits_per_dim(lp, 784))


def test_pixel_histogram_is_a_normalized_per_pixel_model():
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (500, 2, 3), generator=g).to(torch.uint8)
    hist = PixelHistogram(alpha=0.5).fit(train)
    assert torch.allclose(hist.log_p.exp().sum(0), torch.ones(6, dtype=F64))
    const = torch.full((10, 2, 3), 7, dtype=torch.uint8)
    h = PixelHistogram(alpha=1.0).fit(const)  # p(7) = 11 / 266 at every pixel
    torch.testing.assert_close(h.bits_per_dim(const), torch.full((10,), -math.log2(11 / 266),
                                                                 dtype=F64))
    # With little smoothing, uniform random pixels cost about 8 bits.
    big = torch.randint(0, 256, (20000, 1, 1), generator=g).to(torch.uint8)
    assert abs(float(PixelHistogram(0.01).fit(big).bits_per_dim(big[:2000]).mean()) - 8) < 0.02


# --- the notes' derivation of log p(x) (8.11) -------------------------------------------------
def _chain(c: int = 4) -> list[torch.nn.Module]:
    """A flow of bijections on (c, 2, 2), data-to-latent order (the notes' M^{-1})."""
    torch.manual_seed(3)
    layers = [ActNorm(c), InvConv1x1(c), AffineCoupling(c, 8), Split(c), ActNorm(c),
              InvConv1x1(c, lu=False), AffineCoupling(c, 8)]
    layers = [_randomize(layer.double(), i) for i, layer in enumerate(layers)]
    with torch.no_grad():
        layers[0].log_scale.add_(0.4)  # a flow that changes volume: log-det ~ 6
    return layers


def _gen_jacobians(layers, x: torch.Tensor):
    """z = f(x) and, for the generative layers g_k = f_{K+1-k}^{-1} (h_0 = z, h_K = x), the
    Jacobians dh_k/dh_{k-1} by autograd of ``inverse`` and dh_{k-1}/dh_k by autograd of
    ``forward``, both (D, D)."""
    hs = [x]
    for layer in layers:
        hs.append(layer(hs[-1])[0])
    z = hs[-1]
    gen, inv = [], []
    for layer, h_in, h_out in zip(reversed(layers), reversed(hs[:-1]), reversed(hs[1:]),
                                  strict=True):
        # generative step: h_out (closer to z) -> h_in (closer to x)
        gen.append(torch.autograd.functional.jacobian(
            lambda v, la=layer, s=h_out.shape: la.inverse(v.reshape(s)).reshape(-1),
            h_out.reshape(-1)))
        inv.append(torch.autograd.functional.jacobian(
            lambda v, la=layer, s=h_in.shape: la(v.reshape(s))[0].reshape(-1),
            h_in.reshape(-1)))
    return z, gen, inv


def _logabsdet(m: torch.Tensor) -> torch.Tensor:
    return torch.linalg.slogdet(m)[1]


def test_notes_log_likelihood_last_line_right_and_the_line_before_has_the_sign_flipped():
    layers = _chain()
    x = _x((1, 4, 2, 2), seed=5)
    z, gen, inv = _gen_jacobians(layers, x)
    log_pz = standard_normal_log_prob(z)[0]
    # The truth (8.5's change of variables, checked there against histograms): autograd's
    # Jacobian of the whole map x -> z.
    def whole(v):
        h = v.reshape(x.shape)
        for layer in layers:
            h = layer(h)[0]
        return h.reshape(-1)

    exact = log_pz + _logabsdet(torch.autograd.functional.jacobian(whole, x.reshape(-1)))
    # dh_{k-1}/dh_k is the inverse of dh_k/dh_{k-1} (inverse function theorem) ...
    for g_k, f_k in zip(gen, inv, strict=True):
        torch.testing.assert_close(g_k @ f_k, torch.eye(16, dtype=F64), rtol=0, atol=1e-10)
    sum_inv = sum(_logabsdet(f_k) for f_k in inv)  # sum_k log|det dh_{k-1}/dh_k|
    sum_gen = sum(_logabsdet(g_k) for g_k in gen)  # sum_k log|det dh_k/dh_{k-1}|
    assert abs(float(sum_inv.detach())) > 1.0  # a flow that changes volume: the sign matters
    # "log p_x(x) = log P_z(z) - log|det dM/dz|": right (dM/dz = prod_k dh_k/dh_{k-1}).
    torch.testing.assert_close(log_pz - sum_gen, exact, rtol=0, atol=1e-9)
    # Notes' last line: sum_k log|det dh_{k-1}/dh_k| + log p(M^{-1}(x)): right.
    torch.testing.assert_close(sum_inv + log_pz, exact, rtol=0, atol=1e-9)
    # Notes' line before it: log P_z(z) - sum_k log det(dh_{k-1}/dh_k): off by 2 sum_inv.
    printed = log_pz - sum_inv
    assert abs(float((printed - exact).detach())) > 2.0
    torch.testing.assert_close(exact - printed, 2 * sum_inv, rtol=0, atol=1e-9)
    # The implemented closed forms are the data-to-latent Jacobians, with a plus sign.
    h, closed = x, torch.zeros(1, dtype=F64)
    for layer in layers:
        h, ld = layer(h)
        closed = closed + ld
    torch.testing.assert_close(log_pz + closed[0], exact, rtol=0, atol=1e-9)


def test_a_linear_flow_gives_the_exact_gaussian_density():
    """ActNorm and 1x1 convolutions are linear: x = f^{-1}(z), z ~ N(0, I) is Gaussian with a
    known density; the flow's log p must be that, not the sign-flipped one."""
    layers = [_randomize(ActNorm(3).double(), 0), _randomize(InvConv1x1(3).double(), 1),
              _randomize(ActNorm(3).double(), 2)]
    shape = (1, 3, 1, 2)

    def f(v):
        h = v.reshape(shape)
        log_det = torch.zeros(1, dtype=F64)
        for layer in layers:
            h, ld = layer(h)
            log_det = log_det + ld
        return h.reshape(-1), log_det

    c = f(torch.zeros(6, dtype=F64))[0]
    a = torch.autograd.functional.jacobian(lambda v: f(v)[0], torch.zeros(6, dtype=F64))
    mean = torch.linalg.solve(a, -c)
    cov = torch.linalg.inv(a.T @ a)
    gauss = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
    x = _x((6,), seed=9)
    z, log_det = f(x)
    ours = standard_normal_log_prob(z[None])[0] + log_det[0]
    torch.testing.assert_close(ours, gauss.log_prob(x), rtol=0, atol=1e-10)
    flipped = standard_normal_log_prob(z[None])[0] - log_det[0]
    assert abs(float((flipped - gauss.log_prob(x)).detach())) > 0.5


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_log_det_on_cuda_equals_cpu(monkeypatch):
    # cuDNN convolutions default to TF32 (10-bit mantissa); compare float32 with float32.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    torch.manual_seed(0)
    model = _randomize(Glow(1, 28, levels=2, steps=2, hidden=16, logit=0.05), scale=0.05)
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z_cpu, ld_cpu = model(x)
        lp_cpu = model.log_prob_unit(x)
        model_gpu = model.cuda()
        z_gpu, ld_gpu = model_gpu(x.cuda())
        lp_gpu = model_gpu.log_prob_unit(x.cuda())
        back = model_gpu.inverse(z_gpu)
    torch.testing.assert_close(ld_gpu.cpu(), ld_cpu, rtol=1e-5, atol=1e-2)
    torch.testing.assert_close(lp_gpu.cpu(), lp_cpu, rtol=1e-5, atol=1e-2)
    torch.testing.assert_close(z_gpu.cpu(), z_cpu, rtol=1e-4, atol=1e-4)
    assert (back.cpu() - x).abs().max() <= 1e-4
