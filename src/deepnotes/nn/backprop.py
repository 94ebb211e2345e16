"""Back-propagation by hand for an :class:`~deepnotes.nn.mlp.MLP` (notes sec. 2.5.3), no autograd.

Loss (the notes' ``L_0 = sum_j (a_j^{(L)} - y_j)^2``, averaged over the ``n`` examples):

    L = 1/n sum_i ||f(x_i) - y_i||_2^2          (= deepnotes.nn.losses.l2_loss, mean)

Forward, per layer ``l = 0 .. L-1`` (batch rows, ``a_0 = x``):

    z_l = a_l W_l^T + theta_l,     a_{l+1} = phi_l(z_l)

Backward, starting from ``dL/da_L = 2 (a_L - y) / n``:

    delta_l      = dL/da_{l+1} * phi_l'(z_l)        (elementwise; the notes' sigma'(z) factor)
    dL/dW_l      = delta_l^T a_l                     (sum over examples of a_k sigma' dL/da_j)
    dL/dtheta_l  = sum_i delta_l[i]
    dL/da_l      = delta_l W_l                       (sum over the neurons j of layer l+1)

This is the notes' recursion with the index slip fixed: the notes write
``dL_0/da_j^{(l)} = sum_j w_jk ...``; the left side must be indexed by ``k`` (the neuron of
layer ``l``) and the sum runs over the neurons ``j`` of layer ``l + 1``:
``dL_0/da_k^{(l)} = sum_j w_jk^{(l+1)} sigma'(z_j^{(l+1)}) dL_0/da_j^{(l+1)}``.
"""

from __future__ import annotations

import torch

from deepnotes.nn.activations import get_activation
from deepnotes.nn.mlp import MLP


@torch.no_grad()
def manual_gradients(mlp: MLP, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Gradient of ``1/n sum_i ||mlp(x_i) - y_i||^2`` by explicit back-propagation.

    Args:
        mlp: the network (any activation of :mod:`deepnotes.nn.activations`).
        x: ``(n, sizes[0])`` inputs.
        y: ``(n, sizes[-1])`` targets.
    Returns:
        one tensor per entry of ``list(mlp.parameters())`` and in that order
        (``[dW_0, dtheta_0, dW_1, dtheta_1, ...]``), each with its parameter's shape.
    """
    if not isinstance(mlp, MLP):
        raise ValueError(f"manual_gradients needs a deepnotes.nn.MLP, got {type(mlp).__name__}")
    n_layers = len(mlp.linears)
    if x.dim() != 2 or x.shape[1] != mlp.sizes[0]:
        raise ValueError(f"x must have shape (n, {mlp.sizes[0]}), got {tuple(x.shape)}")
    if y.shape != (x.shape[0], mlp.sizes[-1]):
        raise ValueError(f"y must have shape ({x.shape[0]}, {mlp.sizes[-1]}), got "
                         f"{tuple(y.shape)}")
    n = x.shape[0]
    phis = [get_activation(mlp.activation)] * (n_layers - 1) + [
        get_activation(mlp.output_activation)]

    # Forward pass, keeping every layer input a_l and pre-activation z_l.
    activations = [x]  # a_0 .. a_L, a_l of shape (n, sizes[l])
    pre_activations = []  # z_0 .. z_{L-1}, z_l of shape (n, sizes[l+1])
    for linear, phi in zip(mlp.linears, phis, strict=True):
        z = activations[-1] @ linear.weight.T  # (n, sizes[l+1])
        if linear.bias is not None:
            z = z + linear.bias
        pre_activations.append(z)
        activations.append(phi.fn(z))

    # Backward pass: dL/da_L of the batch-averaged squared error.
    grad_a = 2.0 * (activations[-1] - y) / n  # (n, sizes[-1])
    grads: list[list[torch.Tensor]] = [[] for _ in range(n_layers)]
    for l in reversed(range(n_layers)):
        linear = mlp.linears[l]
        delta = grad_a * phis[l].derivative(pre_activations[l])  # (n, sizes[l+1])
        layer_grads = [delta.T @ activations[l]]  # dW_l: (sizes[l+1], sizes[l])
        if linear.bias is not None:
            layer_grads.append(delta.sum(dim=0))  # dtheta_l: (sizes[l+1],)
        grads[l] = layer_grads
        grad_a = delta @ linear.weight  # dL/da_l: (n, sizes[l])
    return [g for layer_grads in grads for g in layer_grads]


__all__ = ["manual_gradients"]
