"""One time step of the Elman, LSTM and GRU recurrences (notes sec. 5.2, 5.4.1, 5.4.2).

The step functions are pure: ``(x_t, state_{t-1}, weights) -> state_t``, one line per equation.
The layers in :mod:`deepnotes.recurrent.layers` loop them over time, layers and directions;
the cell modules here wrap one step with ``torch.nn.RNNCell``/``LSTMCell``/``GRUCell``'s
arguments and parameter names, so ``load_state_dict(torch_cell.state_dict())`` works.

Weights are stored as torch stores them: the gates stacked along the first axis of
``weight_ih`` (``(G*H, H_in)``) and ``weight_hh`` (``(G*H, H)``), in torch's order
(LSTM ``i, f, g, o``; GRU ``r, z, n``). Torch keeps two biases, ``b_ih`` and ``b_hh``, where
the notes have one ``b``: only their sum matters except in the GRU's candidate, where ``b_hn``
sits inside the reset gate's product.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _affine(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return F.linear(x, weight, bias)  # x W^T + b


def elman_step(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
               bias_ih: Tensor | None = None, bias_hh: Tensor | None = None,
               nonlinearity: str = "tanh") -> Tensor:
    """``h_t = sigma(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, sigma = tanh or relu (sec. 5.2).

    The notes write ``sigma_h(U_h x_t + V_h h_{t-1} + b_h)``: ``U_h = W_ih``, ``V_h = W_hh``,
    ``b_h = b_ih + b_hh``. Shapes: ``x (N, H_in)``, ``h (N, H)`` -> ``(N, H)``.
    """
    a = _affine(x, weight_ih, bias_ih) + _affine(h, weight_hh, bias_hh)  # (N, H)
    if nonlinearity == "tanh":
        return torch.tanh(a)
    if nonlinearity == "relu":
        return torch.relu(a)
    raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def lstm_step(x: Tensor, h: Tensor, c: Tensor, weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None = None, bias_hh: Tensor | None = None
              ) -> tuple[Tensor, Tensor]:
    """One LSTM step (notes sec. 5.4.1; Hochreiter & Schmidhuber 1997, with a forget gate)::

        i = sigma(W_ii x + b_ii + W_hi h + b_hi)      input gate
        f = sigma(W_if x + b_if + W_hf h + b_hf)      forget gate
        g = tanh (W_ig x + b_ig + W_hg h + b_hg)      new cell content (the notes' c~)
        o = sigma(W_io x + b_io + W_ho h + b_ho)      output gate
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    Shapes: ``x (N, H_in)``, ``h, c (N, H)`` -> ``(h_t, c_t)``, each ``(N, H)``.
    """
    gates = _affine(x, weight_ih, bias_ih) + _affine(h, weight_hh, bias_hh)  # (N, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_next = f * c + i * g
    return o * torch.tanh(c_next), c_next


def gru_step(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> Tensor:
    """One GRU step in torch's convention (notes sec. 5.4.2; Cho et al. 2014)::

        r = sigma(W_ir x + b_ir + W_hr h + b_hr)           reset gate
        z = sigma(W_iz x + b_iz + W_hz h + b_hz)           update gate
        n = tanh (W_in x + b_in + r * (W_hn h + b_hn))     candidate
        h_t = (1 - z) * n + z * h_{t-1}

    ``z -> 1`` *keeps* ``h_{t-1}``. The notes describe the mirror image (``z -> 1`` moves to the
    candidate, ``h_t = (1 - z) h_{t-1} + z n``); see :class:`deepnotes.recurrent.layers.GRU`.
    The reset gate multiplies ``W_hn h + b_hn`` after the product (torch, cuDNN), not ``h``
    before it (Cho et al.'s ``W (r * h)``).
    Shapes: ``x (N, H_in)``, ``h (N, H)`` -> ``(N, H)``.
    """
    i_r, i_z, i_n = _affine(x, weight_ih, bias_ih).chunk(3, dim=-1)  # each (N, H)
    h_r, h_z, h_n = _affine(h, weight_hh, bias_hh).chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


class _Cell(nn.Module):
    """Parameters ``weight_ih (G*H, H_in)``, ``weight_hh (G*H, H)``, ``bias_ih``, ``bias_hh``
    ``(G*H,)``, initialized uniform in ``+-1/sqrt(H)`` as torch does."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"input_size and hidden_size must be positive, got "
                             f"{input_size} and {hidden_size}")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        size = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _check(self, x: Tensor, *states: Tensor | None) -> tuple[Tensor, list[Tensor], bool]:
        """Batch an unbatched ``(H_in,)`` input and its states; check shapes; zeros for a
        missing state. Returns ``(x (N, H_in), states each (N, H), unbatched)``."""
        if x.dim() not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__} expects input (N, {self.input_size}) or "
                             f"({self.input_size},), got {tuple(x.shape)}")
        unbatched = x.dim() == 1
        x = x.unsqueeze(0) if unbatched else x
        expected = (x.shape[0], self.hidden_size)
        checked = []
        for state in states:
            if state is None:
                state = x.new_zeros(expected)
            elif unbatched:
                state = state.unsqueeze(0)
            if tuple(state.shape) != expected:
                raise ValueError(f"{type(self).__name__} expects a state of shape "
                                 f"{expected[1:] if unbatched else expected}, got "
                                 f"{tuple(state.shape[1:] if unbatched else state.shape)}")
            checked.append(state)
        return x, checked, unbatched

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class ElmanCell(_Cell):
    """The Elman recurrence for one step, ``torch.nn.RNNCell``'s interface (notes sec. 5.2).

    ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (or relu). Elman (1990),
    "Finding structure in time".

    Args:
        input_size, hidden_size: ``H_in`` and ``H``.
        bias: learn ``b_ih`` and ``b_hh``.
        nonlinearity: ``'tanh'`` or ``'relu'``.
    Shape:
        ``x (N, H_in)``, ``hx (N, H)`` (zeros if omitted) -> ``(N, H)``; unbatched ``(H_in,)``
        -> ``(H,)``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh") -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias)

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), unbatched = self._check(x, hx)
        h = elman_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                       self.nonlinearity)
        return h.squeeze(0) if unbatched else h

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, nonlinearity={self.nonlinearity!r}"


class LSTMCell(_Cell):
    """One LSTM step (:func:`lstm_step`), ``torch.nn.LSTMCell``'s interface (notes sec. 5.4.1).

    Shape: ``x (N, H_in)``, ``hx = (h, c)`` each ``(N, H)`` (zeros if omitted) ->
    ``(h_t, c_t)``.
    """

    gates = 4

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, Tensor]:
        if hx is not None and (not isinstance(hx, tuple | list) or len(hx) != 2):
            raise ValueError(f"LSTMCell expects hx = (h_0, c_0), got {type(hx).__name__}")
        x, (h, c), unbatched = self._check(x, *(hx if hx is not None else (None, None)))
        h, c = lstm_step(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(_Cell):
    """One GRU step (:func:`gru_step`, torch's gate convention), ``torch.nn.GRUCell``'s
    interface (notes sec. 5.4.2).

    Shape: ``x (N, H_in)``, ``hx (N, H)`` (zeros if omitted) -> ``(N, H)``.
    """

    gates = 3

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), unbatched = self._check(x, hx)
        h = gru_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h.squeeze(0) if unbatched else h
