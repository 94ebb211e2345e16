"""Written-out multi-layer ``RNN``, ``LSTM`` and ``GRU`` with ``torch.nn``'s interface
(notes sec. 5.2, 5.4.1, 5.4.2).

Each forward is the recurrence as the notes draw it unrolled (Figure 5.1): a Python loop over
layers, directions and time steps calling one step of :mod:`deepnotes.recurrent.cells`. It is
for reading and for parity; experiments that need speed use ``torch.nn.LSTM`` (fused kernels),
which these match to float64 round-off after ``load_state_dict``.

Layout, as in torch:

* parameters ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, with
  suffix ``_reverse`` for the backward direction; layer ``k > 0`` reads the ``D * H`` outputs
  of layer ``k - 1`` (``D = 2`` if bidirectional);
* the states ``h_0``/``h_n`` (and ``c_0``/``c_n``) are ``(D * num_layers, N, H)``, row
  ``k * D + d`` for layer ``k`` and direction ``d``;
* the reverse direction reads the sequence from the end; its output at step ``t`` has seen
  ``x_t .. x_{L-1}``, and its ``h_n`` is its state after ``x_0``;
* ``dropout`` drops the outputs of every layer but the last, in training only.

``proj_size`` and packed sequences are not implemented.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from deepnotes.recurrent.cells import elman_step, gru_step, lstm_step

State = tuple[Tensor, ...]  # (h,) for RNN and GRU, (h, c) for LSTM; each (N, H)


class RNNOutput(NamedTuple):
    output: Tensor  # (L, N, D*H), or (N, L, D*H) if batch_first, or (L, D*H) unbatched
    h_n: Tensor  # (D*num_layers, N, H), or (D*num_layers, H) unbatched


class LSTMState(NamedTuple):
    h_n: Tensor  # (D*num_layers, N, H)
    c_n: Tensor  # (D*num_layers, N, H)


class LSTMOutput(NamedTuple):
    output: Tensor
    state: LSTMState  # unpacks as torch's (output, (h_n, c_n))


class _RecurrentLayer(nn.Module):
    """What RNN, LSTM and GRU share: parameters, shape checks and the loops. A subclass
    names its number of stacked gates and its one-step ``_step``."""

    gates = 1
    num_states = 1  # h; the LSTM also carries c

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"input_size, hidden_size and num_layers must be positive, got "
                             f"{input_size}, {hidden_size}, {num_layers}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Number) \
                or not 0 <= dropout <= 1:
            raise ValueError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"dropout={dropout} acts between layers only; with num_layers=1 it "
                          "does nothing", stacklevel=2)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        size = self.gates * hidden_size
        # Registered in torch's order (layer, direction, ih/hh, weight/bias), so that
        # reset_parameters draws the same numbers as torch from the same seed.
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for direction in range(self.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                setattr(self, "weight_ih" + suffix, nn.Parameter(torch.empty(size, layer_input)))
                setattr(self, "weight_hh" + suffix, nn.Parameter(torch.empty(size, hidden_size)))
                if bias:
                    setattr(self, "bias_ih" + suffix, nn.Parameter(torch.empty(size)))
                    setattr(self, "bias_hh" + suffix, nn.Parameter(torch.empty(size)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter uniform in ``+-1/sqrt(H)`` (torch's default)."""
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _weights(self, layer: int, direction: int) -> tuple[Tensor | None, ...]:
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        return (getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix),
                getattr(self, "bias_ih" + suffix, None), getattr(self, "bias_hh" + suffix, None))

    def _step(self, x: Tensor, state: State, weights: tuple[Tensor | None, ...]) -> State:
        raise NotImplementedError

    def _check(self, input: Tensor, hx: tuple[Tensor | None, ...]
               ) -> tuple[Tensor, list[Tensor], bool]:
        """Time-major batched input ``(L, N, H_in)`` and states ``(D*num_layers, N, H)``."""
        name = type(self).__name__
        if input.dim() not in (2, 3) or input.shape[-1] != self.input_size:
            layout = "(N, L, {0})" if self.batch_first else "(L, N, {0})"
            raise ValueError(f"{name} expects input {layout.format(self.input_size)} or "
                             f"(L, {self.input_size}) unbatched, got {tuple(input.shape)}")
        unbatched = input.dim() == 2
        if unbatched:
            x = input.unsqueeze(1)  # (L, 1, H_in)
        else:
            x = input.transpose(0, 1) if self.batch_first else input  # (L, N, H_in)
        if x.shape[0] == 0:
            raise ValueError(f"{name} expects a sequence of length >= 1, got length 0")
        rows, batch = self.num_directions * self.num_layers, x.shape[1]
        expected = (rows, self.hidden_size) if unbatched else (rows, batch, self.hidden_size)
        states = []
        for h in hx:
            if h is None:
                h = x.new_zeros(expected)
            elif tuple(h.shape) != expected:
                raise ValueError(f"{name} expects an initial state of shape {expected} "
                                 f"(D*num_layers, {'' if unbatched else 'N, '}H), got "
                                 f"{tuple(h.shape)}")
            states.append(h.unsqueeze(1) if unbatched else h)  # (D*num_layers, N, H)
        return x, states, unbatched

    def _run_direction(self, x: Tensor, state: State, weights: tuple[Tensor | None, ...],
                       reverse: bool) -> tuple[Tensor, State]:
        """The recurrence over one sequence: ``x (L, N, H_in)`` -> outputs ``(L, N, H)``."""
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        outputs: list[Tensor | None] = [None] * x.shape[0]
        for t in steps:
            state = self._step(x[t], state, weights)
            outputs[t] = state[0]  # h_t, (N, H)
        return torch.stack(outputs), state  # (L, N, H)

    def _forward(self, input: Tensor, hx: tuple[Tensor | None, ...]
                 ) -> tuple[Tensor, list[Tensor]]:
        x, initial, unbatched = self._check(input, hx)
        final: list[list[Tensor]] = [[] for _ in initial]
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                row = layer * self.num_directions + direction
                state = tuple(s[row] for s in initial)
                out, state = self._run_direction(x, state, self._weights(layer, direction),
                                                 reverse=direction == 1)
                outputs.append(out)
                for acc, s in zip(final, state, strict=True):
                    acc.append(s)
            x = torch.cat(outputs, dim=-1)  # (L, N, D*H)
            if layer < self.num_layers - 1 and self.dropout > 0:
                x = F.dropout(x, self.dropout, training=self.training)
        states = [torch.stack(s) for s in final]  # each (D*num_layers, N, H)
        if unbatched:
            return x.squeeze(1), [s.squeeze(1) for s in states]
        return (x.transpose(0, 1) if self.batch_first else x), states

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(_RecurrentLayer):
    """The multi-layer Elman network, ``torch.nn.RNN``'s interface (notes sec. 5.2)::

        h_t = sigma(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   sigma = tanh or relu
    Args:
        input_size, hidden_size: ``H_in`` and ``H``.
        num_layers: stacked layers; layer ``k > 0`` reads layer ``k - 1``'s outputs.
        bias: learn ``b_ih`` and ``b_hh``.
        batch_first: input and output ``(N, L, .)`` instead of ``(L, N, .)`` (not the states).
        dropout: drop probability on each layer's outputs but the last's, in training.
        bidirectional: add a layer reading the sequence backwards; outputs concatenate.
        nonlinearity: ``'tanh'`` or ``'relu'``.
    Returns:
        ``RNNOutput(output, h_n)``: ``output`` is the last layer's ``h_t`` for every ``t``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional)

    def _step(self, x: Tensor, state: State, weights: tuple[Tensor | None, ...]) -> State:
        return (elman_step(x, state[0], *weights, nonlinearity=self.nonlinearity),)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> RNNOutput:
        output, (h_n,) = self._forward(input, (hx,))
        return RNNOutput(output, h_n)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, nonlinearity={self.nonlinearity!r}"


class LSTM(_RecurrentLayer):
    """Multi-layer LSTM, ``torch.nn.LSTM``'s interface (notes sec. 5.4.1; see
    :func:`deepnotes.recurrent.cells.lstm_step`). Gates stacked ``i, f, g, o``.
    Args:
        input_size, hidden_size: ``H_in`` and ``H``.
        num_layers: stacked layers; layer ``k > 0`` reads layer ``k - 1``'s outputs.
        bias: learn ``b_ih`` and ``b_hh``.
        batch_first: input and output ``(N, L, .)`` instead of ``(L, N, .)`` (not the states).
        dropout: drop probability on each layer's outputs but the last's, in training.
        bidirectional: add a layer reading the sequence backwards; outputs concatenate.
    Returns:
        ``LSTMOutput(output, (h_n, c_n))``; ``hx``, if given, is ``(h_0, c_0)``.
    """

    gates, num_states = 4, 2

    def _step(self, x: Tensor, state: State, weights: tuple[Tensor | None, ...]) -> State:
        return lstm_step(x, *state, *weights)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> LSTMOutput:
        if hx is not None and (not isinstance(hx, tuple | list) or len(hx) != 2):
            raise ValueError(f"LSTM expects hx = (h_0, c_0), got {type(hx).__name__}"
                             + (f" of length {len(hx)}" if isinstance(hx, tuple | list) else ""))
        output, (h_n, c_n) = self._forward(input, (None, None) if hx is None else tuple(hx))
        return LSTMOutput(output, LSTMState(h_n, c_n))


class GRU(_RecurrentLayer):
    """Multi-layer GRU, ``torch.nn.GRU``'s interface (notes sec. 5.4.2; Cho et al. 2014).
    Gates stacked ``r, z, n``::

        r = sigma(W_ir x + b_ir + W_hr h + b_hr),  z = sigma(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h_t = (1 - z) * n + z * h_{t-1}

    **Gate convention.** Here (torch, and Cho et al. 2014) ``z -> 1`` keeps the old state.
    The notes (5.4.2) describe the mirror image, "if z_t is closer to 1, h_t will be less
    similar to h_{t-1}", i.e. ``h_t = (1 - z) h_{t-1} + z n`` (Chung et al. 2014's form). The
    two are the same model with ``z`` relabelled ``1 - z``: since ``1 - sigmoid(a) =
    sigmoid(-a)``, negating the ``z`` rows of ``weight_ih``, ``weight_hh`` and both biases maps
    one onto the other. A reset in the notes' sense (``h_t`` from ``x_t`` alone) is ``r = 0,
    z = 0`` here, ``r = 0, z = 1`` there. See docs/ERRATA.md, chapter 5.
    Args:
        input_size, hidden_size: ``H_in`` and ``H``.
        num_layers: stacked layers; layer ``k > 0`` reads layer ``k - 1``'s outputs.
        bias: learn ``b_ih`` and ``b_hh``.
        batch_first: input and output ``(N, L, .)`` instead of ``(L, N, .)`` (not the states).
        dropout: drop probability on each layer's outputs but the last's, in training.
        bidirectional: add a layer reading the sequence backwards; outputs concatenate.
    Returns:
        ``RNNOutput(output, h_n)``.
    """

    gates = 3

    def _step(self, x: Tensor, state: State, weights: tuple[Tensor | None, ...]) -> State:
        return (gru_step(x, state[0], *weights),)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> RNNOutput:
        output, (h_n,) = self._forward(input, (hx,))
        return RNNOutput(output, h_n)
