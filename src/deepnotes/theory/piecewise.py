"""Exact piecewise-linear functions of one real variable, in rational arithmetic.

A continuous piecewise-linear (PL) function ``f: R -> R`` is stored by *knots*
``x_0 < x_1 < ... < x_m`` (``fractions.Fraction``), its values ``y_k = f(x_k)`` and the slopes
of the two unbounded tails. Between knots it interpolates linearly:

    f(x) = y_k + (y_{k+1} - y_k) (x - x_k) / (x_{k+1} - x_k),   x_k <= x <= x_{k+1}.

Every relu network with one input and one output computes such a function, and the operations
below (affine maps, sums, ``relu``, composition) are exactly the ones a network applies, so
propagating them layer by layer gives the network's breakpoints *exactly*: no sampling, no
rounding. Floats convert to ``Fraction`` without loss, so a float64 network is analysed exactly.

The number of linear pieces is the number of maximal intervals on which ``f`` is affine, i.e.
one more than the number of true breakpoints (knots where the slope changes). This is what the
notes call a "t-saw-tooth" (section 3.2, Example 3.1 and Lemma 3.2.1).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from numbers import Rational

Number = int | float | Fraction


def to_fraction(value: Number) -> Fraction:
    """Convert an int, float or Fraction to a Fraction exactly (floats must be finite)."""
    if type(value) is Fraction:
        return value
    if type(value) is float and math.isfinite(value):
        return Fraction(*value.as_integer_ratio())
    if isinstance(value, Fraction):
        return value
    if isinstance(value, Rational | int):
        return Fraction(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"expected a finite number, got {value!r}")
        return Fraction(value)
    try:  # numpy scalars and 0-d tensors
        return to_fraction(float(value))
    except (TypeError, ValueError):
        raise ValueError(f"expected a real number, got {type(value).__name__} {value!r}") from None


def _ratio(value: Number) -> tuple[int, int]:
    """``value`` as an exact ``(numerator, denominator)`` pair of ints."""
    if type(value) is float and math.isfinite(value):
        return value.as_integer_ratio()
    f = to_fraction(value)
    return f.numerator, f.denominator


@dataclass(frozen=True)
class PiecewiseLinear:
    """A continuous piecewise-linear function on R (see module docstring).

    Args:
        knots: strictly increasing x-positions, at least one.
        values: ``f`` at the knots, same length.
        slope_left: slope on ``(-inf, knots[0]]``.
        slope_right: slope on ``[knots[-1], inf)``.
    """

    knots: tuple[Fraction, ...]
    values: tuple[Fraction, ...]
    slope_left: Fraction
    slope_right: Fraction

    def __post_init__(self) -> None:
        knots = tuple(to_fraction(k) for k in self.knots)
        values = tuple(to_fraction(v) for v in self.values)
        if not knots or len(knots) != len(values):
            raise ValueError(
                f"need at least one knot and one value per knot, got {len(knots)} knots and "
                f"{len(values)} values"
            )
        if any(b <= a for a, b in zip(knots, knots[1:], strict=False)):
            raise ValueError("knots must be strictly increasing")
        object.__setattr__(self, "knots", knots)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "slope_left", to_fraction(self.slope_left))
        object.__setattr__(self, "slope_right", to_fraction(self.slope_right))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def affine(cls, slope: Number, intercept: Number) -> PiecewiseLinear:
        """The affine function ``x -> slope * x + intercept`` (one knot at 0)."""
        return cls((Fraction(0),), (to_fraction(intercept),), slope, slope)

    @classmethod
    def identity(cls) -> PiecewiseLinear:
        return cls.affine(1, 0)

    @classmethod
    def from_points(cls, xs: Sequence[Number], ys: Sequence[Number],
                    slope_left: Number = 0, slope_right: Number = 0) -> PiecewiseLinear:
        """Interpolate the points ``(xs, ys)``; the tails continue with the given slopes."""
        return cls(tuple(xs), tuple(ys), slope_left, slope_right)

    # ------------------------------------------------------------------ evaluation
    def slopes(self) -> list[Fraction]:
        """Slopes of the ``m + 2`` pieces between consecutive knots, tails included."""
        inner = [
            (y1 - y0) / (x1 - x0)
            for x0, x1, y0, y1 in zip(self.knots, self.knots[1:], self.values, self.values[1:],
                                      strict=False)
        ]
        return [self.slope_left, *inner, self.slope_right]

    def __call__(self, x: Number) -> Fraction:
        x = to_fraction(x)
        ks, vs = self.knots, self.values
        if x <= ks[0]:
            return vs[0] + self.slope_left * (x - ks[0])
        if x >= ks[-1]:
            return vs[-1] + self.slope_right * (x - ks[-1])
        i = bisect.bisect_right(ks, x) - 1
        return vs[i] + (vs[i + 1] - vs[i]) * (x - ks[i]) / (ks[i + 1] - ks[i])

    def breakpoints(self) -> list[Fraction]:
        """The knots where the slope actually changes (sorted)."""
        s = self.slopes()
        return [k for i, k in enumerate(self.knots) if s[i] != s[i + 1]]

    def pieces(self, lo: Number | None = None, hi: Number | None = None) -> int:
        """Number of maximal affine pieces on ``[lo, hi]`` (default: all of R).

        A breakpoint on the boundary of ``[lo, hi]`` does not split the interval.
        """
        lo_f = None if lo is None else to_fraction(lo)
        hi_f = None if hi is None else to_fraction(hi)
        if lo_f is not None and hi_f is not None and not lo_f < hi_f:
            raise ValueError(f"need lo < hi, got lo={lo}, hi={hi}")
        inside = [b for b in self.breakpoints()
                  if (lo_f is None or b > lo_f) and (hi_f is None or b < hi_f)]
        return len(inside) + 1

    def simplified(self) -> PiecewiseLinear:
        """The same function with redundant knots (no slope change) removed; keeps >= 1 knot."""
        bps = self.breakpoints() or [self.knots[0]]
        return PiecewiseLinear(tuple(bps), tuple(self(b) for b in bps),
                               self.slope_left, self.slope_right)

    def equals(self, other: PiecewiseLinear) -> bool:
        """Exact equality as functions on R."""
        a, b = self.simplified(), other.simplified()
        if a.breakpoints() != b.breakpoints() or a.slope_left != b.slope_left:
            return False
        return all(a(k) == b(k) for k in a.knots + b.knots)

    def agrees_with(self, other: PiecewiseLinear, lo: Number | None = None,
                    hi: Number | None = None) -> bool:
        """Exact equality with ``other`` on ``[lo, hi]`` (``None``: unbounded on that side)."""
        d = self + other.scale_shift(-1)
        lo_f = None if lo is None else to_fraction(lo)
        hi_f = None if hi is None else to_fraction(hi)
        points = [k for k in d.knots
                  if (lo_f is None or k >= lo_f) and (hi_f is None or k <= hi_f)]
        points += [p for p in (lo_f, hi_f) if p is not None]
        if lo_f is None and d.slope_left != 0:
            return False
        if hi_f is None and d.slope_right != 0:
            return False
        return all(d(p) == 0 for p in points)

    # ------------------------------------------------------------------ operations
    def scale_shift(self, scale: Number, shift: Number = 0) -> PiecewiseLinear:
        """``x -> scale * f(x) + shift``."""
        a, c = to_fraction(scale), to_fraction(shift)
        return PiecewiseLinear(self.knots, tuple(a * v + c for v in self.values),
                               a * self.slope_left, a * self.slope_right)

    def __add__(self, other: PiecewiseLinear) -> PiecewiseLinear:
        knots = tuple(sorted(set(self.knots) | set(other.knots)))
        return PiecewiseLinear(knots, tuple(self(k) + other(k) for k in knots),
                               self.slope_left + other.slope_left,
                               self.slope_right + other.slope_right)

    def relu(self) -> PiecewiseLinear:
        """``x -> max(0, f(x))``: adds a knot at every sign change of ``f``."""
        ks, vs = list(self.knots), list(self.values)
        new = set(ks)
        for x0, x1, y0, y1 in zip(ks, ks[1:], vs, vs[1:], strict=False):
            if (y0 < 0 < y1) or (y1 < 0 < y0):
                new.add(x0 - y0 * (x1 - x0) / (y1 - y0))
        # Zero crossings on the unbounded tails.
        if self.slope_left != 0:
            z = ks[0] - vs[0] / self.slope_left
            if z < ks[0]:
                new.add(z)
        if self.slope_right != 0:
            z = ks[-1] - vs[-1] / self.slope_right
            if z > ks[-1]:
                new.add(z)
        knots = tuple(sorted(new))
        values = tuple(max(Fraction(0), self(k)) for k in knots)
        # Far left f -> +inf only if slope_left < 0; otherwise relu(f) is flat there (a flat
        # tail stays flat). Mirror image on the right.
        left = self.slope_left if self.slope_left < 0 else Fraction(0)
        right = self.slope_right if self.slope_right > 0 else Fraction(0)
        return PiecewiseLinear(knots, values, left, right)

    def compose(self, inner: PiecewiseLinear) -> PiecewiseLinear:
        """``x -> self(inner(x))``: knots of ``inner`` plus preimages of this one's knots."""
        g = inner
        pieces = g.slopes()
        edges = [None, *g.knots, None]  # piece j spans (edges[j], edges[j+1])
        new = set(g.knots)
        for j, slope in enumerate(pieces):
            if slope == 0:
                continue
            x_ref = g.knots[0] if j == 0 else g.knots[j - 1]
            y_ref = g(x_ref)
            lo, hi = edges[j], edges[j + 1]
            for k in self.knots:
                x = x_ref + (k - y_ref) / slope
                if (lo is None or x > lo) and (hi is None or x < hi):
                    new.add(x)
        knots = tuple(sorted(new))

        def tail_slope(g_slope: Fraction, towards_minus_inf: bool) -> Fraction:
            if g_slope == 0:
                return Fraction(0)
            # As x -> -inf, g -> -inf iff its slope is positive (and the reverse on the right).
            g_goes_down = (g_slope > 0) == towards_minus_inf
            return (self.slope_left if g_goes_down else self.slope_right) * g_slope

        return PiecewiseLinear(knots, tuple(self(g(k)) for k in knots),
                               tail_slope(g.slope_left, True), tail_slope(g.slope_right, False))


