"""Speed of the Fashion-MNIST CNN (``cnn-fashion``): memory format x precision, and
time-to-88% against a per-sample DataLoader.

Part 1, for the quick tier's network and batch size: training throughput (images/s, best of
``--rounds`` interleaved rounds of ``--steps`` steps, so load from other processes hits every
variant alike) and inference throughput for

    memory format in {contiguous (NCHW), channels_last (NHWC)} x precision in {fp32, bf16 autocast},

plus the test accuracy after ``--epochs`` epochs of training with each precision (same seed,
same batches), to check that bf16 does not change results beyond noise.

Part 2, time-to-88% test accuracy, side by side in one run, same network, optimizer, one-cycle
schedule and batch size (by default the quick tier's: batch 128, one-cycle to lr 0.1 over 5
epochs; ``--batch-size``, ``--lr`` and ``--schedule-epochs`` change them for every pipeline
alike). Measured (``benchmarks/README.md``): a one-epoch cycle brings deepnotes to 88% sooner
(300 steps instead of 375) but the fp32 baseline sooner still (225 steps), so the ratio falls;
batches of 256-1024 needed more images to reach 88% than 128, so they do not help either:

* deepnotes: uint8 tensors in memory, batches by index slicing (``deepnotes.data.Batches``),
  the quick tier's memory format and precision;
* per-sample DataLoader: a ``Dataset`` that does per image what torchvision's FashionMNIST
  with ``ToTensor()`` + ``Normalize()`` does (PIL image, to tensor, normalize), default
  collation, contiguous fp32: the usual example script;
* a lean per-sample DataLoader (tensor ops only) with deepnotes' format and precision, to
  split the gain between the data pipeline and format/precision.

All three see the same batches in the same order (a sampler replays ``Batches``' order), so
they differ in speed only, up to bf16 rounding.

The clock counts training only; the test set is evaluated every ``--eval-every`` steps with
the clock stopped.

    .venv/bin/python benchmarks/bench_cnn.py [--threads N] [--rounds 3] [--steps 8]
        [--epochs 1] [--batch-size 128] [--lr 0.1] [--schedule-epochs 5]
        [--skip-table] [--skip-race]
"""

from __future__ import annotations

import dataclasses
import os
import time

import torch
import typer

from deepnotes.data import FASHION_MEAN, FASHION_STD, Batches, load_fashion_mnist
from deepnotes.experiments.cnn_fashion import (
    EXPERIMENT,
    Config,
    accuracy,
    build_cnn,
    cnn_loss,
    normalize,
)

TARGET = 0.88
VARIANTS = [(cl, bf) for cl in (False, True) for bf in (False, True)]


def _name(channels_last: bool, bf16: bool) -> str:
    return f"{'channels_last' if channels_last else 'contiguous'} {'bf16' if bf16 else 'fp32'}"


def _throughput(cfg: Config, rounds: int, steps: int) -> dict[tuple[bool, bool], dict]:
    x_train, y_train = load_fashion_mnist("train")
    batches = Batches(x_train, y_train, batch_size=cfg.batch_size, seed=0)
    runners = {}
    for cl, bf in VARIANTS:
        c = dataclasses.replace(cfg, channels_last=cl, bf16=bf)
        model, optimizer, _ = build_cnn(c, 10_000, seed=0)

        def train(step, model=model, optimizer=optimizer, c=c):
            xb, yb = batches.batch(step)
            loss = cnn_loss(model, normalize(xb, FASHION_MEAN, FASHION_STD, c.channels_last),
                            yb, c)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        @torch.no_grad()
        def infer(step, model=model, c=c):
            xb, _ = batches.batch(step)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=c.bf16):
                model(normalize(xb, FASHION_MEAN, FASHION_STD, c.channels_last))

        for s in range(2):  # warm-up: oneDNN builds its kernels on first use
            train(s)
            infer(s)
        runners[(cl, bf)] = (train, infer)
    best = {v: {"train": 0.0, "infer": 0.0} for v in VARIANTS}
    for r in range(rounds):
        for v, (train, infer) in runners.items():
            for kind, fn in (("train", train), ("infer", infer)):
                t0 = time.perf_counter()
                for s in range(steps):
                    fn(r * steps + s)
                rate = steps * cfg.batch_size / (time.perf_counter() - t0)
                best[v][kind] = max(best[v][kind], rate)
    return best


