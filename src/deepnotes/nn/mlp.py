"""Multi-layer perceptron (notes sec. 2.2) and the affine collapse of a linear one (sec. 2.3).

    x_{l+1} = phi(W_l x_l + theta_l),   l = 0 .. L-1,

with ``phi`` applied after every hidden layer and ``output_activation`` (default none: the
network returns logits / regression values) after the last. With ``phi`` the identity the
whole network is the single affine map ``x -> W x + b`` with

    W = W_{L-1} ... W_1 W_0,    b = sum_l W_{L-1} ... W_{l+1} theta_l,

which :func:`compose_affine` computes (notes sec. 2.3: "we lose the significance of the layer
formation").

Index convention: the notes write ``w_ij`` for the edge from input ``i`` to neuron ``j`` and
then ``W x``; with that convention the product must be ``W^T x``. Here, as in
``torch.nn.Linear``, ``W[j, i]`` is the edge ``i -> j`` and the layer computes ``W x + theta``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepnotes.nn.activations import get_activation
from deepnotes.nn.normalization import BatchNorm1d
from deepnotes.nn.regularization import Dropout


class MLP(nn.Module):
    """Fully connected network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Args:
        sizes: layer widths including input and output, at least two entries.
        activation: hidden non-linearity: ``"relu"``, ``"sigmoid"``, ``"tanh"``,
            ``"identity"`` or ``None`` (= identity).
        output_activation: applied to the last layer's output (``None``: raw outputs). The
            notes' back-propagation example applies ``sigmoid`` there too.
        bias: give every layer a bias ``theta_l``.
        fused: compute the activations with torch's fused kernels (same function, tested to
            agree with the written-out ones; several times faster on CPU). Off by default so
            the model reads like the notes; experiments that train at scale turn it on.
        batchnorm: a :class:`~deepnotes.nn.normalization.BatchNorm1d` after each hidden
            linear layer, before ``phi`` (sec. 2.6.1). It draws no random numbers, so under
            one seed the linear layers start as those of the plain MLP.
        dropout_p: drop probability of an inverted :class:`~deepnotes.nn.regularization.
            Dropout` after each hidden ``phi`` (sec. 2.6.2; 0: none).
    Attributes:
        linears: the ``nn.Linear`` layers in order, so ``list(mlp.parameters())`` is
            ``[W_0, theta_0, W_1, theta_1, ...]`` with ``W_l`` of shape ``(sizes[l+1], sizes[l])``.
    Shapes:
        input ``(N, sizes[0])`` -> output ``(N, sizes[-1])``.
    """

    def __init__(self, sizes: Sequence[int], activation: str | None = "relu",
                 output_activation: str | None = None, bias: bool = True,
                 fused: bool = False, batchnorm: bool = False, dropout_p: float = 0.0) -> None:
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"sizes must list >= 2 positive widths (input ... output), "
                             f"got {sizes}")
        self.sizes = tuple(sizes)
        self.activation = "identity" if activation is None else activation
        self.output_activation = "identity" if output_activation is None else output_activation
        self._phi = get_activation(self.activation)
        self._phi_out = get_activation(self.output_activation)
        self.bias = bias
        self.fused = fused
        self.linears = nn.ModuleList(
            nn.Linear(n_in, n_out, bias=bias)
            for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.norms = nn.ModuleList(BatchNorm1d(w) for w in sizes[1:-1]) if batchnorm else None
        self.dropout = Dropout(dropout_p) if dropout_p > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        phi = self._phi.kernel if self.fused else self._phi.fn
        phi_out = self._phi_out.kernel if self.fused else self._phi_out.fn
        a = x
        for i, linear in enumerate(self.linears[:-1]):
            z = linear(a)  # (N, width)
            if self.norms is not None:
                z = self.norms[i](z)
            a = phi(z)
            if self.dropout is not None:
                a = self.dropout(a)
        return phi_out(self.linears[-1](a))  # (N, sizes[-1])

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"MLP expects input of shape (N, {self.sizes[0]}), got "
                             f"{tuple(x.shape)}; flatten images first (x.flatten(1))")

    def extra_repr(self) -> str:
        extra = ", batchnorm=True" if self.norms is not None else ""
        extra += f", dropout_p={self.dropout.p}" if self.dropout is not None else ""
        return (f"sizes={self.sizes}, activation={self.activation!r}, "
                f"output_activation={self.output_activation!r}{extra}")


@torch.no_grad()
def compose_affine(mlp: MLP) -> tuple[torch.Tensor, torch.Tensor]:
    """Collapse an MLP without non-linearities into one affine map ``x -> W x + b``.

    Args:
        mlp: an :class:`MLP` whose ``activation`` and ``output_activation`` are identity.
    Returns:
        ``(W, b)`` with ``W`` of shape ``(sizes[-1], sizes[0])`` and ``b`` of shape
        ``(sizes[-1],)``, so that ``mlp(x) == x @ W.T + b`` up to rounding.
    Raises:
        ValueError: the MLP has a non-linearity (then no such map exists in general).
    """
    if mlp.activation != "identity" or mlp.output_activation != "identity":
        raise ValueError(f"compose_affine needs an MLP without non-linearities; this one has "
                         f"activation={mlp.activation!r}, "
                         f"output_activation={mlp.output_activation!r}")
    first = mlp.linears[0].weight
    W = torch.eye(mlp.sizes[0], dtype=first.dtype, device=first.device)
    b = torch.zeros(mlp.sizes[0], dtype=first.dtype, device=first.device)
    for linear in mlp.linears:
        # x -> W x + b followed by x -> W_l x + theta_l is x -> (W_l W) x + (W_l b + theta_l).
        W = linear.weight @ W
        b = linear.weight @ b
        if linear.bias is not None:
            b = b + linear.bias
    return W, b


__all__ = ["MLP", "compose_affine"]
