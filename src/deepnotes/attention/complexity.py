"""The complexity table of notes 6.3 (Vaswani et al. 2017, table 1), measured rather than
recited.

Per-layer cost, counted on the layers themselves (machine-independent):

* :func:`count_flops`: FLOPs of one forward pass as ``torch.utils.flop_counter`` counts them
  (matrix products and convolutions, 2 per multiply-add; softmax, tanh and additions are not
  counted, they are O(n^2) or O(n d) and never the leading term);
* :func:`count_saved`: the numbers autograd stores for the backward pass (through
  ``torch.autograd.graph.saved_tensors_hooks``), each stored tensor's storage counted once,
  parameters left out;
* :func:`layer_cost` for the self-attention core softmax(Q K^T / sqrt(d)) V, the full
  self-attention layer with its four projections (:class:`MultiheadAttention`), an Elman RNN
  layer (``nn.RNN``, d -> d) and a convolution (``nn.Conv1d``, d -> d channels, kernel k);
* :func:`loglog_slope`: the least-squares slope of log(cost) against log(n) or log(d).

Sequential operations and maximum path length, from each layer's dependency graph
(:func:`successors`): nodes ``(layer, position)``, layer 0 the inputs, an edge from every value
a node reads to the node.

* :func:`sequential_operations`: the longest chain of dependent computations in one layer
  (the longest path of its graph, in edges): what cannot run in parallel;
* :func:`max_path_length`: the fewest edges from the first input position to the last
  position's output, in a stack of as many layers as it takes (breadth-first search):
  how far the first word's signal travels before the last output can depend on it.

Graphs: ``"attention"`` (every output reads every input), ``"rnn"`` (h_i reads x_i and
h_{i-1}), ``"conv"`` (causal kernel k: output i reads inputs i-k+1..i), ``"dilated"`` (the
same with dilation k^(l-1) in layer l, WaveNet-style).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deepnotes.attention.multihead import MultiheadAttention

LAYERS = ("attention-core", "attention-layer", "rnn", "conv")
GRAPHS = ("attention", "rnn", "conv", "dilated")


# ----------------------------------------------------------------------------- counting
def count_flops(fn: Callable[..., object], *args: object) -> int:
    """FLOPs of ``fn(*args)`` counted by ``FlopCounterMode`` (matmuls, convolutions)."""
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


def count_saved(fn: Callable[..., object], *args: object,
                exclude: tuple[torch.Tensor, ...] = ()) -> int:
    """Numbers autograd keeps alive for backward while ``fn(*args)`` runs.

    Counted per storage: a tensor saved twice, or saved as several views (``bmm`` saves a
    reshaped view of a 4-D operand), counts once, and a saved view keeps its whole storage
    alive, so the whole storage counts. Storages of ``exclude`` (the parameters) are left out.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    sizes: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            sizes[storage.data_ptr()] = storage.nbytes() // t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*args)
    return sum(sizes.values())


def attention_core(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d)) V for (..., n, d) tensors (no projections)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-1) @ v


def layer_cost(layer: str, n: int, d: int, kernel: int = 3, heads: int = 1) -> dict[str, int]:
    """``{"flops", "saved"}`` of one forward pass of ``layer`` over a sequence of n vectors of
    width d (batch 1, float32, weights with ``requires_grad`` so autograd saves what it
    needs)."""
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, n, d, generator=g, requires_grad=True)
    params: tuple[torch.Tensor, ...] = ()
    if layer == "attention-core":
        q, k, v = (torch.randn(1, n, d, generator=g, requires_grad=True) for _ in range(3))
        fn, args = attention_core, (q, k, v)
    elif layer == "attention-layer":
        module = MultiheadAttention(d, heads, batch_first=True)
        params = tuple(module.parameters())
        fn, args = (lambda x: module(x, x, x, need_weights=False)), (x,)
    elif layer == "rnn":
        module = nn.RNN(d, d, batch_first=True)
        params = tuple(module.parameters())
        fn, args = module, (x,)
    else:
        module = nn.Conv1d(d, d, kernel, padding=kernel // 2)
        params = tuple(module.parameters())
        fn, args = module, (x.transpose(1, 2),)
    return {"flops": count_flops(fn, *args), "saved": count_saved(fn, *args, exclude=params)}


def loglog_slope(xs, ys) -> float:
    """Least-squares slope of log(y) against log(x)."""
    slope, _ = np.polyfit(np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float)), 1)
    return float(slope)


# ----------------------------------------------------------------------------- graphs
def successors(graph: str, n: int, kernel: int, node: tuple[int, int]) -> Iterator[
        tuple[int, int]]:
    """The nodes that read ``node = (layer, position)`` directly (layer 0: the inputs)."""
    layer, i = node
    if graph == "attention":  # every output of the next layer reads every position
        yield from ((layer + 1, j) for j in range(n))
    elif graph == "rnn":  # h_i^{l+1} reads h_i^l; inside a layer h_{i+1} reads h_i
        yield (layer + 1, i)
        if layer >= 1 and i + 1 < n:
            yield (layer, i + 1)
    elif graph in ("conv", "dilated"):  # causal: output j reads inputs j - (k-1) dil .. j
        dilation = kernel ** layer if graph == "dilated" else 1  # layer l+1: k^l
        yield from ((layer + 1, i + t * dilation) for t in range(kernel)
                    if i + t * dilation < n)
    else:
        raise ValueError(f"graph must be one of {GRAPHS}, got {graph!r}")


def sequential_operations(graph: str, n: int, kernel: int = 3) -> int:
    """Longest path (in edges) of one layer's dependency graph: the computations of that
    layer that must run one after another."""
    nodes = sorted([(0, i) for i in range(n)] + [(1, i) for i in range(n)])  # topological
    longest = dict.fromkeys(nodes, 0)
    for node in nodes:
        for nxt in successors(graph, n, kernel, node):
            if nxt[0] <= 1:
                longest[nxt] = max(longest[nxt], longest[node] + 1)
    return max(longest.values())


def max_path_length(graph: str, n: int, kernel: int = 3, max_layers: int | None = None) -> int:
    """Fewest edges from input position 0 to the output at position n-1 of some layer of a
    deep enough stack (breadth-first search; at most ``max_layers``, default n, layers)."""
    max_layers = n if max_layers is None else max_layers
    start = (0, 0)
    dist = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node[0] >= 1 and node[1] == n - 1:
            return dist[node]
        for nxt in successors(graph, n, kernel, node):
            if nxt[0] <= max_layers and nxt not in dist:
                dist[nxt] = dist[node] + 1
                queue.append(nxt)
    raise ValueError(f"position {n - 1} is not reachable from 0 within {max_layers} layers")
