"""IMLE's exact nearest-neighbour search against the dimension: GLO's 64-d latent space vs
pixel space (784), side by side (notes 8.13; experiment ``glann-fashion``).

:func:`deepnotes.generative.glo.nearest_neighbours` (chunked over the candidates, one matrix
product per chunk, running minimum) for ``n`` queries against ``m`` candidates, float32, at
``d = 64`` and ``d = 784``; each row is the best of ``--repeats`` rounds of ``--steps`` calls
(after one warm-up call), with the counted FLOPs of :func:`nn_search_flops` and the rate they
imply. The counted FLOPs grow linearly in ``d``; wall time follows them only as far as the
products dominate (at small ``d`` the norms, the combination and the argmin are a larger share).

    .venv/bin/python benchmarks/bench_imle.py [--threads 2] [--n 256] [--m 2560 10240]

Numbers depend on the machine and its load: compare rows within one run.
"""

from __future__ import annotations

import argparse

import torch
from timing import cpu_model, ms_per_call

from deepnotes.generative.glo import nearest_neighbours, nn_search_flops


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=256, help="queries (data points) per step")
    parser.add_argument("--m", type=int, nargs="+", default=[2560, 10240], help="candidates")
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_model()}; torch {torch.__version__}, {args.threads} threads, "
          f"n = {args.n} queries, chunk {args.chunk}, float32")
    print(f"{'m':>6} {'d':>4} {'ms/search':>10} {'MFLOP':>9} {'GFLOP/s':>8} "
          f"{'time vs d=64':>12} {'FLOPs vs d=64':>13}")
    gen = torch.Generator().manual_seed(0)
    for m in args.m:
        base = None
        for d in (64, 784):
            q = torch.randn(args.n, d, generator=gen)
            c = torch.randn(m, d, generator=gen)
            ms = min(ms_per_call(lambda q=q, c=c: nearest_neighbours(q, c, args.chunk),
                                 args.steps) for _ in range(args.repeats))
            flops = nn_search_flops(args.n, m, d)
            base = base or (ms, flops)
            print(f"{m:>6} {d:>4} {ms:>10.3f} {flops / 1e6:>9.1f} {flops / ms / 1e6:>8.1f} "
                  f"{ms / base[0]:>11.2f}x {flops / base[1]:>12.2f}x")


if __name__ == "__main__":
    main()
