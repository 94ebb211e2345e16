"""Fashion-MNIST MLP: what the defaults of `mlp-fashion` are chosen from.

Prints, side by side in one run (interleaved, best of --repeats):
  * ms per training step for 1 vs 2 threads and fp32 vs bf16 autocast (the quick-tier model);
  * one epoch with in-memory index-sliced batches vs a per-sample torch DataLoader.

    .venv/bin/python benchmarks/bench_mlp.py [--repeats 3] [--steps 100]

Numbers depend on the machine and on what else runs on it: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from deepnotes.data import Batches, load_fashion_mnist, standardize_images
from deepnotes.experiments.ch02.mlp_fashion import Config
from deepnotes.nn import MLP


def prepare(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 28, 28) -> standardized float (B, 784), as mlp-fashion trains."""
    return standardize_images(x, flatten=True)


def _model() -> MLP:
    torch.manual_seed(0)
    return MLP([784, *Config().hidden, 10], fused=True)


def step_time(threads: int, bf16: bool, steps: int, batches: Batches) -> float:
    torch.set_num_threads(threads)
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for i in range(steps + 10):
        if i == 10:
            t0 = time.perf_counter()
        x, y = batches.batch(i)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(prepare(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps * 1e3


def epoch_in_memory(batches: Batches) -> float:
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for i in range(batches.steps_per_epoch):
        x, y = batches.batch(i)
        loss = F.cross_entropy(model(prepare(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def epoch_dataloader(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    from torch.utils.data import DataLoader, Dataset

    class PerSample(Dataset):
        # What a typical tutorial does: one Python call and one conversion per image.
        def __len__(self):
            return len(y)

        def __getitem__(self, i):
            return prepare(x[i : i + 1])[0], y[i]

    loader = DataLoader(PerSample(), batch_size=batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    x, y = load_fashion_mnist("train")
    batch_size = Config().batch_size
    batches = Batches(x, y, batch_size=batch_size, seed=0)

    print(f"MLP {[784, *Config().hidden, 10]}, batch {batch_size}, best of {args.repeats}")
    cells = [(t, bf16) for t in (1, 2) for bf16 in (False, True)]
    best = {c: float("inf") for c in cells}
    for _ in range(args.repeats):
        for c in cells:  # interleaved, so slow drifts of the machine hit every cell alike
            best[c] = min(best[c], step_time(c[0], c[1], args.steps, batches))
    base = best[(1, False)]
    print(f"{'threads':>8} {'precision':>10} {'ms/step':>9} {'vs 1 thread fp32':>17}")
    for (t, bf16), ms in best.items():
        print(f"{t:>8} {'bf16-mixed' if bf16 else 'fp32':>10} {ms:>9.2f} {base / ms:>16.2f}x")

    torch.set_num_threads(1)
    mem = min(epoch_in_memory(batches) for _ in range(args.repeats))
    loader = epoch_dataloader(x, y, batch_size)
    print(f"one epoch, 1 thread: in-memory slices {mem:.2f}s, per-sample DataLoader "
          f"{loader:.2f}s ({loader / mem:.1f}x slower)")


if __name__ == "__main__":
    main()
