"""Self-attention against sequence length n: wall time and memory, written-out vs fused.

For each n, one run prints side by side (interleaved rounds, best of --repeats):
  * ms per training step (forward + backward) of `deepnotes.attention.MultiheadAttention`
    (self-attention, batch first) on its written-out path (scores, masked softmax, weighted
    sum) and on its fused path (`F.scaled_dot_product_attention`), and of
    `torch.nn.MultiheadAttention` (need_weights=False, which also calls SDPA), with the ratio
    written-out / fused;
  * the numbers each path stores for backward (`saved_tensors_hooks`, parameters left out),
    in MiB of float32: the written-out path keeps the n x n weights of every head, the fused
    kernel does not;
  * the same for an Elman RNN layer (`nn.RNN`, d -> d) for the O(n) side of the table.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/bench_attention.py [--repeats 3]
        [--steps 5] [--threads 2] [--mask causal] [--lengths 128,256,512,1024,2048]

Numbers depend on the machine (AMX or not) and on what else runs on it: compare ratios within
one run, and write the CPU model next to every figure you record.
"""

from __future__ import annotations

import argparse

import torch
from timing import ms_per_call

from deepnotes.attention.complexity import count_saved
from deepnotes.attention.multihead import MultiheadAttention


def bench(n: int, batch: int, d: int, heads: int, mask: str, steps: int,
          repeats: int) -> None:
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(d, heads, batch_first=True)
    written = MultiheadAttention(d, heads, batch_first=True)
    written.load_state_dict(theirs.state_dict())
    fused = MultiheadAttention(d, heads, batch_first=True, fused=True)
    fused.load_state_dict(theirs.state_dict())
    rnn = torch.nn.RNN(d, d, batch_first=True)
    x = torch.randn(batch, n, d, requires_grad=True)
    attn_mask = torch.ones(n, n, dtype=torch.bool).triu(1) if mask == "causal" else None

    def mha(module):
        def go():
            out, _ = module(x, x, x, attn_mask=attn_mask, need_weights=False)
            return out
        return go

    def rnn_go():
        return rnn(x)[0]

    fns = {"written-out": mha(written), "fused (SDPA)": mha(fused),
           "torch.nn.MultiheadAttention": mha(theirs), "nn.RNN": rnn_go}
    modules = {"written-out": written, "fused (SDPA)": fused,
               "torch.nn.MultiheadAttention": theirs, "nn.RNN": rnn}

    def step(fn):
        def go():
            fn().square().mean().backward()
        return go

    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            best[name] = min(best[name], ms_per_call(step(fn), steps))
    saved = {name: count_saved(fn, exclude=tuple(modules[name].parameters())) * 4 / 2**20
             for name, fn in fns.items()}
    base = best["fused (SDPA)"]
    for name in fns:
        print(f"  n={n:5d}  {name:<28} {best[name]:9.2f} ms/step  {best[name] / base:5.2f}x "
              f"fused   saved {saved[name]:8.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--mask", choices=("none", "causal"), default="none")
    parser.add_argument("--lengths", default="128,256,512,1024,2048")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"threads: {torch.get_num_threads()}, batch {args.batch}, d {args.d}, "
          f"{args.heads} heads, mask {args.mask}, float32, fwd+bwd")
    for n in (int(s) for s in args.lengths.split(",")):
        bench(n, args.batch, args.d, args.heads, args.mask, args.steps, args.repeats)


if __name__ == "__main__":
    main()
