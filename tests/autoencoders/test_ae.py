"""Auto-encoders of notes 7.1: the contractive closed form against autograd (float64), the
sparsity penalties, the corruptions, the models' shapes and parameter counts, and the two
statements of 7.1 about the reconstruction objective."""

from __future__ import annotations

import pytest
import torch

from deepnotes.autoencoders.ae import (
    ConvAutoEncoder,
    MLPAutoEncoder,
    fraction_unexplained,
    gaussian_noise,
    jacobian_frobenius_sq,
    kl_sparsity,
    l1_sparsity,
    linear_probe_accuracy,
    mask_noise,
    reconstruction_mse,
    sigmoid_jacobian_frobenius_sq,
)


def _sigmoid_layer(seed: int = 0, d_in: int = 7, d_code: int = 5):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(d_code, d_in, generator=g, dtype=torch.float64)
    bias = torch.randn(d_code, generator=g, dtype=torch.float64)
    x = torch.randn(4, d_in, generator=g, dtype=torch.float64)
    return weight, bias, x


def test_sigmoid_contractive_closed_form_matches_autograd_jacobian_float64():
    weight, bias, x = _sigmoid_layer()

    def encoder(v):
        return torch.sigmoid(v @ weight.T + bias)

    closed = sigmoid_jacobian_frobenius_sq(encoder(x), weight)  # (N,)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: encoder(v.unsqueeze(0))[0], x[i])
        torch.testing.assert_close(closed[i], jac.square().sum(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(closed, jacobian_frobenius_sq(encoder, x), rtol=1e-12,
                               atol=1e-14)


def test_contractive_closed_form_has_the_gradient_of_the_true_jacobian_norm_float64():
    weight, bias, x = _sigmoid_layer(seed=1)
    weight.requires_grad_(True)
    closed = sigmoid_jacobian_frobenius_sq(torch.sigmoid(x @ weight.T + bias), weight).sum()
    (grad_closed,) = torch.autograd.grad(closed, weight)
    total = 0.0
    for i in range(len(x)):  # double backprop through the autograd Jacobian
        jac = torch.autograd.functional.jacobian(
            lambda v: torch.sigmoid(v @ weight.T + bias), x[i], create_graph=True)
        total = total + jac.square().sum()
    (grad_auto,) = torch.autograd.grad(total, weight)
    torch.testing.assert_close(grad_closed, grad_auto, rtol=1e-10, atol=1e-12)


def test_jacobian_of_a_linear_encoder_is_its_matrix():
    a = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x = torch.randn(5, 6, dtype=torch.float64)
    norms = jacobian_frobenius_sq(lambda v: v @ a.T, x)
    torch.testing.assert_close(norms, a.square().sum().expand(5))


def test_mlp_autoencoder_closed_form_uses_the_encoder_weight():
    torch.manual_seed(0)
    model = MLPAutoEncoder(12, 4, tied=True).double()
    x = torch.rand(3, 12, dtype=torch.float64)
    closed = sigmoid_jacobian_frobenius_sq(model.encode(x), model.encoder.linears[0].weight)
    torch.testing.assert_close(closed, jacobian_frobenius_sq(model.encode, x), rtol=1e-12,
                               atol=1e-14)


def test_l1_sparsity_is_the_notes_phi_per_sample():
    h = torch.tensor([[0.5, -1.0, 0.0], [2.0, 0.0, 0.0]])
    assert l1_sparsity(h).tolist() == [1.5, 2.0]


def test_kl_sparsity_is_zero_at_the_target_rate_and_matches_torch_distributions():
    rho = 0.1
    assert float(kl_sparsity(torch.full((6, 3), rho, dtype=torch.float64), rho)) == \
        pytest.approx(0.0, abs=1e-15)
    h = torch.rand(50, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    rho_hat = h.mean(0)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Bernoulli(probs=torch.full_like(rho_hat, rho)),
        torch.distributions.Bernoulli(probs=rho_hat)).sum()
    torch.testing.assert_close(kl_sparsity(h, rho), expected)
    assert float(kl_sparsity(h, rho)) > 0
    with pytest.raises(ValueError, match="rho"):
        kl_sparsity(h, 1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        kl_sparsity(h - 0.5, rho)


def test_mask_noise_zeroes_a_fraction_p_reproducibly():
    x = torch.ones(200, 784)
    a = mask_noise(x, 0.25, torch.Generator().manual_seed(0))
    b = mask_noise(x, 0.25, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and set(a.unique().tolist()) == {0.0, 1.0}
    assert abs(float((a == 0).float().mean()) - 0.25) < 0.005
    assert torch.equal(mask_noise(x, 0.0), x)
    with pytest.raises(ValueError, match="p"):
        mask_noise(x, 1.0)


def test_gaussian_noise_adds_sigma_times_a_reproducible_normal():
    x = torch.full((400, 784), 0.5)
    a = gaussian_noise(x, 0.3, torch.Generator().manual_seed(1))
    assert torch.equal(a, gaussian_noise(x, 0.3, torch.Generator().manual_seed(1)))
    eta = a - x
    assert abs(float(eta.mean())) < 0.003 and abs(float(eta.std()) - 0.3) < 0.003
    with pytest.raises(ValueError, match="sigma"):
        gaussian_noise(x, -1.0)


def test_mlp_autoencoder_shapes_and_exact_parameter_counts():
    x = torch.rand(5, 784)
    untied = MLPAutoEncoder(784, 32)
    code, rec = untied(x)
    assert code.shape == (5, 32) and rec.shape == (5, 784)
    assert sum(p.numel() for p in untied.parameters()) == (784 * 32 + 32) + (32 * 784 + 784)
    tied = MLPAutoEncoder(784, 32, tied=True)
    assert sum(p.numel() for p in tied.parameters()) == 784 * 32 + 32 + 784
    deep = MLPAutoEncoder(784, 16, hidden=(64,))
    assert sum(p.numel() for p in deep.parameters()) == (
        784 * 64 + 64 + 64 * 16 + 16 + 16 * 64 + 64 + 64 * 784 + 784)
    with pytest.raises(ValueError, match="tied"):
        MLPAutoEncoder(784, 16, hidden=(64,), tied=True)


def test_tied_decoder_is_the_encoder_weight_transposed():
    torch.manual_seed(0)
    model = MLPAutoEncoder(10, 3, tied=True)
    x = torch.rand(4, 10)
    h = torch.sigmoid(x @ model.encoder.linears[0].weight.T + model.encoder.linears[0].bias)
    expected = torch.sigmoid(h @ model.encoder.linears[0].weight + model.decoder_bias)
    torch.testing.assert_close(model(x).reconstruction, expected)


def test_fused_autoencoder_equals_the_written_out_one():
    torch.manual_seed(0)
    plain = MLPAutoEncoder(20, 6, tied=True)
    fused = MLPAutoEncoder(20, 6, tied=True, fused=True)
    fused.load_state_dict(plain.state_dict())
    x = torch.rand(3, 20)
    torch.testing.assert_close(fused(x).reconstruction, plain(x).reconstruction)


def test_conv_autoencoder_shapes_parameter_count_and_it_fits_a_batch():
    torch.manual_seed(0)
    model = ConvAutoEncoder(code_features=8, channels=4)
    x = torch.zeros(16, 1, 28, 28)  # 16 images of one vertical bar each, at column 1 + i
    for i in range(16):
        x[i, 0, 4:24, 1 + i:3 + i] = 1.0
    code, rec = model(x)
    assert code.shape == (16, 8) and rec.shape == (16, 1, 28, 28)
    c = 4
    expected = ((1 * c * 9 + c) + (c * 2 * c * 9 + 2 * c) + (2 * c * 49 * 8 + 8)
                + (8 * 2 * c * 49 + 2 * c * 49) + (2 * c * c * 9 + c) + (c * 1 * 9 + 1))
    assert sum(p.numel() for p in model.parameters()) == expected
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        first = float(reconstruction_mse(model(x).reconstruction, x))
    for _ in range(60):
        loss = reconstruction_mse(model(x).reconstruction, x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first
    with pytest.raises(ValueError, match="28, 28"):
        model(torch.rand(2, 784))


def test_linear_probe_is_deterministic_and_separates_separable_classes():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    x = torch.randn(300, 5, generator=g) * 0.1 + torch.nn.functional.one_hot(y, 5).float()
    a = linear_probe_accuracy(x[:200], y[:200], x[200:], y[200:], classes=3)
    b = linear_probe_accuracy(x[:200], y[:200], x[200:], y[200:], classes=3)
    assert a == b == 1.0
    shuffled = linear_probe_accuracy(x[:200], y[:200][torch.randperm(200, generator=g)],
                                     x[200:], y[200:], classes=3)
    assert shuffled < 0.6


def test_fraction_unexplained_is_zero_for_a_copy_and_one_for_the_mean():
    x = torch.rand(50, 9)
    assert fraction_unexplained(x, x) == 0.0
    assert fraction_unexplained(x.mean(0).expand_as(x), x) == pytest.approx(1.0)


# ----------------------------------------------------------------- notes 7.1, decided here
def test_identity_solves_the_reconstruction_problem_remark_r():
    """7.1 (R): AE[I] = I attains the minimum 0. A ReLU AE as wide as the input with W = I,
    b = 0 and a linear decoder I is that identity on pixels (>= 0)."""
    model = MLPAutoEncoder(784, 784, code_activation="relu", output_activation="identity")
    with torch.no_grad():
        for linear in (model.encoder.linears[0], model.decoder.linears[0]):
            linear.weight.copy_(torch.eye(784))
            linear.bias.zero_()
    x = torch.rand(32, 784)
    assert float(reconstruction_mse(model(x).reconstruction, x)) == 0.0


def test_minimizing_over_the_input_too_is_solved_by_any_untrained_autoencoder():
    """Def. 7.1.1 minimizes ``||AE[I] - I||`` over theta_E, theta_D *and* I in Omega. Then any
    AE with a fixed point attains 0, whatever its weights: a bias-free ReLU AE maps I = 0 to
    0. The objective must average over the data, min_theta 1/N sum_i ||AE[I_i] - I_i||,
    which random weights do not solve."""
    torch.manual_seed(0)
    zero = torch.zeros(1, 784)
    data = torch.rand(64, 784)
    for _ in range(3):  # three random, untrained auto-encoders
        model = MLPAutoEncoder(784, 16, code_activation="relu", output_activation="identity",
                               bias=False)
        assert float((model(zero).reconstruction - zero).norm()) == 0.0  # notes' min: 0
        assert float(reconstruction_mse(model(data).reconstruction, data)) > 0.05
