"""MLP: shapes, parameter order and count, activations, and the linear collapse (sec. 2.3)."""

import pytest
import torch

from deepnotes.nn import MLP, compose_affine


def test_parameter_order_shapes_and_count():
    mlp = MLP([5, 7, 3, 2])
    params = list(mlp.parameters())
    assert [tuple(p.shape) for p in params] == [(7, 5), (7,), (3, 7), (3,), (2, 3), (2,)]
    assert params[0] is mlp.linears[0].weight and params[1] is mlp.linears[0].bias
    assert sum(p.numel() for p in params) == 5 * 7 + 7 + 7 * 3 + 3 + 3 * 2 + 2  # = 74
    assert mlp(torch.randn(4, 5)).shape == (4, 2)


@pytest.mark.parametrize("activation, ref", [
    ("relu", torch.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh),
    (None, lambda x: x), ("identity", lambda x: x),
])
def test_forward_matches_torch_sequential(activation, ref):
    torch.manual_seed(0)
    mlp = MLP([4, 6, 6, 3], activation=activation, output_activation="sigmoid").double()
    x = torch.randn(8, 4, dtype=torch.float64)
    a = x
    for i, lin in enumerate(mlp.linears):
        a = torch.nn.functional.linear(a, lin.weight, lin.bias)
        a = torch.sigmoid(a) if i == len(mlp.linears) - 1 else ref(a)
    torch.testing.assert_close(mlp(x), a)


def test_linear_mlp_collapses_to_one_affine_map():
    torch.manual_seed(1)
    mlp = MLP([10, 32, 16, 32, 4], activation=None).double()
    W, b = compose_affine(mlp)
    assert W.shape == (4, 10) and b.shape == (4,)
    x = torch.randn(50, 10, dtype=torch.float64)
    torch.testing.assert_close(mlp(x), x @ W.T + b, rtol=0, atol=1e-12)


def test_collapse_without_bias_and_refused_with_nonlinearity():
    mlp = MLP([3, 5, 2], activation="identity", bias=False).double()
    W, b = compose_affine(mlp)
    torch.testing.assert_close(b, torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(W, mlp.linears[1].weight @ mlp.linears[0].weight)
    with pytest.raises(ValueError, match="non-linearities"):
        compose_affine(MLP([3, 5, 2], activation="relu"))


def test_relu_mlp_is_not_affine():
    # A relu net fails the affine identity f(x) + f(-x) = 2 f(0) that every affine map meets.
    torch.manual_seed(2)
    mlp = MLP([3, 64, 1], activation="relu").double()
    x = torch.randn(20, 3, dtype=torch.float64)
    gap = (mlp(x) + mlp(-x) - 2 * mlp(torch.zeros(1, 3, dtype=torch.float64))).abs().max()
    assert gap > 1e-3


def test_notes_index_convention_needs_a_transpose():
    # Sec. 2.2: w_ij is the edge from input i to neuron j and o_j = sum_i w_ij x_i. With that
    # matrix, the layer is W^T x, not W x as the notes write; torch's Linear stores the
    # transpose (weight[j, i]) so that it computes weight @ x.
    w = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # w[i, j]: 2 inputs -> 3 neurons
    x = torch.tensor([1.0, -1.0])
    o = torch.stack([sum(w[i, j] * x[i] for i in range(2)) for j in range(3)])
    torch.testing.assert_close(o, w.T @ x)
    with pytest.raises(RuntimeError):
        w @ x  # the notes' W x does not even have matching shapes here


def test_bad_sizes_and_inputs_raise():
    with pytest.raises(ValueError, match="sizes"):
        MLP([3])
    with pytest.raises(ValueError, match="sizes"):
        MLP([3, 0, 2])
    with pytest.raises(ValueError, match="unknown activation"):
        MLP([3, 2], activation="gelu")
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        MLP([3, 2])(torch.zeros(2, 4))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "identity"])
def test_fused_kernels_match_written_out_activations(activation):
    torch.manual_seed(0)
    slow = MLP([5, 7, 6, 3], activation=activation, output_activation=activation).double()
    fast = MLP([5, 7, 6, 3], activation=activation, output_activation=activation,
               fused=True).double()
    fast.load_state_dict(slow.state_dict())
    x = torch.randn(11, 5, dtype=torch.float64) * 3
    y_slow, y_fast = slow(x), fast(x)
    torch.testing.assert_close(y_fast, y_slow, rtol=1e-12, atol=1e-12)
    g_slow = torch.autograd.grad(y_slow.square().sum(), list(slow.parameters()))
    g_fast = torch.autograd.grad(y_fast.square().sum(), list(fast.parameters()))
    for a, b in zip(g_fast, g_slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def _torch_twin(ours: MLP, dropout_p: float) -> torch.nn.Sequential:
    """torch's Linear -> BatchNorm1d -> ReLU -> Dropout stack with ``ours``' weights."""
    layers, state = [], {}
    for i, lin in enumerate(ours.linears):
        j = len(layers)
        layers.append(torch.nn.Linear(lin.in_features, lin.out_features))
        state[f"{j}.weight"], state[f"{j}.bias"] = lin.weight, lin.bias
        if i < len(ours.linears) - 1:
            layers += [torch.nn.BatchNorm1d(lin.out_features), torch.nn.ReLU(),
                       torch.nn.Dropout(dropout_p)]
            for key, value in ours.norms[i].state_dict().items():
                state[f"{j + 1}.{key}"] = value
    ref = torch.nn.Sequential(*layers).double()
    ref.load_state_dict(state)
    return ref


def test_batchnorm_option_matches_torch_values_grads_and_statistics_float64():
    """``MLP(batchnorm=True)`` is Linear -> BatchNorm1d -> phi per hidden layer (sec. 2.6.1)."""
    torch.manual_seed(0)
    ours = MLP([5, 8, 6, 3], batchnorm=True).double()
    ref = _torch_twin(ours, 0.0)
    x = torch.randn(16, 5, dtype=torch.float64)
    a, b = ours(x), ref(x)  # train mode: batch statistics, running averages updated
    torch.testing.assert_close(a, b)
    linears = [m for m in ref if isinstance(m, torch.nn.Linear)]
    norms = [m for m in ref if isinstance(m, torch.nn.BatchNorm1d)]
    pairs = [(p, q) for mine, theirs in ((ours.linears, linears), (ours.norms, norms))
             for m, t in zip(mine, theirs, strict=True)
             for p, q in ((m.weight, t.weight), (m.bias, t.bias))]
    grads_a = torch.autograd.grad(a.pow(2).sum(), [p for p, _ in pairs])
    grads_b = torch.autograd.grad(b.pow(2).sum(), [q for _, q in pairs])
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(ga, gb)
    torch.testing.assert_close(ours.norms[0].running_mean, ref[1].running_mean)
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(x), ref(x))  # eval: running statistics


def test_dropout_option_is_identity_in_eval_and_drops_hidden_units_in_training():
    torch.manual_seed(0)
    ours = MLP([5, 8, 6, 3], batchnorm=True, dropout_p=0.5).double()
    ref = _torch_twin(ours, 0.5)
    ours.eval(), ref.eval()
    x = torch.randn(16, 5, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x))
    ours.train()
    a, b = ours(x), ours(x)
    assert not torch.equal(a, b)  # fresh masks each forward
    plain = MLP([5, 8, 6, 3])
    assert plain.norms is None and plain.dropout is None
    assert sorted(plain.state_dict()) == ["linears.0.bias", "linears.0.weight",
                                          "linears.1.bias", "linears.1.weight",
                                          "linears.2.bias", "linears.2.weight"]
