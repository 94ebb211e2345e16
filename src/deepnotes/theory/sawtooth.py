"""Depth separation with saw-tooth functions (notes section 3.2, Example 3.1, Lemma 3.2.1).

The hat function of the notes,

    hat(x) = relu(2 relu(x) - 4 relu(x - 1/2)),

is 0 outside [0, 1] and rises to 1 at x = 1/2. The notes' two-hat function is
``t(x) = hat(x) + hat(x - 1)`` and they count the linear pieces of the T-fold composition
``t^T``; a piece count on R includes the two unbounded flat tails. Counted exactly
(:mod:`deepnotes.theory.piecewise`):

* ``hat^T`` has ``2^T`` pieces on [0, 1] (``2^(T-1)`` hats) and ``2^T + 2`` on R;
* ``t^T`` has ``2^(T+1)`` pieces on [0, 2] (``2^T`` hats) and ``2 + 2^(T+1)`` on R,
  the notes' formula.

Constructions (each tested for exact equality):

* :func:`deep_hat_net` -- T hidden layers of 3 relus equal ``hat^T`` on all of R
  (``hat(y) = 2 relu(y) - 4 relu(y - 1/2) + 2 relu(y - 1)``), so ``3T`` units;
* :func:`deep_sawtooth_net` -- the same for ``t^T`` (5 units, then 3 per layer);
* :func:`shallow_net_from_piecewise` -- one hidden layer with one unit per breakpoint;
  a one-hidden-layer net has at most one breakpoint per unit, so this width is minimal on R;
* :func:`shallow_to_deep` -- the notes' conversion of a shallow net with n units into a deep
  net with n layers of 3 units (4 when some output weights are negative).

Telgarsky, "Benefits of depth in neural networks", COLT 2016; Montufar et al., NeurIPS 2014.
"""

from __future__ import annotations

from fractions import Fraction

import torch

from deepnotes.theory.piecewise import PiecewiseLinear, relu_network_function, to_fraction
from deepnotes.theory.relu_net import ScalarReluNet


def hat(x: torch.Tensor) -> torch.Tensor:
    """The notes' hat ``relu(2 relu(x) - 4 relu(x - 1/2))``, elementwise."""
    return torch.relu(2 * torch.relu(x) - 4 * torch.relu(x - 0.5))


def two_hats(x: torch.Tensor) -> torch.Tensor:
    """The notes' ``t(x) = hat(x) + hat(x - 1)``: two hats on [0, 2]."""
    return hat(x) + hat(x - 1)


def iterate(f, x: torch.Tensor, times: int) -> torch.Tensor:
    """``f`` applied ``times`` times to ``x``."""
    if times < 0:
        raise ValueError(f"times must be >= 0, got {times}")
    for _ in range(times):
        x = f(x)
    return x


def hat_piecewise() -> PiecewiseLinear:
    """``hat`` as an exact PL function, built from the notes' formula (relu net 1-2-1, relu)."""
    inner = relu_network_function([[[1], [1]], [[2, -4]]], [[0, Fraction(-1, 2)], [0]])
    return inner.relu()


def two_hats_piecewise() -> PiecewiseLinear:
    """``t(x) = hat(x) + hat(x - 1)`` exactly."""
    h = hat_piecewise()
    return h + h.compose(PiecewiseLinear.affine(1, -1))


def power(f: PiecewiseLinear, times: int) -> PiecewiseLinear:
    """The ``times``-fold composition ``f o f o ... o f`` (identity for 0)."""
    if times < 0:
        raise ValueError(f"times must be >= 0, got {times}")
    out = PiecewiseLinear.identity()
    for _ in range(times):
        out = f.compose(out).simplified()
    return out


def notes_piece_count(T: int) -> int:
    """The notes' formula for the pieces of ``t^T`` (Example 3.1): ``2 + 2^(T+1)``."""
    return 2 + 2 ** (T + 1)


# The hat on all of R as a 3-unit layer: hat(y) = 2 relu(y) - 4 relu(y - 1/2) + 2 relu(y - 1).
_HAT_OUT = [2, -4, 2]
_HAT_BIAS = [0, Fraction(-1, 2), -1]


def deep_hat_net(T: int, dtype: torch.dtype = torch.float64) -> ScalarReluNet:
    """A relu net with T hidden layers of 3 units equal to ``hat^T`` on R.

    Layer k computes ``relu(y), relu(y - 1/2), relu(y - 1)`` of ``y = hat^(k-1)(x)``; the
    next layer's weights fold in the output combination ``(2, -4, 2)``.
    """
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    weights = [[[1], [1], [1]]] + [[_HAT_OUT] * 3 for _ in range(T - 1)] + [[_HAT_OUT]]
    biases = [_HAT_BIAS] * T + [[0]]
    return ScalarReluNet(weights, biases, dtype=dtype)


