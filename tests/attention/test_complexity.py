"""Counting FLOPs and stored-for-backward numbers, and the dependency graphs of the
complexity table (notes 6.3)."""

from __future__ import annotations

import math

import pytest
import torch

from deepnotes.attention.complexity import (
    attention_core,
    count_flops,
    count_saved,
    layer_cost,
    loglog_slope,
    max_path_length,
    sequential_operations,
    successors,
)


@pytest.mark.parametrize(("n", "d"), [(8, 4), (32, 16), (20, 64)])
def test_flop_counts_are_the_textbook_ones(n, d):
    k = 5
    assert layer_cost("attention-core", n, d)["flops"] == 4 * n * n * d
    assert layer_cost("attention-layer", n, d, heads=2)["flops"] == 8 * n * d * d + 4 * n * n * d
    assert layer_cost("rnn", n, d)["flops"] == 4 * n * d * d
    assert layer_cost("conv", n, d, kernel=k)["flops"] == 2 * k * n * d * d


def test_saved_counts_the_softmax_once_and_leaves_parameters_out():
    n, d = 12, 4
    q, k, v = (torch.randn(1, n, d, requires_grad=True) for _ in range(3))
    assert count_saved(attention_core, q, k, v) == 3 * n * d + n * n  # Q, K, V, softmax
    lin = torch.nn.Linear(d, d)
    x = torch.randn(n, d, requires_grad=True)
    assert count_saved(lin, x, exclude=tuple(lin.parameters())) == n * d
    assert count_saved(lin, x) == n * d + d * d
    assert count_flops(lin, x) == 2 * n * d * d


def test_loglog_slope():
    assert loglog_slope([1, 2, 4, 8], [3, 12, 48, 192]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="layer"):
        layer_cost("transformer", 4, 4)


def test_dependency_graphs():
    assert sorted(successors("rnn", 4, 3, (1, 1))) == [(1, 2), (2, 1)]
    assert sorted(successors("conv", 9, 3, (0, 7))) == [(1, 7), (1, 8)]
    assert sorted(successors("dilated", 27, 3, (1, 0))) == [(2, 0), (2, 3), (2, 6)]
    with pytest.raises(ValueError, match="graph"):
        list(successors("mlp", 4, 3, (0, 0)))


@pytest.mark.parametrize("n", [2, 3, 10, 27, 28, 64])
def test_sequential_operations_and_path_lengths(n):
    assert sequential_operations("attention", n) == 1
    assert sequential_operations("conv", n) == 1
    assert sequential_operations("dilated", n) == 1
    assert sequential_operations("rnn", n) == n
    assert max_path_length("attention", n) == 1
    assert max_path_length("rnn", n) == n
    for k in (2, 3, 4):
        assert max_path_length("conv", n, k) == math.ceil((n - 1) / (k - 1))
        assert max_path_length("dilated", n, k) == math.ceil(math.log(n, k) - 1e-12)


def test_an_unreachable_target_is_reported():
    with pytest.raises(ValueError, match="not reachable"):
        max_path_length("conv", 50, 3, max_layers=3)
