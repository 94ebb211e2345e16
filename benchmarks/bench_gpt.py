"""The character GPT (`gpt-shakespeare`): loss against wall time, nanoGPT's CPU recipe against
deepnotes' own, in one run; tokens/s, the fraction of peak FLOP/s, the KV-cache speed-up.

Prints, in one process, one row after the other on the same machine state:
  * the machine's peak FLOP/s, measured with a large matmul (4096^2) in fp32 and in bf16;
  * two training rows of `deepnotes.attention.gpt.GPT` on the Shakespeare plays (first 90%),
    each a table of val_loss (chapter 5's function: 64-character windows over the whole
    validation split, evaluated with the clock stopped) against training seconds:
      - "nanoGPT CPU": nanoGPT's README CPU configuration (4 layers, 4 heads, 128 wide,
        batch 12, block 64, AdamW lr 1e-3, warm-up 100, cosine to 1e-4 over 2000 iterations,
        beta2 0.99, weight decay 0.1, clip 1, no dropout, fp32);
      - "deepnotes": the `gpt-shakespeare` quick-tier recipe (`zoo.gpt_shakespeare.Recipe()`);
    then the time at which the own recipe first reaches the nanoGPT row's final val_loss
    (linear interpolation between evaluations), and the ratio to the nanoGPT row's time
    (target <= 1/3);
  * tokens/s of each row and the fraction of the measured peak it reaches (matrix-multiply
    FLOPs: `gpt.training_flops_per_token`);
  * greedy generation of 500 characters with and without the KV cache from the own row's
    model: seconds each, the speed-up, and whether the tokens agree.

Both rows use the same model code and the same training step as `zoo.gpt_shakespeare.train`
(written out here without the run context); they differ only in the recipe.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/bench_gpt.py [--evals 12] [--threads 2]

About 4 minutes on 2 cores. Numbers depend on the machine (AMX or not) and on what else runs
on it: write the CPU model next to every figure you record.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
import torch.nn.functional as F
from timing import cpu_model

from deepnotes.attention.gpt import parameter_groups, training_flops_per_token
from deepnotes.engine.streams import stream_generator
from deepnotes.zoo.gpt_shakespeare import (
    Recipe,
    batch,
    build,
    corpus_splits,
    learning_rate,
    val_loss,
)

NANOGPT_CPU = Recipe(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0,
                     batch_size=12, steps=2000, lr=1e-3, min_lr_fraction=0.1, warmup=100,
                     weight_decay=0.1, beta2=0.99, clip=1.0, bf16=False)


def peak_flops(dtype: torch.dtype, n: int = 4096, repeats: int = 5) -> float:
    """Best FLOP/s of an (n x n) @ (n x n) matmul in ``dtype``."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # warm-up: oneDNN picks its kernel
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def train_row(recipe: Recipe, vocab_size: int, train_ids: torch.Tensor,
              val_ids: torch.Tensor, evals: int, seed: int = 0):
    """Train per ``recipe``; ``(model, [(step, train_seconds, val_loss)], train_seconds)``."""
    torch.manual_seed(seed)
    model = build(recipe, vocab_size)
    optimizer = torch.optim.AdamW(parameter_groups(model, recipe.weight_decay), lr=recipe.lr,
                                  betas=(0.9, recipe.beta2))
    at = {round(recipe.steps * (i + 1) / evals) for i in range(evals)}
    curve, clock = [(0, 0.0, val_loss(model, val_ids))], 0.0
    for step in range(recipe.steps):
        t0 = time.perf_counter()
        lr = learning_rate(step, recipe)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = batch(train_ids, recipe.batch_size, recipe.block_size,
                     stream_generator(seed, "batches-train", step))
        model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=recipe.bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.clip)
        optimizer.step()
        clock += time.perf_counter() - t0
        if step + 1 in at:  # the clock is stopped while scoring
            curve.append((step + 1, clock, val_loss(model, val_ids)))
            print(f"    step {step + 1:5d}  {clock:7.1f} s  val_loss {curve[-1][2]:.4f}",
                  flush=True)
    model.eval()
    return model, curve, clock


def time_to(curve, target: float) -> float | None:
    """The first training time at which ``curve`` reaches ``target`` (interpolated)."""
    for (_, t0, v0), (_, t1, v1) in zip(curve, curve[1:], strict=False):
        if v1 <= target:
            return t0 + (t1 - t0) * (v0 - target) / (v0 - v1) if v0 > target else t0
    return None


def kv_speedup(model, prompt: torch.Tensor, length: int = 500) -> tuple[float, float, bool]:
    out, seconds = {}, {}
    for use_cache in (True, False):
        model.generate(prompt, 20, temperature=0, use_cache=use_cache)  # warm-up
        t0 = time.perf_counter()
        out[use_cache] = model.generate(prompt, length, temperature=0, use_cache=use_cache)
        seconds[use_cache] = time.perf_counter() - t0
    return seconds[True], seconds[False], bool(torch.equal(out[True], out[False]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=12, help="val_loss points per row")
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--own-steps", type=int, default=0, help="0: the quick tier's")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    own = Recipe()
    if args.own_steps:
        own = dataclasses.replace(own, steps=args.own_steps)
    print(f"{cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    peak = {"fp32": peak_flops(torch.float32), "bf16": peak_flops(torch.bfloat16)}
    print(f"peak (4096^2 matmul): fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s")
    vocab, train_ids, val_ids = corpus_splits("shakespeare")
    rows = {}
    for name, recipe in (("nanoGPT CPU", NANOGPT_CPU), ("deepnotes", own)):
        print(f"  {name}: {recipe.n_layer} x {recipe.n_embd}, batch {recipe.batch_size} x "
              f"{recipe.block_size}, lr {recipe.lr:g}, {recipe.steps} steps, "
              f"{'bf16' if recipe.bf16 else 'fp32'}", flush=True)
        rows[name] = (recipe, *train_row(recipe, len(vocab), train_ids, val_ids, args.evals))
    print(f"\n{'row':<12} {'final val_loss':>14} {'train s':>8} {'steps/s':>8} "
          f"{'tokens/s':>9} {'GFLOP/s':>8} {'of peak':>8}")
    for name, (recipe, _, curve, seconds) in rows.items():
        tokens = recipe.steps * recipe.batch_size * recipe.block_size / seconds
        flops = tokens * training_flops_per_token(recipe.n_layer, recipe.n_embd,
                                                  recipe.block_size, len(vocab))
        share = flops / peak["bf16" if recipe.bf16 else "fp32"]
        print(f"{name:<12} {curve[-1][2]:14.4f} {seconds:8.1f} {recipe.steps / seconds:8.1f} "
              f"{tokens:9.0f} {flops / 1e9:8.1f} {share:8.1%}")
    target = rows["nanoGPT CPU"][2][-1][2]
    base_time = rows["nanoGPT CPU"][3]
    reach = time_to(rows["deepnotes"][2], target)
    if reach is None:
        print(f"\ndeepnotes' recipe never reached nanoGPT's final {target:.4f}")
    else:
        print(f"\ndeepnotes' recipe reaches nanoGPT's final val_loss {target:.4f} after "
              f"{reach:.1f} s, nanoGPT's recipe after {base_time:.1f} s: "
              f"{reach / base_time:.2f} of its time (target <= 0.33)")
    model = rows["deepnotes"][1]
    cached, plain, same = kv_speedup(model, vocab.encode("ROMEO:")[None])
    print(f"500 greedy characters: KV cache {cached:.2f} s, no cache {plain:.2f} s, "
          f"speed-up {plain / cached:.2f}x, same tokens: {same}")


if __name__ == "__main__":
    main()