def deep_sawtooth_net(T: int, dtype: torch.dtype = torch.float64) -> ScalarReluNet:
    """A relu net equal to the notes' ``t^T`` on R: 5 units, then ``T - 1`` layers of 3.

    ``t(x) = 2r(x) - 4r(x - 1/2) + 4r(x - 1) - 4r(x - 3/2) + 2r(x - 2)`` (``r`` = relu), and
    ``t`` maps R into [0, 1] where ``t = hat``, so later layers only need the hat.
    """
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    t_out = [2, -4, 4, -4, 2]
    t_bias = [0, Fraction(-1, 2), -1, Fraction(-3, 2), -2]
    if T == 1:
        return ScalarReluNet([[[1]] * 5, [t_out]], [t_bias, [0]], dtype=dtype)
    weights = [[[1]] * 5, [t_out] * 3] + [[_HAT_OUT] * 3 for _ in range(T - 2)] + [[_HAT_OUT]]
    biases = [t_bias] + [_HAT_BIAS] * (T - 1) + [[0]]
    return ScalarReluNet(weights, biases, dtype=dtype)


def shallow_net_from_piecewise(f: PiecewiseLinear,
                               dtype: torch.dtype = torch.float64) -> ScalarReluNet:
    """A one-hidden-layer relu net equal to ``f`` on R.

        f(x) = f(x_0) + s_L (x - x_0) + sum_k delta_k relu(x - b_k),

    with ``b_k`` the breakpoints and ``delta_k`` the slope changes; a nonzero left slope
    ``s_L`` costs two more units (``x - x_0 = relu(x - x_0) - relu(x_0 - x)``). Exact in float64
    when the breakpoints and values are dyadic rationals.
    """
    f = f.simplified()
    slopes = f.slopes()
    bps = f.breakpoints()
    x0 = bps[0] if bps else f.knots[0]
    w_in, b_in, w_out = [], [], []
    for i, k in enumerate(f.knots):
        delta = slopes[i + 1] - slopes[i]
        if delta != 0:
            w_in.append([1])
            b_in.append(-k)
            w_out.append(delta)
    if f.slope_left != 0:
        w_in += [[1], [-1]]
        b_in += [-x0, x0]
        w_out += [f.slope_left, -f.slope_left]
    if not w_in:  # a constant still needs one (silent) unit in this architecture
        w_in, b_in, w_out = [[0]], [0], [0]
    return ScalarReluNet([w_in, [w_out]], [b_in, [f(x0)]], dtype=dtype)


def shallow_to_deep(net: ScalarReluNet, shift: float,
                    dtype: torch.dtype = torch.float64) -> ScalarReluNet:
    """The notes' conversion of a one-hidden-layer net into a deep narrow one (Figure 3.1).

    For ``f(x) = sum_i alpha_i relu(w_i x + b_i) + c`` with n units, layer i holds
    ``h1 = x + L`` (the input carried, shifted by ``L = shift`` so the relu passes it), ``h2 =
    relu(w_i x + b_i)`` and the running sums ``h3 = sum_{j<i} alpha_j^+ h2_j`` and
    ``h4 = sum_{j<i} alpha_j^- h2_j`` (both >= 0, so the relu leaves them unchanged). With all
    ``alpha_i >= 0`` the ``h4`` column is dropped: n layers of 3 units, as in the notes.

    Exact for inputs ``x >= -L``.

    Args:
        net: a net with one hidden layer.
        shift: ``L >= 0``; the deep net agrees with ``net`` on ``[-L, inf)``.

    Returns:
        A net with ``n`` hidden layers of width 3 or 4.
    """
    if net.depth != 1:
        raise ValueError(f"expected a net with one hidden layer, got {net.depth}")
    L = to_fraction(shift)
    if L < 0:
        raise ValueError(f"shift must be >= 0, got {shift}")
    first, last = net.layers
    w = [to_fraction(v) for v in first.weight.detach().squeeze(1).tolist()]
    b = [to_fraction(v) for v in first.bias.detach().tolist()]
    alpha = [to_fraction(v) for v in last.weight.detach().squeeze(0).tolist()]
    c = to_fraction(last.bias.item())
    n = len(w)
    signed = any(a < 0 for a in alpha)
    pos = [max(a, Fraction(0)) for a in alpha]
    neg = [max(-a, Fraction(0)) for a in alpha]
    # Columns: carry, unit, positive sum (, negative sum).
    weights = [[[1], [w[0]], [0]] + ([[0]] if signed else [])]
    biases = [[L, b[0], 0] + ([0] if signed else [])]
    for i in range(1, n):
        rows = [[1, 0, 0], [w[i], 0, 0], [0, pos[i - 1], 1]]
        if signed:
            rows = [r + [0] for r in rows] + [[0, neg[i - 1], 0, 1]]
        weights.append(rows)
        biases.append([0, b[i] - w[i] * L, 0] + ([0] if signed else []))
    out = [0, alpha[n - 1], 1] + ([-1] if signed else [])
    weights.append([out])
    biases.append([c])
    return ScalarReluNet(weights, biases, dtype=dtype)
