"""Written-out RNN, LSTM, GRU and their cells against torch.nn (values and gradients of the
inputs, the initial states and every parameter, float64, after load_state_dict); dropout
between layers; shape errors; and the GRU's update-gate convention (notes sec. 5.4.2)."""

import itertools

import pytest
import torch

from deepnotes.recurrent import GRU, LSTM, RNN, ElmanCell, GRUCell, LSTMCell
from deepnotes.recurrent.cells import gru_step

DT = torch.float64
L, N, H_IN, H = 5, 3, 3, 4

MODELS = {  # name: (ours, torch's, extra arguments)
    "rnn_tanh": (RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, torch.nn.LSTM, {}),
    "gru": (GRU, torch.nn.GRU, {}),
}


def _pair(name: str, **kwargs):
    """Torch's module and ours with its weights loaded, both float64."""
    ours_cls, ref_cls, extra = MODELS[name]
    torch.manual_seed(0)
    ref = ref_cls(H_IN, H, **extra, **kwargs).double()
    ours = ours_cls(H_IN, H, **extra, **kwargs).double()
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _flatten(result) -> list[torch.Tensor]:
    """``(output, h_n)`` or ``(output, (h_n, c_n))`` as a flat list."""
    output, state = result
    return [output, *state] if isinstance(state, tuple) else [output, state]


def _run(module, x, states):
    """Outputs of ``module`` and the gradients of a fixed random projection of all of them
    with respect to the input, the initial states and every parameter."""
    x = x.detach().clone().requires_grad_(True)
    states = [s.detach().clone().requires_grad_(True) for s in states]
    hx = None if not states else states[0] if len(states) == 1 else tuple(states)
    outs = _flatten(module(x, hx))
    gen = torch.Generator().manual_seed(7)
    loss = sum((o * torch.randn(o.shape, dtype=DT, generator=gen)).sum() for o in outs)
    module.zero_grad()
    loss.backward()
    grads = [x.grad, *(s.grad for s in states)]
    params = {k: p.grad.clone() for k, p in module.named_parameters()}
    return [o.detach() for o in outs], grads, params


