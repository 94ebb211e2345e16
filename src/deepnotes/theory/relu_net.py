"""A relu network with one input and one output, built from explicit weight lists.

    f(x) = W_L relu(W_{L-1} relu(... relu(W_1 x + b_1) ...) + b_{L-1}) + b_L

Section 3.2 of the notes compares such networks by depth and width. The constructions of
:mod:`deepnotes.theory.sawtooth` write their weights down by hand, so the class takes weight
lists; :meth:`ScalarReluNet.piecewise` returns the exact piecewise-linear function the network
computes (rational arithmetic, see :mod:`deepnotes.theory.piecewise`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepnotes.theory.piecewise import Number, PiecewiseLinear, relu_network_function


class ScalarReluNet(nn.Module):
    """A relu MLP ``R -> R`` with given weights (relu after every layer but the last).

    Args:
        weights: per layer a matrix ``(out_features, in_features)``; first ``in_features`` 1,
            last ``out_features`` 1. Numbers (floats, ints, Fractions) are stored as ``dtype``.
        biases: per layer a vector ``(out_features,)``.
        dtype: parameter dtype (float64 keeps dyadic constructions exact).
    """

    def __init__(self, weights: Sequence[Sequence[Sequence[Number]]],
                 biases: Sequence[Sequence[Number]], dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        if len(weights) != len(biases) or not weights:
            raise ValueError(f"need one bias vector per weight matrix (>= 1 layer), got "
                             f"{len(weights)} matrices and {len(biases)} bias vectors")
        layers = []
        in_features = 1
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            w_t = torch.tensor([[float(v) for v in row] for row in w], dtype=dtype)
            b_t = torch.tensor([float(v) for v in b], dtype=dtype)
            if w_t.ndim != 2 or w_t.shape[1] != in_features or w_t.shape[0] != b_t.shape[0]:
                raise ValueError(f"layer {i}: expected weight (out, {in_features}) and bias (out,),"
                                 f" got {tuple(w_t.shape)} and {tuple(b_t.shape)}")
            layer = nn.Linear(in_features, w_t.shape[0], dtype=dtype)
            with torch.no_grad():
                layer.weight.copy_(w_t)
                layer.bias.copy_(b_t)
            layers.append(layer)
            in_features = w_t.shape[0]
        if in_features != 1:
            raise ValueError(f"the last layer must have one output, got {in_features}")
        self.layers = nn.ModuleList(layers)

    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return len(self.layers) - 1

    @property
    def hidden_units(self) -> int:
        """Total number of hidden relu units."""
        return sum(layer.out_features for layer in self.layers[:-1])

    def widths(self) -> list[int]:
        return [layer.out_features for layer in self.layers[:-1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``(N,)``. Returns ``(N,)``."""
        if x.ndim != 1:
            raise ValueError(f"expected inputs of shape (N,), got {tuple(x.shape)}")
        h = x.unsqueeze(1)  # (N, 1)
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))  # (N, width)
        return self.layers[-1](h).squeeze(1)  # (N,)

    def piecewise(self) -> PiecewiseLinear:
        """The exact function computed by the current float weights."""
        weights = [layer.weight.detach().tolist() for layer in self.layers]
        biases = [layer.bias.detach().tolist() for layer in self.layers]
        return relu_network_function(weights, biases)
