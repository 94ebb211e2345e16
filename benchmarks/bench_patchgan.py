"""PatchGAN against the full-image discriminator of ``pix2pix-edges`` (notes 8.18: "it performed
faster than regular discriminator"): milliseconds per discriminator step, forward and backward.

Both discriminators of :mod:`deepnotes.generative.pix2pix` at the experiment's width (32), one
after the other in one run, interleaved over ``--repeats`` rounds (best round kept), on a
batch of 64 pairs (edges, image) as in training: the D step's two forward passes (real pair,
fake pair), the loss and its backward. Rows: plain fp32, and channels_last with bf16 autocast
(the experiment's setting). Parameters and multiply-adds per pair are printed beside them.

    .venv/bin/python benchmarks/bench_patchgan.py [--threads 2] [--steps 200] [--repeats 3]

Numbers depend on the machine and on what else runs on it: compare rows within one run.
"""

from __future__ import annotations

import argparse

import torch
from timing import cpu_model, ms_per_call

from deepnotes.generative.pix2pix import (
    FullImageDiscriminator,
    PatchDiscriminator,
    count_parameters,
    discriminator_loss,
    multiply_adds,
)

BATCH = 64
WIDTH = 32


def _step(d: torch.nn.Module, x, real, fake, bf16: bool):
    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = discriminator_loss(d(x, real).float(), d(x, fake).float())
        d.zero_grad(set_to_none=True)
        loss.backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_model()}, {args.threads} threads, torch {torch.__version__}, "
          f"batch {BATCH} pairs, width {WIDTH}, {args.steps} steps x {args.repeats} rounds")
    gen = torch.Generator().manual_seed(0)
    x, real, fake = (torch.rand(BATCH, 1, 28, 28, generator=gen) * 2 - 1 for _ in range(3))
    one = torch.zeros(1, 1, 28, 28)
    torch.manual_seed(0)
    nets = {"PatchGAN (7x7 logits, 10x10 patches)": PatchDiscriminator(WIDTH),
            "full image (one logit)": FullImageDiscriminator(WIDTH)}
    for name, d in nets.items():
        print(f"{name:38s} parameters {count_parameters(d):>7,d}  multiply-adds per pair "
              f"{multiply_adds(d, one, one):>10,d}")
    print(f"D step (2 forwards + backward)  {'PatchGAN ms':>12s} {'full ms':>10s} {'ratio':>7s}")
    for label, cl, bf16 in (("fp32", False, False), ("channels_last + bf16", True, True)):
        steps = {}
        for name, d in nets.items():
            fmt = torch.channels_last if cl else torch.contiguous_format
            d = d.to(memory_format=fmt)
            steps[name] = _step(d, *(t.contiguous(memory_format=fmt) for t in (x, real, fake)),
                                bf16)
        best = {name: float("inf") for name in nets}
        for _ in range(args.repeats):
            for name, fn in steps.items():
                best[name] = min(best[name], ms_per_call(fn, args.steps))
        patch, full = best.values()
        print(f"{label:30s} {patch:12.2f} {full:10.2f} "
              f"{patch / full:7.3f}")


if __name__ == "__main__":
    main()
