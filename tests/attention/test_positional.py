"""Sinusoidal positional encoding: the formula with base 10000, and PE(pos + k) = M_k PE(pos)
for one fixed block-rotation M_k at every position."""

from __future__ import annotations

import math

import pytest
import torch

from deepnotes.attention.positional import (
    BASE,
    SinusoidalPositionalEncoding,
    shift_matrix,
    sinusoidal_encoding,
)


def test_the_formula_with_the_papers_base():
    assert BASE == 10000.0
    pe = sinusoidal_encoding(50, 16, dtype=torch.float64)
    pos, i = 37, 3
    assert pe[pos, 2 * i].item() == pytest.approx(math.sin(pos / 10000 ** (2 * i / 16)))
    assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(pos / 10000 ** (2 * i / 16)))
    notes = sinusoidal_encoding(50, 16, base=1e5, dtype=torch.float64)
    assert notes[pos, 2 * i].item() == pytest.approx(math.sin(pos / 1e5 ** (2 * i / 16)))
    assert not torch.allclose(pe, notes)


@pytest.mark.parametrize("k", [1, 3, 17])
def test_a_shift_by_k_is_one_fixed_rotation(k):
    d = 32
    pe = sinusoidal_encoding(200, d, dtype=torch.float64)
    m = shift_matrix(k, d)
    torch.testing.assert_close(pe[:-k] @ m.T, pe[k:], rtol=0, atol=1e-10)
    torch.testing.assert_close(m @ m.T, torch.eye(d, dtype=torch.float64))  # orthogonal
    blocks = m.reshape(d // 2, 2, d // 2, 2)
    off = blocks.clone()
    off[range(d // 2), :, range(d // 2), :] = 0
    assert torch.count_nonzero(off) == 0  # only the 2x2 diagonal blocks are nonzero
    torch.testing.assert_close(shift_matrix(2 * k, d), m @ m)  # M_{2k} = M_k^2


def test_the_module_adds_the_table_and_refuses_long_inputs():
    module = SinusoidalPositionalEncoding(8, max_len=10)
    x = torch.zeros(2, 6, 8)
    torch.testing.assert_close(module(x)[1], sinusoidal_encoding(6, 8))
    torch.testing.assert_close(module(x[:, :2], offset=4)[0], sinusoidal_encoding(6, 8)[4:])
    assert "pe" not in module.state_dict()
    with pytest.raises(ValueError, match="max_len"):
        module(torch.zeros(1, 11, 8))
    with pytest.raises(ValueError, match="even"):
        sinusoidal_encoding(4, 7)