def _assert_parity(ours, ref, x, states):
    outs_a, grads_a, params_a = _run(ours, x, states)
    outs_b, grads_b, params_b = _run(ref, x, states)
    assert len(outs_a) == len(outs_b)
    for a, b in zip(outs_a + grads_a, outs_b + grads_b, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert params_a.keys() == params_b.keys()
    for k in params_b:
        torch.testing.assert_close(params_a[k], params_b[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,with_state",
                         list(itertools.product([1, 3], [False, True], [False, True],
                                                [False, True])))
def test_layers_match_torch_values_and_grads_float64(name, num_layers, bidirectional,
                                                     batch_first, with_state):
    ours, ref = _pair(name, num_layers=num_layers, bidirectional=bidirectional,
                      batch_first=batch_first)
    gen = torch.Generator().manual_seed(1)
    shape = (N, L, H_IN) if batch_first else (L, N, H_IN)
    x = torch.randn(shape, dtype=DT, generator=gen)
    rows = num_layers * (2 if bidirectional else 1)
    count = (2 if name == "lstm" else 1) if with_state else 0
    states = [torch.randn(rows, N, H, dtype=DT, generator=gen) for _ in range(count)]
    _assert_parity(ours, ref, x, states)


@pytest.mark.parametrize("name", list(MODELS))
def test_layers_without_bias_and_unbatched_input_match_torch(name):
    # batch_first does not apply to unbatched input, in torch and here.
    ours, ref = _pair(name, num_layers=2, bidirectional=True, bias=False, batch_first=True)
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in ref.named_parameters()]
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(L, H_IN, dtype=DT, generator=gen)  # unbatched (L, H_in)
    states = [torch.randn(4, H, dtype=DT, generator=gen) for _ in range(2 if name == "lstm"
                                                                        else 1)]
    _assert_parity(ours, ref, x, states)
    _assert_parity(ours, ref, x, [])
    assert ours(x)[0].shape == (L, 2 * H)


@pytest.mark.parametrize("name", list(MODELS))
def test_same_seed_gives_torchs_parameter_names_shapes_and_values(name):
    ours_cls, ref_cls, extra = MODELS[name]
    torch.manual_seed(3)
    ref = ref_cls(H_IN, H, num_layers=2, bidirectional=True, **extra)
    torch.manual_seed(3)
    ours = ours_cls(H_IN, H, num_layers=2, bidirectional=True, **extra)
    ref_state, our_state = ref.state_dict(), ours.state_dict()
    assert list(our_state) == list(ref_state)  # weight_ih_l0, ..., bias_hh_l1_reverse
    for k in ref_state:
        assert torch.equal(our_state[k], ref_state[k]), k
    gates = {"lstm": 4, "gru": 3}.get(name, 1)
    assert our_state["weight_ih_l1_reverse"].shape == (gates * H, 2 * H)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


def test_lstm_returns_output_and_state_pair_like_torch():
    ours, _ = _pair("lstm", num_layers=2)
    output, (h_n, c_n) = ours(torch.zeros(L, N, H_IN, dtype=DT))
    assert output.shape == (L, N, H) and h_n.shape == c_n.shape == (2, N, H)
    torch.testing.assert_close(output[-1], h_n[-1])  # the top layer's last state


@pytest.mark.parametrize("name", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_cells_match_torch_cells_values_and_grads_float64(name):
    ours_cls = {"rnn_tanh": ElmanCell, "rnn_relu": ElmanCell, "lstm": LSTMCell,
                "gru": GRUCell}[name]
    ref_cls = {"rnn_tanh": torch.nn.RNNCell, "rnn_relu": torch.nn.RNNCell,
               "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[name]
    extra = {"nonlinearity": name[4:]} if name.startswith("rnn") else {}
    torch.manual_seed(4)
    ref = ref_cls(H_IN, H, **extra).double()
    torch.manual_seed(4)
    ours = ours_cls(H_IN, H, **extra).double()
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(),
                                                 ref.state_dict().values(), strict=True))
    gen = torch.Generator().manual_seed(5)
    for batch in ((N,), ()):  # batched and unbatched
        x = torch.randn(*batch, H_IN, dtype=DT, generator=gen)
        n_states = 2 if name == "lstm" else 1
        states = [torch.randn(*batch, H, dtype=DT, generator=gen) for _ in range(n_states)]
        for given in (states, []):
            outs = []
            for cell in (ours, ref):
                leaves = [t.clone().requires_grad_(True) for t in [x, *given]]
                hx = None if not given else leaves[1] if n_states == 1 else tuple(leaves[1:])
                out = cell(leaves[0], hx)
                out = list(out) if isinstance(out, tuple) else [out]
                sum((o * (k + 1)).sum() for k, o in enumerate(out)).backward()
                outs.append([o.detach() for o in out] + [t.grad for t in leaves])
                cell.zero_grad()
            for a, b in zip(*outs, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# Dropout ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_dropout_is_off_in_eval_and_matches_torch_eval(name):
    ours, ref = _pair(name, num_layers=3, dropout=0.5)
    ours.eval(), ref.eval()
    x = torch.randn(L, N, H_IN, dtype=DT, generator=torch.Generator().manual_seed(6))
    _assert_parity(ours, ref, x, [])


@pytest.mark.parametrize("name", list(MODELS))
def test_dropout_acts_between_layers_only_in_training(name):
    x = torch.randn(L, N, H_IN, dtype=DT, generator=torch.Generator().manual_seed(8))
    # One layer: nothing lies between layers, so training equals eval (torch warns; so do we).
    with pytest.warns(UserWarning, match="between layers"):
        single = MODELS[name][0](H_IN, H, dropout=0.5, **MODELS[name][2]).double()
    torch.testing.assert_close(_flatten(single.train()(x)), _flatten(single.eval()(x)))
    # p = 1 zeros layer 1's outputs: deterministic, so equal to torch in training mode; layer
    # 0's final state is untouched (no dropout on the recurrence) and layer 1 sees zero input.
    ours, ref = _pair(name, num_layers=2, dropout=1.0)
    train_ours, train_ref = _flatten(ours.train()(x)), _flatten(ref.train()(x))
    for a, b in zip(train_ours, train_ref, strict=True):
        torch.testing.assert_close(a, b)
    eval_ours = _flatten(ours.eval()(x))
    for trained, evaluated in zip(train_ours[1:], eval_ours[1:], strict=True):  # h_n (, c_n)
        torch.testing.assert_close(trained[0], evaluated[0])
    top = MODELS[name][0](H, H, **MODELS[name][2]).double()
    top.load_state_dict({k.replace("_l1", "_l0"): v for k, v in ours.state_dict().items()
                         if "_l1" in k})
    torch.testing.assert_close(train_ours[0], top(torch.zeros(L, N, H, dtype=DT))[0])
    # 0 < p < 1: training differs from eval and from itself.
    ours.dropout = 0.5
    ours.train()
    first, second = ours(x)[0], ours(x)[0]
    assert not torch.allclose(first, second)
    assert not torch.allclose(first, ours.eval()(x)[0])


# Errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_bad_shapes_raise_value_errors_saying_expected_and_got(name):
    ours, _ = _pair(name, num_layers=2, bidirectional=True)
    n_states = 2 if name == "lstm" else 1

    def hx(*shape):
        s = torch.zeros(*shape, dtype=DT)
        return s if n_states == 1 else (s, s)

    with pytest.raises(ValueError, match=r"expects input \(L, N, 3\).*got \(5, 2, 7\)"):
        ours(torch.zeros(L, 2, 7, dtype=DT))
    with pytest.raises(ValueError, match=r"got \(1, 5, 2, 3\)"):
        ours(torch.zeros(1, L, 2, H_IN, dtype=DT))
    with pytest.raises(ValueError, match=r"initial state of shape \(4, 2, 4\).*got \(2, 2, 4\)"):
        ours(torch.zeros(L, 2, H_IN, dtype=DT), hx(2, 2, H))
    with pytest.raises(ValueError, match=r"initial state of shape \(4, 4\).*got \(4, 1, 4\)"):
        ours(torch.zeros(L, H_IN, dtype=DT), hx(4, 1, H))
    with pytest.raises(ValueError, match="length >= 1, got length 0"):
        ours(torch.zeros(0, 2, H_IN, dtype=DT))
    batch_first = MODELS[name][0](H_IN, H, batch_first=True, **MODELS[name][2])
    with pytest.raises(ValueError, match=r"expects input \(N, L, 3\)"):
        batch_first(torch.zeros(2, L, 5))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="hx = \\(h_0, c_0\\)"):
        LSTM(H_IN, H)(torch.zeros(L, N, H_IN), torch.zeros(1, N, H))
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        RNN(H_IN, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\], got 1.5"):
        GRU(H_IN, H, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="must be positive"):
        LSTM(0, H)
    with pytest.raises(ValueError, match=r"ElmanCell expects input \(N, 3\).*got \(2, 4\)"):
        ElmanCell(H_IN, H)(torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"state of shape \(2, 4\), got \(3, 4\)"):
        GRUCell(H_IN, H)(torch.zeros(2, H_IN), torch.zeros(3, H))
    with pytest.raises(ValueError, match=r"state of shape \(4,\), got \(1, 4\)"):
        ElmanCell(H_IN, H)(torch.zeros(H_IN), torch.zeros(1, H))
    with pytest.raises(ValueError, match="LSTMCell expects hx = \\(h_0, c_0\\), got Tensor"):
        LSTMCell(H_IN, H)(torch.zeros(2, H_IN), torch.zeros(2, H))


# The GRU's update gate (notes sec. 5.4.2) ------------------------------------------------


def _notes_gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """The GRU as the notes describe it: z -> 1 moves h_t to the candidate,
    h_t = (1 - z) h_{t-1} + z n (Chung et al. 2014's form)."""
    i_r, i_z, i_n = (x @ weight_ih.T + bias_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ weight_hh.T + bias_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * h + z * n


def _gru_with_update_bias(value: float):
    ours, ref = _pair("gru")
    for module in (ours, ref):
        with torch.no_grad():
            module.bias_hh_l0[H:2 * H] = value  # the z rows of (r, z, n)
    return ours, ref


def test_gru_update_gate_near_one_keeps_the_previous_state_in_torchs_convention():
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(L, N, H_IN, dtype=DT, generator=gen)
    h_0 = torch.randn(1, N, H, dtype=DT, generator=gen)
    ours, ref = _gru_with_update_bias(60.0)  # z = sigmoid(~60) = 1 - 1e-26
    for module in (ours, ref):
        output, h_n = module(x, h_0)
        torch.testing.assert_close(output, h_0.expand(L, N, H))  # every h_t = h_0
    # The notes' convention with the same weights and z = 1 takes the candidate instead.
    weights = [p.detach() for p in ours.parameters()]
    h_notes = _notes_gru_step(x[0], h_0[0], *weights)
    h_candidate = gru_step(x[0], h_0[0], *weights[:3],
                           torch.cat([weights[3][:H], -weights[3][H:2 * H], weights[3][2 * H:]]))
    torch.testing.assert_close(h_notes, h_candidate)  # z -> 0 in torch's form: h_t = n
    assert (h_notes - h_0[0]).abs().max() > 0.1


def test_gru_reset_in_torchs_convention_is_z_zero_and_uses_only_the_input():
    """The notes' reset (r = 0, z = 1: h_t from x_t alone) is r = 0, z = 0 here."""
    ours, _ = _gru_with_update_bias(-60.0)
    with torch.no_grad():
        ours.bias_hh_l0[:H] = -60.0  # r = 0
    gen = torch.Generator().manual_seed(10)
    x = torch.randn(1, N, H_IN, dtype=DT, generator=gen)
    a, b = (ours(x, torch.randn(1, N, H, dtype=DT, generator=gen))[0] for _ in range(2))
    torch.testing.assert_close(a, b)  # two different h_0, the same h_1


def test_notes_gru_convention_is_torchs_with_the_update_gate_negated():
    """1 - sigmoid(a) = sigmoid(-a): negating the z rows of both weights and biases maps the
    notes' GRU onto torch's exactly, so the two describe the same family of models."""
    _, ref = _pair("gru")
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(N, H_IN, dtype=DT, generator=gen)
    h = torch.randn(N, H, dtype=DT, generator=gen)
    sign = torch.ones(3 * H, 1, dtype=DT)
    sign[H:2 * H] = -1
    flipped = [p.detach() * (sign if p.dim() == 2 else sign[:, 0]) for p in ref.parameters()]
    with torch.no_grad():
        torch_h = ref(x.unsqueeze(0), h.unsqueeze(0))[0][0]
    torch.testing.assert_close(_notes_gru_step(x, h, *flipped), torch_h)
    unflipped = [p.detach() for p in ref.parameters()]
    assert (_notes_gru_step(x, h, *unflipped) - torch_h).abs().max() > 1e-2
