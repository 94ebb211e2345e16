"""The Elman network's gradient by hand, two ways (notes sec. 5.3), and what each costs.

The network (sec. 5.2, one sequence, tanh)::

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   t = 1..T,   h_t in R^H, x_t in R^D

and a loss ``L = sum_t l_t(h_t)`` given through its per-step gradients ``g_t = dl_t/dh_t``
(``grad_h``; a readout loss :func:`readout_squared_error` supplies them). Write
``theta = (W_ih, W_hh, b)`` with ``P = H D + H^2 + H`` numbers; ``b`` is the one bias the notes
have: torch's two, ``b_ih`` and ``b_hh``, enter only as a sum, so both get ``dL/db``.

* :func:`rtrl` is the notes' derivation, run forward in time (real-time recurrent learning,
  Williams & Zipser 1989). It carries the sensitivity ``a_t = dh_t/dtheta`` (``H x P``)::

      a_t = b_t + c_t a_{t-1},   a_0 = 0,
      b_t = dN_h/dtheta (h_{t-1} held fixed),   c_t = dN_h/dh_{t-1} = diag(tanh') W_hh,
      dL/dtheta = sum_t g_t^T a_t.

  Unrolled, ``a_t = b_t + sum_{i<t} c_t c_{t-1} ... c_{i+1} b_i``: the notes' expansion, with
  the Jacobians multiplied newest on the left (docs/ERRATA.md, 5.3).
* :func:`bptt` sums the same terms in the other order (reverse mode): it stores the forward
  states and carries ``dL/dh_t`` (``H`` numbers) backwards,
  ``dL/dh_{t-1} = g_{t-1} + W_hh^T (tanh'_t * dL/dh_t)``.

:func:`gradient_costs` counts the multiplications each function performs and the numbers it
keeps between steps, exactly as implemented: RTRL ``~ T H^2 P = T H^3 (H + D + 1)`` time and
``H P`` memory whatever ``T``; BPTT ``~ T (3 H^2 + 2 H D)`` time and ``T H`` memory. That is
why BPTT is what everyone runs (sec. 5.3's remark "for large T this gets extremely long"):
RTRL is ``~H P / (3H + 2D)`` times slower (``~P/3`` for ``D << H``) at every step, while
BPTT pays ``T H`` numbers of memory.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class ElmanParams(NamedTuple):
    weight_ih: Tensor  # (H, D), the notes' U_h
    weight_hh: Tensor  # (H, H), the notes' V_h (W in Figure 5.1)
    bias_ih: Tensor  # (H,)
    bias_hh: Tensor  # (H,)


class ElmanGradients(NamedTuple):
    weight_ih: Tensor  # (H, D)
    weight_hh: Tensor  # (H, H)
    bias_ih: Tensor  # (H,), equal to bias_hh
    bias_hh: Tensor  # (H,)
    h_0: Tensor | None  # (H,) from BPTT; None from RTRL, which would need another H x H


class ReadoutLoss(NamedTuple):
    loss: Tensor  # scalar
    grad_h: Tensor  # (T, H): dl_t/dh_t, the input of rtrl and bptt
    weight: Tensor  # (O, H): dL/dW_o, the direct term the notes' formula leaves out
    bias: Tensor  # (O,): dL/db_o


class Cost(NamedTuple):
    multiply_adds: int  # scalar multiplications (each accumulated with an add)
    stored: int  # numbers kept from one step to the next (inputs and parameters aside)


class GradientCosts(NamedTuple):
    rtrl: Cost
    bptt: Cost


def _check(x: Tensor, h_0: Tensor, params: ElmanParams, grad_h: Tensor | None) -> None:
    if x.dim() != 2 or h_0.dim() != 1:
        raise ValueError(f"expected x (T, D) and h_0 (H,), got {tuple(x.shape)} and "
                         f"{tuple(h_0.shape)}")
    (T, D), H = x.shape, h_0.shape[0]
    expected = ((H, D), (H, H), (H,), (H,))
    got = tuple(tuple(p.shape) for p in params)
    if got != expected:
        raise ValueError(f"expected parameter shapes {expected}, got {got}")
    if grad_h is not None and tuple(grad_h.shape) != (T, H):
        raise ValueError(f"expected grad_h of shape {(T, H)}, got {tuple(grad_h.shape)}")


def elman_forward(x: Tensor, h_0: Tensor, params: ElmanParams) -> Tensor:
    """The states ``h_1 .. h_T`` as a ``(T, H)`` tensor (differentiable, for autograd)."""
    _check(x, h_0, params, None)
    h, states = h_0, []
    for x_t in x:
        h = torch.tanh(params.weight_ih @ x_t + params.bias_ih + params.weight_hh @ h
                       + params.bias_hh)
        states.append(h)
    return torch.stack(states)


def _blocks(a: Tensor, H: int, D: int) -> tuple[Tensor, Tensor, Tensor]:
    """Views of a ``(..., P)`` tensor as its ``W_ih (.., H, D)``, ``W_hh (.., H, H)`` and
    ``b (.., H)`` parts; ``theta`` is flattened row-major in that order."""
    lead = a.shape[:-1]
    return (a[..., :H * D].view(*lead, H, D), a[..., H * D:H * (D + H)].view(*lead, H, H),
            a[..., H * (D + H):])


def rtrl(x: Tensor, h_0: Tensor, params: ElmanParams, grad_h: Tensor) -> ElmanGradients:
    """``dL/dtheta`` forward in time, the notes' recursion ``a_t = b_t + c_t a_{t-1}`` (5.3).

    Args:
        x: ``(T, D)`` inputs. h_0: ``(H,)`` initial state (not a function of ``theta``).
        params: :class:`ElmanParams`. grad_h: ``(T, H)``, ``g_t = dl_t/dh_t``.
    Returns:
        :class:`ElmanGradients` (``h_0`` is ``None``).
    """
    _check(x, h_0, params, grad_h)
    (T, D), H = x.shape, h_0.shape[0]
    P = H * (D + H + 1)
    w_ih, w_hh, b_ih, b_hh = params
    h = h_0
    a = x.new_zeros(H, P)  # a_0 = dh_0/dtheta = 0
    grad = x.new_zeros(P)
    for t in range(T):
        h_prev = h
        h = torch.tanh(w_ih @ x[t] + b_ih + w_hh @ h_prev + b_hh)
        tanh_prime = 1 - h * h  # (H,)
        # a_t = diag(tanh') (W_hh a_{t-1} + [I (x) x_t^T, I (x) h_{t-1}^T, I]) = c_t a_{t-1} + b_t
        z = w_hh @ a  # (H, P)
        z_ih, z_hh, z_b = _blocks(z, H, D)
        # The immediate part of b_t is block-diagonal: d(W h)_i / dW_jk = delta_ij h_k.
        torch.diagonal(z_ih, dim1=0, dim2=1).add_(x[t].unsqueeze(1))  # (D, H) view
        torch.diagonal(z_hh, dim1=0, dim2=1).add_(h_prev.unsqueeze(1))  # (H, H) view
        torch.diagonal(z_b).add_(1)
        a = tanh_prime.unsqueeze(1) * z  # (H, P)
        grad = grad + grad_h[t] @ a  # g_t^T a_t, (P,)
    g_ih, g_hh, g_b = _blocks(grad, H, D)
    return ElmanGradients(g_ih, g_hh, g_b, g_b.clone(), None)


def bptt(x: Tensor, h_0: Tensor, params: ElmanParams, grad_h: Tensor) -> ElmanGradients:
    """``dL/dtheta`` backward in time (reverse mode): store ``h_1..h_T``, then carry
    ``dL/dh_t`` from ``t = T`` down to 0.

    Args and shapes as :func:`rtrl`. Returns :class:`ElmanGradients`, ``h_0`` included.
    """
    _check(x, h_0, params, grad_h)
    w_ih, w_hh, b_ih, b_hh = params
    h = [h_0]  # h[t] is h_t; T * H numbers kept for the backward pass
    for x_t in x:
        h.append(torch.tanh(w_ih @ x_t + b_ih + w_hh @ h[-1] + b_hh))
    g_ih, g_hh, g_b = torch.zeros_like(w_ih), torch.zeros_like(w_hh), torch.zeros_like(b_ih)
    dh_later = torch.zeros_like(h_0)  # the part of dL/dh_t that flows through h_{t+1}
    for t in range(len(x), 0, -1):
        dh = grad_h[t - 1] + dh_later  # dL/dh_t, (H,)
        da = dh * (1 - h[t] * h[t])  # dL/d(pre-activation), (H,)
        g_ih = g_ih + torch.outer(da, x[t - 1])
        g_hh = g_hh + torch.outer(da, h[t - 1])
        g_b = g_b + da
        dh_later = w_hh.T @ da  # dL/dh_{t-1} through h_t
    return ElmanGradients(g_ih, g_hh, g_b, g_b.clone(), dh_later)


def gradient_costs(T: int, H: int, D: int) -> GradientCosts:
    """Multiplications and stored numbers of :func:`rtrl` and :func:`bptt`, as implemented.

    Per step both run the forward ``W_ih x + W_hh h`` (``H D + H^2``). RTRL then forms
    ``tanh'`` (``H``), ``W_hh a`` (``H^2 P``), ``diag(tanh') z`` (``H P``) and ``g^T a``
    (``H P``), and keeps ``a`` (``H P``), ``h`` (``H``) and the gradient (``P``). BPTT's backward
    step forms ``tanh'`` and ``da`` (``2H``), two outer products (``H D + H^2``) and
    ``W_hh^T da`` (``H^2``), and keeps ``h_1..h_T`` (``T H``), ``dL/dh`` (``H``) and the gradient
    (``P``). Tanh evaluations (``T H`` each) and additions are not counted.
    """
    if min(T, H, D) < 1:
        raise ValueError(f"expected T, H, D >= 1, got {T}, {H}, {D}")
    P = H * (D + H + 1)
    forward = H * D + H * H
    rtrl_cost = Cost(T * (forward + H + H * H * P + 2 * H * P), H * P + H + P)
    bptt_cost = Cost(T * (forward + 2 * H + H * D + 2 * H * H), T * H + H + P)
    return GradientCosts(rtrl_cost, bptt_cost)


def readout_squared_error(h: Tensor, weight: Tensor, bias: Tensor, target: Tensor
                          ) -> ReadoutLoss:
    """``L = 1/T sum_t 1/2 ||W_o h_t + b_o - y_t||^2`` (sec. 5.3's ``l_2`` loss on the linear
    readout ``o_t = W_o h_t + b_o``), its per-step ``dl_t/dh_t`` and its readout gradients.

    Shapes: ``h (T, H)``, ``weight (O, H)``, ``bias (O,)``, ``target (T, O)``.
    """
    if h.dim() != 2 or weight.shape != (target.shape[-1], h.shape[1]) \
            or target.shape[0] != h.shape[0] or bias.shape != (weight.shape[0],):
        raise ValueError(f"expected h (T, H), weight (O, H), bias (O,), target (T, O), got "
                         f"{tuple(h.shape)}, {tuple(weight.shape)}, {tuple(bias.shape)}, "
                         f"{tuple(target.shape)}")
    T = h.shape[0]
    error = (h @ weight.T + bias - target) / T  # (T, O), 1/T dl/do_t
    loss = 0.5 * T * (error * error).sum()
    return ReadoutLoss(loss, error @ weight, error.T @ h, error.sum(0))
