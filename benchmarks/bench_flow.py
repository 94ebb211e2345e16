"""Glow's invertible 1x1 convolution: LU-parameterized (log-det = sum log|s|, inverse by
triangular solves) against the plain form (log-det by ``slogdet``, inverse by ``inv``).

Rows, side by side in one run (same threads, same inputs): for each channel count C, the
milliseconds per batch of ``forward`` (the layer and its log-det, which training needs at
every step), ``forward + backward`` of the summed outputs and log-det (a training step's
share), and ``inverse`` (sampling). Batch ``(N, C, H, W)`` with ``H W`` chosen so that the
batch holds ``--values`` numbers, as Glow's levels do (squeezing trades H W for C).

    .venv/bin/python benchmarks/bench_flow.py [--threads 2] [--steps 50]

Numbers depend on the machine and on what else runs on it: compare rows within one run.
"""

from __future__ import annotations

import argparse
import math

import torch
from timing import cpu_model, ms_per_call

from deepnotes.generative.flows import InvConv1x1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--values", type=int, default=64 * 784 * 2)
    parser.add_argument("--channels", type=int, nargs="+", default=[4, 16, 64, 256])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_model()}, {args.threads} threads, torch {torch.__version__}, float32")
    print(f"{'C':>4} {'H=W':>4} {'form':>6} {'forward':>9} {'fwd+bwd':>9} {'inverse':>9} "
          f"{'log-det only':>13}   (ms per batch of {args.batch})")
    for c in args.channels:
        side = max(1, round(math.sqrt(args.values / args.batch / c)))
        torch.manual_seed(0)
        x = torch.randn(args.batch, c, side, side)
        weight = torch.linalg.qr(torch.randn(c, c))[0]
        for lu in (False, True):
            layer = InvConv1x1(c, lu=lu, weight=weight)
            y = layer(x)[0].detach()

            def fwd(layer=layer, x=x):
                with torch.no_grad():
                    return layer(x)

            def fwd_bwd(layer=layer, x=x):
                out, log_det = layer(x)
                (out.sum() + log_det.sum()).backward()

            def inv(layer=layer, y=y):
                with torch.no_grad():
                    return layer.inverse(y)

            def log_det_only(layer=layer):
                with torch.no_grad():
                    return layer.log_abs_det()

            row = [ms_per_call(fn, args.steps) for fn in (fwd, fwd_bwd, inv, log_det_only)]
            print(f"{c:>4} {side:>4} {'LU' if lu else 'plain':>6} "
                  + " ".join(f"{v:9.3f}" for v in row[:3]) + f" {row[3]:13.4f}")


if __name__ == "__main__":
    main()
