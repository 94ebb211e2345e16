"""Saw-tooth constructions of notes 3.2: piece counts, deep/shallow nets, shallow-to-deep."""

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
    deep_hat_net,
    deep_sawtooth_net,
    hat,
    hat_piecewise,
    iterate,
    notes_piece_count,
    power,
    shallow_net_from_piecewise,
    shallow_to_deep,
    two_hats,
    two_hats_piecewise,
)

F = Fraction
GRID = torch.arange(-2 ** 11, 3 * 2 ** 11 + 1, dtype=torch.float64) / 2 ** 10  # [-2, 6], dyadic


def test_hat_is_the_tent_on_unit_interval():
    x = GRID
    tent = torch.where((x >= 0) & (x <= 1), 1 - (2 * x - 1).abs(), torch.zeros_like(x))
    assert torch.equal(hat(x), tent)
    assert torch.equal(two_hats(x), tent + hat(x - 1))
    h = hat_piecewise()
    assert h.breakpoints() == [0, F(1, 2), 1] and h(F(1, 2)) == 1 and h(F(1, 4)) == F(1, 2)


@pytest.mark.parametrize("T", range(1, 8))
def test_piece_counts_exact(T):
    tT, hT = power(two_hats_piecewise(), T), power(hat_piecewise(), T)
    # the notes' formula for t^T (tails included) and 2^T hats on [0, 2]
    assert tT.pieces() == notes_piece_count(T) == 2 + 2 ** (T + 1)
    assert tT.pieces(0, 2) == 2 ** (T + 1)
    # hat^T: 2^T pieces on [0, 1], breakpoints exactly k / 2^T
    assert hT.pieces(0, 1) == 2 ** T and hT.pieces() == 2 ** T + 2
    assert hT.breakpoints() == [F(k, 2 ** T) for k in range(2 ** T + 1)]
    # independent count from float64 samples on a dyadic grid
    ys = iterate(two_hats, GRID, T).tolist()
    assert count_pieces_on_grid(GRID.tolist(), ys) == notes_piece_count(T)


def test_hand_counts_of_the_notes_example():
    t = two_hats_piecewise()
    assert [power(t, T).pieces() for T in (1, 2, 3)] == [6, 10, 18]  # Example 3.1
    assert hat_piecewise().pieces() == 4  # "a 4-saw-tooth by definition"


@pytest.mark.parametrize("T", [1, 2, 3, 5, 8])
def test_deep_nets_exact(T):
    deep_h, deep_t = deep_hat_net(T), deep_sawtooth_net(T)
    assert deep_h.widths() == [3] * T and deep_h.hidden_units == 3 * T
    assert deep_t.hidden_units == 3 * T + 2 and deep_t.depth == T
    with torch.no_grad():
        assert torch.equal(deep_h(GRID), iterate(hat, GRID, T))
        assert torch.equal(deep_t(GRID), iterate(two_hats, GRID, T))
    assert deep_h.piecewise().equals(power(hat_piecewise(), T))
    assert deep_t.piecewise().equals(power(two_hats_piecewise(), T))


@pytest.mark.parametrize("T", [1, 2, 4, 6])
def test_shallow_construction_is_exact_and_minimal(T):
    tT = power(two_hats_piecewise(), T)
    net = shallow_net_from_piecewise(tT)
    assert net.depth == 1
    # one unit per breakpoint, and a unit contributes at most one breakpoint: minimal on R
    assert net.hidden_units == len(tT.breakpoints()) == 2 ** (T + 1) + 1
    assert net.piecewise().equals(tT)
    with torch.no_grad():
        assert torch.equal(net(GRID), iterate(two_hats, GRID, T))


def test_shallow_construction_handles_linear_tails_and_constants():
    f = PiecewiseLinear.from_points([-1, 0, 2], [0, 3, 1], slope_left=2, slope_right=-1)
    net = shallow_net_from_piecewise(f)
    # breakpoints at -1 and 0 (slope -1 continues past 2), plus 2 units for the left slope
    assert net.piecewise().equals(f) and net.hidden_units == 2 + 2
    const = shallow_net_from_piecewise(PiecewiseLinear.affine(0, 5))
    assert const.piecewise().equals(PiecewiseLinear.affine(0, 5))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 10), st.integers(0, 2 ** 16), st.booleans())
def test_shallow_to_deep_exact(width, seed, positive):
    gen = torch.Generator().manual_seed(seed)
    # dyadic weights so that float64 arithmetic is exact as well
    w = (torch.randint(1, 9, (width,), generator=gen) * (2 * torch.randint(0, 2, (width,),
         generator=gen) - 1)) / 4
    b = torch.randint(-16, 17, (width,), generator=gen) / 4
    alpha = torch.randint(-8, 9, (width,), generator=gen) / 4
    if positive:
        alpha = alpha.abs()
    shallow = ScalarReluNet([w[:, None].tolist(), [alpha.tolist()]], [b.tolist(), [0.75]])
    L = 4.0
    deep = shallow_to_deep(shallow, shift=L)
    assert deep.depth == width
    assert set(deep.widths()) == ({3} if bool((alpha >= 0).all()) else {4})
    assert deep.piecewise().agrees_with(shallow.piecewise(), lo=-L)
    x = torch.linspace(-L, 3 * L, 1025, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(deep(x), shallow(x), rtol=0, atol=1e-12)


def test_shallow_to_deep_validates():
    with pytest.raises(ValueError, match="one hidden layer"):
        shallow_to_deep(deep_hat_net(2), shift=1.0)
    with pytest.raises(ValueError, match="shift"):
        shallow_to_deep(shallow_net_from_piecewise(hat_piecewise()), shift=-1.0)
    with pytest.raises(ValueError, match="T must be"):
        deep_hat_net(0)
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        deep_hat_net(1)(torch.zeros(3, 1, dtype=torch.float64))
