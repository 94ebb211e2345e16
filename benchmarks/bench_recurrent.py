"""Recurrent layers and the char LM: what `char-lm`'s defaults are chosen from.

Prints, side by side in one run (interleaved rounds, best of --repeats):
  * ms per training step (forward + backward) of the written-out `deepnotes.recurrent.LSTM`
    against `torch.nn.LSTM` with the same weights, at the char LM's sizes;
  * ms per training step of the char LM (`zoo.char_lm.CharRNN`, LSTM 512) in fp32 against
    bf16 autocast, and the ratio.

    .venv/bin/python benchmarks/bench_recurrent.py [--repeats 3] [--steps 5]

Numbers depend on the machine (AMX or not) and on what else runs on it: compare ratios within
one run, and write the CPU model next to every figure you record.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from timing import ms_per_call

from deepnotes.recurrent import LSTM
from deepnotes.zoo.char_lm import CharRNN, Recipe


def layers(batch: int, seq: int, embed: int, hidden: int, steps: int, repeats: int) -> None:
    torch.manual_seed(0)
    fused = torch.nn.LSTM(embed, hidden, batch_first=True)
    ours = LSTM(embed, hidden, batch_first=True)
    ours.load_state_dict(fused.state_dict())
    x = torch.randn(batch, seq, embed)

    def step(module):
        def go():
            out, _ = module(x)
            out.square().mean().backward()
        return go

    best = {"written-out deepnotes.recurrent.LSTM": float("inf"), "torch.nn.LSTM": float("inf")}
    for _ in range(repeats):
        for name, module in zip(best, (ours, fused), strict=True):
            best[name] = min(best[name], ms_per_call(step(module), steps))
    print(f"LSTM layer, batch {batch} x {seq} steps, {embed} -> {hidden}, fp32, fwd+bwd:")
    base = best["torch.nn.LSTM"]
    for name, ms in best.items():
        print(f"  {name:<40} {ms:8.1f} ms/step  {ms / base:5.2f}x torch")


def char_lm(steps: int, repeats: int) -> None:
    recipe = Recipe()
    torch.manual_seed(0)
    model = CharRNN(78, recipe.embed, recipe.hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 78, (recipe.batch_size, recipe.seq_len))

    def step(bf16: bool):
        def go():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits, _ = model(x)
            loss = F.cross_entropy(logits.float().flatten(0, 1), x.flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return go

    best = {"fp32": float("inf"), "bf16 autocast": float("inf")}
    for _ in range(repeats):
        for name, bf16 in (("fp32", False), ("bf16 autocast", True)):
            best[name] = min(best[name], ms_per_call(step(bf16), steps))
    print(f"char LM (LSTM {recipe.hidden}, batch {recipe.batch_size} x {recipe.seq_len}), "
          f"training step:")
    for name, ms in best.items():
        print(f"  {name:<40} {ms:8.1f} ms/step  {best['fp32'] / ms:5.2f}x fp32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"threads: {torch.get_num_threads()}")
    layers(batch=32, seq=64, embed=64, hidden=256, steps=args.steps, repeats=args.repeats)
    char_lm(steps=args.steps, repeats=args.repeats)


if __name__ == "__main__":
    main()
