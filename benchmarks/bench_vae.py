"""Fashion-MNIST VAE: pytorch/examples' recipe against deepnotes' training of the same model.

Rows, one after the other in one run (same threads, same test evaluation):
  * "pytorch/examples": its VAE recipe written with deepnotes' VAE (MLP 784-400-20, ReLU,
    Adam 1e-3, batch 128, BCE on grey levels summed over pixels + KL, summed over the batch),
    a per-sample torch DataLoader (torchvision's dataset ``__getitem__``: a PIL image per
    sample, then ``transforms.ToTensor()``; torchvision itself is not a dependency),
    ``--epochs`` epochs (3).
  * "deepnotes b128": the same model, objective (per image, batch mean; Adam is invariant to
    the scale), batch and learning rate with in-memory index batches (``Batches``), until it
    reaches the first row's test -ELBO, then on to the first row's training time.
  * "deepnotes b512 bf16": batch 512, learning rate 2e-3, bfloat16 autocast, for the first
    row's training time.

The clock counts training only; the test -ELBO (pytorch/examples' test loss: whole test set,
one z per image, seeded) is evaluated every half epoch with the clock stopped.

    .venv/bin/python benchmarks/bench_vae.py [--epochs 3] [--threads 2]

Numbers depend on the machine and on what else runs on it: compare rows within one run.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from timing import cpu_model

from deepnotes.autoencoders import VAE, gaussian_kl, grey_neg_elbo, neg_elbo_terms
from deepnotes.data import Batches, load_fashion_mnist


def test_loss(model: VAE, x_test: torch.Tensor) -> float:
    return grey_neg_elbo(model, x_test, generator=torch.Generator().manual_seed(123))["neg_elbo"]


def examples_row(x: torch.Tensor, labels: torch.Tensor, x_test: torch.Tensor, epochs: int
                 ) -> list[tuple]:
    """pytorch/examples' VAE recipe; returns [(train seconds, epochs, test -ELBO)]."""
    import numpy as np
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset

    class PerSample(Dataset):
        # torchvision's MNIST/FashionMNIST __getitem__ + transforms.ToTensor(), without
        # torchvision: a PIL image per sample, converted to a float tensor in [0, 1].
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            img = Image.fromarray(x[i].numpy(), mode="L")
            t = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(28, 28, 1)
            return t.permute(2, 0, 1).contiguous().float().div(255.0), int(labels[i])

    loader = DataLoader(PerSample(), batch_size=128, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    trace, clock = [], 0.0
    for epoch in range(epochs):
        model.train()
        t0 = time.perf_counter()
        for xb, _ in loader:
            xb = xb.view(-1, 784)
            logits, mu, log_var = model(xb)
            bce = F.binary_cross_entropy(torch.sigmoid(logits), xb, reduction="sum")
            loss = bce + gaussian_kl(mu, log_var).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        clock += time.perf_counter() - t0
        trace.append((clock, epoch + 1, test_loss(model, x_test)))
    return trace


def deepnotes_row(x: torch.Tensor, x_test: torch.Tensor, batch_size: int, lr: float,
                  bf16: bool, seconds: float) -> list[tuple]:
    """In-memory batches for ``seconds`` of training; evaluated every half epoch."""
    batches = Batches(x.reshape(len(x), -1), batch_size=batch_size, seed=0)
    half = max(1, batches.steps_per_epoch // 2)
    torch.manual_seed(0)
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(1)
    trace, clock, step = [], 0.0, 0
    while clock < seconds:
        model.train()
        t0 = time.perf_counter()
        for _ in range(half):
            (xb,) = batches.batch(step)
            xb = xb.float().div_(255.0)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                rec, kl, _, _ = neg_elbo_terms(model, xb, g)
            loss = (rec + kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        clock += time.perf_counter() - t0
        trace.append((clock, step / batches.steps_per_epoch, test_loss(model, x_test)))
    return trace


def first_below(trace: list[tuple], target: float) -> tuple | None:
    return next((t for t in trace if t[2] <= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--first", type=int, default=0, help="first N training images (check)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, labels = load_fashion_mnist("train", first=args.first or None)
    x_test = load_fashion_mnist("test")[0].reshape(-1, 784).float().div(255.0)
    print(f"{cpu_model()}, {args.threads} threads, torch {torch.__version__}")
    ref = examples_row(x, labels, x_test, args.epochs)
    ref_time, _, ref_loss = ref[-1]
    print("pytorch/examples (per-sample DataLoader, batch 128): "
          + ", ".join(f"epoch {e}: {v:.1f} nats at {t:.1f}s" for t, e, v in ref))
    rows = {"deepnotes b128 fp32": deepnotes_row(x, x_test, 128, 1e-3, False, ref_time),
            "deepnotes b512 bf16 lr 2e-3": deepnotes_row(x, x_test, 512, 2e-3, True, ref_time)}
    print(f"{'row':<30} {'time to ' + format(ref_loss, '.1f'):>14} {'vs examples':>12} "
          f"{'-ELBO at ' + format(ref_time, '.1f') + 's':>16}")
    print(f"{'pytorch/examples':<30} {ref_time:>13.1f}s {'1.00x':>12} {ref_loss:>16.1f}")
    for name, trace in rows.items():
        hit = first_below(trace, ref_loss)
        reach = f"{hit[0]:.1f}s ({hit[1]:.1f} ep)" if hit else "not reached"
        ratio = f"{hit[0] / ref_time:.2f}x" if hit else "-"
        print(f"{name:<30} {reach:>14} {ratio:>12} {trace[-1][2]:>16.1f} "
              f"({trace[-1][1]:.1f} epochs)")
    print("traces (train s, epochs, test -ELBO):")
    for name, trace in rows.items():
        print(f"  {name}: " + ", ".join(f"({t:.1f}, {e:.1f}, {v:.1f})" for t, e, v in trace))
    assert math.isfinite(ref_loss)


if __name__ == "__main__":
    main()