def linear_combination(weights: Sequence[Number], functions: Sequence[PiecewiseLinear],
                       bias: Number = 0) -> PiecewiseLinear:
    """``sum_i weights[i] * functions[i] + bias``, exactly.

    Adds slope changes knot by knot (a sum's slope is the sum of slopes), so the cost is
    linear in the total number of knots rather than quadratic in the number of terms.
    """
    if len(weights) != len(functions) or not functions:
        raise ValueError(f"need one weight per function (>= 1), got {len(weights)} weights and "
                         f"{len(functions)} functions")
    ws = [to_fraction(w) for w in weights]
    terms = [(w, f) for w, f in zip(ws, functions, strict=True) if w != 0]
    if not terms:
        return PiecewiseLinear.affine(0, bias)
    jumps: dict[Fraction, Fraction] = {}
    for w, f in terms:
        s = f.slopes()
        for i, k in enumerate(f.knots):
            jumps[k] = jumps.get(k, Fraction(0)) + w * (s[i + 1] - s[i])
    knots = sorted(jumps)
    slope_left = sum((w * f.slope_left for w, f in terms), Fraction(0))
    slope_right = sum((w * f.slope_right for w, f in terms), Fraction(0))
    slope = slope_left
    value = sum((w * f(knots[0]) for w, f in terms), to_fraction(bias))
    values = [value]
    for x0, x1 in zip(knots, knots[1:], strict=False):
        slope += jumps[x0]
        value += slope * (x1 - x0)
        values.append(value)
    return PiecewiseLinear(tuple(knots), tuple(values), slope_left, slope_right)


