"""Deep Image Prior iterations per second: fp32 against bf16 autocast, contiguous against
channels_last, side by side in one run (experiments ``dip-denoise`` and ``dip-fitting``).

Each row times :meth:`deepnotes.restoration.dip.DIPFit.step` (forward, MSE, backward, Adam,
output EMA, curves) of the experiments' network (``SkipNet``: 5 levels of ``--width``
channels, 4 skip channels, 32 input channels) on the experiments' image sizes (128², the
``dip-denoise`` quick tier, and 64², ``dip-fitting``), after a warm-up of 5 steps, with the
same initial weights and input for every row. The final MSE after the timed steps is
printed beside each row (bf16 must fit like fp32, not just faster).

    .venv/bin/python benchmarks/bench_dip.py [--steps 40] [--threads 2] [--width 32]

Numbers depend on the machine and on what else runs on it: compare rows within one run.
"""

from __future__ import annotations

import argparse
import time

import torch
from timing import cpu_model

from deepnotes.restoration.dip import DIPFit, SkipNet, make_input

ROWS = [("fp32", False, False), ("fp32 channels_last", False, True),
        ("bf16", True, False), ("bf16 channels_last", True, True)]


def row(size: int, width: int, steps: int, autocast: bool, channels_last: bool):
    target = torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(1))
    z = make_input(32, (size, size), torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = SkipNet(32, 1, down=(width,) * 5, up=(width,) * 5, skip=(4,) * 5)
    fit = DIPFit(net, z, target, autocast=autocast, channels_last=channels_last)
    for _ in range(5):
        fit.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        fit.step()
    seconds = time.perf_counter() - t0
    return steps / seconds, fit.state["mse"][-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--width", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_model()}, {args.threads} threads, torch {torch.__version__}, "
          f"width {args.width}, {args.steps} timed steps per row")
    print("| size | row | it/s | ms/it | MSE after |")
    print("|---|---|---|---|---|")
    for size in (128, 64):
        for name, autocast, channels_last in ROWS:
            rate, mse = row(size, args.width, args.steps, autocast, channels_last)
            print(f"| {size} | {name} | {rate:.1f} | {1000 / rate:.1f} | {mse:.4f} |",
                  flush=True)


if __name__ == "__main__":
    main()
