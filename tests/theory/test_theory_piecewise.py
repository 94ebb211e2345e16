"""Exact piecewise-linear functions: evaluation, operations, piece counts (notes 3.2)."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.theory import (
    PiecewiseLinear,
    ScalarReluNet,
    count_pieces_on_grid,
    linear_combination,
    relu_network_function,
)

F = Fraction


def relu_pl() -> PiecewiseLinear:
    return PiecewiseLinear.identity().relu()


def test_hand_counted_pieces():
    # relu: 2 pieces, breakpoint 0
    r = relu_pl()
    assert r.breakpoints() == [0] and r.pieces() == 2
    # |x| = relu(x) + relu(-x): 2 pieces
    absx = r + r.compose(PiecewiseLinear.affine(-1, 0))
    assert absx.pieces() == 2 and absx(-3) == 3 and absx(F(5, 2)) == F(5, 2)
    # constant and affine: 1 piece
    assert PiecewiseLinear.affine(0, 7).pieces() == 1
    assert PiecewiseLinear.affine(3, -1).pieces() == 1
    # the hat of the notes: 0, 2x, 2 - 2x, 0 -> 4 pieces on R, 2 on [0, 1]
    hat = relu_network_function([[[1], [1]], [[2, -4]]], [[0, F(-1, 2)], [0]]).relu()
    assert hat.breakpoints() == [0, F(1, 2), 1]
    assert hat.pieces() == 4 and hat.pieces(0, 1) == 2
    # a piece count ignores redundant knots
    line = PiecewiseLinear.from_points([0, 1, 2, 3], [0, 1, 2, 3], 1, 1)
    assert line.pieces() == 1 and line.simplified().knots == (0,)
    # zigzag 0,1,0,1 on [0,3] with flat tails: 3 inner + 2 tails
    zig = PiecewiseLinear.from_points([0, 1, 2, 3], [0, 1, 0, 1])
    assert zig.pieces() == 5 and zig.pieces(0, 3) == 3 and zig.pieces(F(1, 2), F(3, 2)) == 2


def test_evaluation_between_knots_and_on_tails():
    f = PiecewiseLinear.from_points([0, 2], [1, 5], slope_left=-1, slope_right=3)
    assert f(1) == 3 and f(-2) == 3 and f(4) == 11 and f(F(1, 3)) == F(5, 3)
    assert f.slopes() == [-1, 2, 3]


def test_relu_adds_exact_zero_crossings():
    f = PiecewiseLinear.from_points([0, 3], [-1, 2], slope_left=1, slope_right=-1)
    g = f.relu()
    # zero crossings at x = 1 (inside) and x = 5 (right tail), the peak at 3 stays;
    # the left tail is negative and becomes flat
    assert g.breakpoints() == [1, 3, 5]
    assert g(0) == 0 and g(3) == 2 and g(6) == 0 and g(-10) == 0
    assert g.slope_left == 0 and g.slope_right == 0
    up = PiecewiseLinear.affine(-2, 1).relu()  # relu(1 - 2x): slope -2 on the left
    assert up.slope_left == -2 and up.slope_right == 0 and up.breakpoints() == [F(1, 2)]


def test_compose_matches_pointwise():
    f = PiecewiseLinear.from_points([0, 1, 2], [0, 2, 1], slope_left=-1, slope_right=2)
    g = PiecewiseLinear.from_points([-1, 1], [3, -1], slope_left=0, slope_right=-3)
    h = f.compose(g)
    for x in [F(k, 7) for k in range(-30, 31)]:
        assert h(x) == f(g(x))


def test_agrees_with_on_interval():
    f = PiecewiseLinear.from_points([0, 1], [0, 1], 0, 0)
    g = PiecewiseLinear.from_points([0, 1], [0, 1], -1, 0)  # differs only left of 0
    assert f.agrees_with(g, lo=0) and f.agrees_with(g, lo=0, hi=5)
    assert not f.agrees_with(g) and not f.agrees_with(g, lo=-1)
    assert not f.equals(g) and f.equals(f.simplified())


def test_validation():
    with pytest.raises(ValueError, match="increasing"):
        PiecewiseLinear.from_points([1, 0], [0, 0])
    with pytest.raises(ValueError, match="at least one knot"):
        PiecewiseLinear((), (), 0, 0)
    with pytest.raises(ValueError, match="finite"):
        PiecewiseLinear.affine(float("nan"), 0)
    with pytest.raises(ValueError, match="lo < hi"):
        relu_pl().pieces(1, 1)
    with pytest.raises(ValueError, match="one input"):
        relu_network_function([[[1, 1]], [[1]]], [[0], [0]])
    with pytest.raises(ValueError, match=">= 2 points"):
        count_pieces_on_grid([0], [0])


# ---------------------------------------------------------------- property tests
small = st.integers(-6, 6)


@st.composite
def pl_functions(draw, max_knots: int = 5) -> PiecewiseLinear:
    k = draw(st.integers(1, max_knots))
    xs = sorted(set(draw(st.lists(small, min_size=k, max_size=k))))
    ys = draw(st.lists(small, min_size=len(xs), max_size=len(xs)))
    return PiecewiseLinear.from_points(xs, ys, draw(small), draw(small))


@settings(max_examples=60, deadline=None)
@given(pl_functions(), pl_functions())
def test_lemma_3_2_1_sum_and_composition_bounds(f, g):
    """Lemma 3.2.1: f + g has at most a + b pieces (in fact a + b - 1), f(g) at most a b."""
    a, b = f.pieces(), g.pieces()
    assert (f + g).pieces() <= a + b - 1
    assert f.compose(g).pieces() <= a * b
    for x in [F(k, 3) for k in range(-25, 26)]:
        assert (f + g)(x) == f(x) + g(x)
        assert f.compose(g)(x) == f(g(x))


@settings(max_examples=40, deadline=None)
@given(pl_functions())
def test_relu_is_pointwise_max(f):
    g = f.relu()
    for x in [F(k, 5) for k in range(-45, 46)]:
        assert g(x) == max(F(0), f(x))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.integers(0, 2 ** 16))
def test_relu_network_function_matches_float64_forward(widths, seed):
    gen = torch.Generator().manual_seed(seed)
    dims = [1, *widths, 1]
    weights = [torch.randn(o, i, generator=gen, dtype=torch.float64).tolist()
               for i, o in zip(dims, dims[1:], strict=False)]
    biases = [torch.randn(o, generator=gen, dtype=torch.float64).tolist() for o in dims[1:]]
    net = ScalarReluNet(weights, biases)
    pl = net.piecewise()
    x = torch.linspace(-4, 4, 257, dtype=torch.float64)
    exact = torch.tensor([float(pl(v)) for v in x.tolist()], dtype=torch.float64)
    torch.testing.assert_close(net(x), exact, rtol=1e-12, atol=1e-12)
    # a relu net with k units in one hidden layer has at most k + 1 pieces
    if len(widths) == 1:
        assert pl.pieces() <= widths[0] + 1


@settings(max_examples=40, deadline=None)
@given(pl_functions())
def test_grid_counter_agrees_when_breakpoints_on_grid(f):
    xs = [F(k, 2) for k in range(-20, 21)]  # contains every integer knot in [-6, 6]
    assert count_pieces_on_grid(xs, [f(x) for x in xs]) == f.pieces(-10, 10)
    # floats are read exactly: values on a dyadic grid of a dyadic-valued function
    g = f.scale_shift(2 ** 10)
    ys = [float(g(x)) for x in xs]
    if all(F(y) == g(x) for x, y in zip(xs, ys, strict=True)):
        assert count_pieces_on_grid([float(x) for x in xs], ys) == f.pieces(-10, 10)


def test_grid_counter_reads_floats_exactly():
    # slopes 1e-17 apart are different slopes: counted exactly, not to a tolerance
    xs = [0.0, 1.0, 2.0]
    assert count_pieces_on_grid(xs, [0.0, 1.0, 2.0]) == 1
    assert count_pieces_on_grid(xs, [0.0, 1.0, 2.0 + 2.0 ** -51]) == 2


def test_linear_combination_many_terms():
    ramps = [PiecewiseLinear.affine(1, -k).relu() for k in range(10)]
    s = linear_combination([(-1) ** k for k in range(10)], ramps, bias=1)
    assert s.pieces() == 11 and s(-1) == 1
    for x in [F(k, 4) for k in range(-8, 60)]:
        assert s(x) == 1 + sum((-1) ** k * max(F(0), x - k) for k in range(10))