def relu_network_function(weights: Sequence[Sequence[Sequence[Number]]],
                          biases: Sequence[Sequence[Number]]) -> PiecewiseLinear:
    """The exact PL function of a scalar relu MLP ``x -> W_L relu(... relu(W_1 x + b_1)) + b_L``.

    Args:
        weights: per layer, a matrix ``(out_features, in_features)``; the first has
            ``in_features == 1``, the last ``out_features == 1``. Floats are converted exactly.
        biases: per layer, a vector ``(out_features,)``.

    Returns:
        The network's function; relu after every layer except the last.
    """
    if len(weights) != len(biases) or not weights:
        raise ValueError(f"need one bias per weight matrix, got {len(weights)} and {len(biases)}")
    if any(len(row) != 1 for row in weights[0]) or len(weights[-1]) != 1:
        raise ValueError("the network must map one input to one output")
    units = [PiecewiseLinear.identity()]
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        if len(w) != len(b) or any(len(row) != len(units) for row in w):
            raise ValueError(f"layer {layer}: weight shape does not match {len(units)} inputs "
                             f"and {len(b)} biases")
        pre = [linear_combination(row, units, bias) for row, bias in zip(w, b, strict=True)]
        units = pre if layer == len(weights) - 1 else [p.relu() for p in pre]
    return units[0]


def count_pieces_on_grid(xs: Sequence[Number], ys: Sequence[Number]) -> int:
    """Pieces of the interpolant of samples ``(xs, ys)``: 1 + slope changes, exactly.

    A second, independent counter for tests and experiments: when every breakpoint of a PL
    function lies on the grid (e.g. dyadic breakpoints on a fine dyadic grid, where float64
    evaluation is exact), this equals its number of pieces on ``[xs[0], xs[-1]]``.

    Args:
        xs: strictly increasing grid, at least 2 points. ys: values there.
    """
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"need >= 2 points and one value per point, got {len(xs)}, {len(ys)}")
    x = [_ratio(v) for v in xs]
    y = [_ratio(v) for v in ys]
    # Scale everything to integers by the common denominator, then compare slopes by
    # cross-multiplication: exact, and much faster than Fraction division.
    scale = math.lcm(*(d for _, d in x + y))
    xi = [n * (scale // d) for n, d in x]
    yi = [n * (scale // d) for n, d in y]
    dx = [b - a for a, b in zip(xi, xi[1:], strict=False)]
    if any(d <= 0 for d in dx):
        raise ValueError("xs must be strictly increasing")
    dy = [b - a for a, b in zip(yi, yi[1:], strict=False)]
    return 1 + sum(1 for k in range(len(dx) - 1) if dy[k + 1] * dx[k] != dy[k] * dx[k + 1])