def _train_accuracy(cfg: Config, epochs: float) -> dict[tuple[bool, bool], float]:
    """Test accuracy after ``epochs`` of the quick recipe, per variant (same seed/batches)."""
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    out = {}
    for cl, bf in VARIANTS:
        c = dataclasses.replace(cfg, channels_last=cl, bf16=bf, epochs=epochs)
        batches = Batches(x_train, y_train, batch_size=c.batch_size, seed=0)
        steps = round(epochs * batches.steps_per_epoch)
        model, optimizer, scheduler = build_cnn(c, steps, seed=0)
        for step in range(steps):
            xb, yb = batches.batch(step)
            loss = cnn_loss(model, normalize(xb, FASHION_MEAN, FASHION_STD, cl), yb, c)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        out[(cl, bf)] = accuracy(model, x_test, y_test, FASHION_MEAN, FASHION_STD, cl)
    return out


class PerSampleFashion(torch.utils.data.Dataset):
    """A lean per-sample pipeline: convert and normalize one image per ``__getitem__``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.images[i].float().div(255).sub(FASHION_MEAN).div(FASHION_STD).unsqueeze(0)
        return x, int(self.labels[i])


class TorchvisionStyleFashion(PerSampleFashion):
    """What ``torchvision.datasets.FashionMNIST`` with ``ToTensor()`` and ``Normalize()`` does
    per sample (torchvision itself cannot be imported beside this CPU build of torch): uint8
    array -> PIL image -> tensor (HWC -> CHW, / 255) -> normalize."""

    def __getitem__(self, i: int):
        import numpy as np
        from PIL import Image

        image = Image.fromarray(self.images[i].numpy(), mode="L")
        x = torch.from_numpy(np.array(image, np.uint8, copy=True)).view(28, 28, 1)
        x = x.permute(2, 0, 1).contiguous().float().div(255)
        mean = torch.tensor([FASHION_MEAN]).view(-1, 1, 1)
        std = torch.tensor([FASHION_STD]).view(-1, 1, 1)
        return (x - mean) / std, int(self.labels[i])


class SameOrder(torch.utils.data.Sampler):
    """Sample indices in the order ``Batches`` uses, so every pipeline sees the same batches
    and differs only in speed."""

    def __init__(self, batches: Batches, epochs: int) -> None:
        self.batches, self.epochs = batches, epochs

    def __iter__(self):
        used = self.batches.steps_per_epoch * self.batches.batch_size  # Batches drops the rest
        for epoch in range(self.epochs):
            yield from self.batches.permutation(epoch)[:used].tolist()

    def __len__(self) -> int:
        return self.epochs * self.batches.steps_per_epoch * self.batches.batch_size


def _race(cfg: Config, eval_every: int, max_epochs: float) -> list[dict]:
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    total = round(cfg.epochs * (len(x_train) // cfg.batch_size))
    max_steps = round(max_epochs * (len(x_train) // cfg.batch_size))
    rows = []
    epochs = int(max_epochs) + 1
    for label, dataset, cl, bf in (
        (f"deepnotes: Batches on in-memory uint8, {_name(cfg.channels_last, cfg.bf16)}", None,
         cfg.channels_last, cfg.bf16),
        ("per-sample DataLoader, torchvision-style (PIL, ToTensor, Normalize), "
         "contiguous fp32", TorchvisionStyleFashion, False, False),
        (f"per-sample DataLoader, lean, {_name(cfg.channels_last, cfg.bf16)}", PerSampleFashion,
         cfg.channels_last, cfg.bf16),
    ):
        c = dataclasses.replace(cfg, channels_last=cl, bf16=bf)
        model, optimizer, scheduler = build_cnn(c, total, seed=0)
        order = Batches(x_train, y_train, batch_size=c.batch_size, seed=0)
        if dataset is not None:
            loader = torch.utils.data.DataLoader(
                dataset(x_train, y_train), batch_size=c.batch_size,
                sampler=SameOrder(order, epochs), drop_last=True)

            def batch_stream(loader=loader, cl=cl):
                while True:
                    for xb, yb in loader:
                        if cl:
                            xb = xb.contiguous(memory_format=torch.channels_last)
                        yield xb, yb
        else:
            def batch_stream(batches=order, cl=cl):
                step = 0
                while True:
                    xb, yb = batches.batch(step)
                    step += 1
                    yield normalize(xb, FASHION_MEAN, FASHION_STD, cl), yb

        clock, reached, acc = 0.0, None, 0.0
        stream = batch_stream()
        t0 = time.perf_counter()
        for step in range(max_steps):
            xb, yb = next(stream)
            loss = cnn_loss(model, xb, yb, c)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step < total - 1:
                scheduler.step()
            if (step + 1) % eval_every == 0:
                clock += time.perf_counter() - t0
                acc = accuracy(model, x_test, y_test, FASHION_MEAN, FASHION_STD, cl)
                if acc >= TARGET:
                    reached = clock
                    break
                t0 = time.perf_counter()
        rows.append({"pipeline": label, "seconds": reached, "steps": step + 1, "accuracy": acc})
        shown = f"{reached:.1f} s" if reached else "not reached"
        print(f"  {label}: {shown} ({step + 1} steps, acc {acc:.4f})", flush=True)
    return rows


def main(threads: int = typer.Option(0, help="torch threads (0: all cores)"),
         rounds: int = 3, steps: int = 8, epochs: float = 1.0, eval_every: int = 25,
         max_epochs: float = 3.0,
         batch_size: int = typer.Option(0, help="race batch (0: quick tier's)"),
         lr: float = typer.Option(0.0, help="race peak lr (0: quick tier's)"),
         schedule_epochs: float = typer.Option(0.0, help="race one-cycle length in epochs "
                                               "(0: quick tier's)"), skip_table: bool = False,
         skip_race: bool = False) -> None:
    torch.set_num_threads(threads or os.cpu_count() or 1)
    cfg = EXPERIMENT.presets["quick"]
    print(f"# bench_cnn: FashionCNN{cfg.channels}, batch {cfg.batch_size}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    if not skip_table:
        best = _throughput(cfg, rounds, steps)
        accs = _train_accuracy(cfg, epochs) if epochs > 0 else {}
        base = best[(False, False)]["train"]
        print(f"\n| memory format x precision | train img/s | vs contiguous fp32 | infer img/s "
              f"| test acc after {epochs:g} epoch(s) |")
        print("|---|---|---|---|---|")
        for v in VARIANTS:
            acc = f"{accs[v]:.4f}" if v in accs else "-"
            print(f"| {_name(*v)} | {best[v]['train']:.0f} | {best[v]['train'] / base:.2f}x "
                  f"| {best[v]['infer']:.0f} | {acc} |")
    if not skip_race:
        print(f"\ntime to {TARGET:.0%} test accuracy (training time only):")
        # 0 = the quick tier's value.
        race = dataclasses.replace(cfg, batch_size=batch_size or cfg.batch_size,
                                   lr=lr or cfg.lr, epochs=schedule_epochs or cfg.epochs)
        print(f"(all pipelines: batch {race.batch_size}, SGD-Nesterov, one-cycle to lr "
              f"{race.lr:g} over {race.epochs:g} epoch(s), warm-up {race.warmup:g})")
        rows = _race(race, eval_every, max_epochs)
        print("\n| pipeline | seconds to 88% | steps | speed-up vs per-sample fp32 |")
        print("|---|---|---|---|")
        ref = rows[1]["seconds"]
        for row in rows:
            sec = row["seconds"]
            speed = f"{ref / sec:.1f}x" if sec and ref else "-"
            print(f"| {row['pipeline']} | {sec:.1f} | {row['steps']} | {speed} |"
                  if sec else f"| {row['pipeline']} | not reached | {row['steps']} | - |")
    print(f"\nload average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    typer.run(main)
