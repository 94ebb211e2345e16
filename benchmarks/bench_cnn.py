"""Speed of the Fashion-MNIST CNN (``cnn-fashion``): memory format x precision, and
time-to-88% against a per-sample DataLoader.

Part 1, for the quick tier's network and batch size: training throughput (images/s, best of
``--rounds`` interleaved rounds of ``--steps`` steps, so load from other processes hits every
variant alike) and inference throughput for

    memory format in {contiguous (NCHW), channels_last (NHWC)} x precision in {fp32, bf16 autocast},

plus the test accuracy after ``--epochs`` epochs of training with each precision (same seed,
same batches), to check that bf16 does not change results beyond noise.

Part 2, time-to-88% test accuracy, rows run one after the other in one process (table and
results: ``benchmarks/README.md``):

* deepnotes: uint8 tensors in memory, batches by index slicing (``deepnotes.data.Batches``),
  the quick tier's memory format and precision, ``FashionCNN.forward``;
* per-sample DataLoader: a ``Dataset`` that does per image what torchvision's FashionMNIST
  with ``ToTensor()`` + ``Normalize()`` does (PIL image, to tensor, normalize), default
  collation, contiguous fp32, the layers run as written (``FashionCNN.layer_by_layer``):
  the usual training script for this network;
* a lean per-sample DataLoader (tensor ops only) with deepnotes' format, precision and
  forward, and deepnotes' in-memory batches with the layers as written, to split the gain
  between data path, format/precision and forward;
* the usual script's pipeline with pytorch/examples' MNIST recipe (batch 64, Adadelta lr 1,
  StepLR 0.7 per epoch), the issue's reference point.

The first four share deepnotes' quick recipe (batch 128, SGD-Nesterov, one-cycle to lr 0.1
over 5 epochs, label smoothing 0.1; ``--batch-size``, ``--lr`` and ``--schedule-epochs``
change it for all of them alike), the initial weights, and the same batches in the same order
(a sampler replays ``Batches``' order), so they differ in speed only, up to bf16 rounding.
The clock counts training only; the test set is evaluated every ``--eval-every`` quick-tier
batches' worth of images (3,200) with the clock stopped.

    .venv/bin/python benchmarks/bench_cnn.py [--threads N] [--rounds 3] [--steps 8]
        [--epochs 1] [--batch-size 128] [--lr 0.1] [--schedule-epochs 5]
        [--skip-table] [--skip-race] [--only 0,1]
"""

from __future__ import annotations

import dataclasses
import os
import time

import torch
import typer

from deepnotes.data import FASHION_MEAN, FASHION_STD, Batches, load_fashion_mnist
from deepnotes.data import standardize_images as _standardize
from deepnotes.engine import evaluate
from deepnotes.experiments.ch04.cnn_fashion import EXPERIMENT, Config
from deepnotes.zoo import fashion_cnn

cnn_loss = fashion_cnn.loss


def build_cnn(cfg: Config, total_steps: int, seed: int):
    """The zoo's CNN, optimizer and schedule from a fixed seed (every row starts alike)."""
    torch.manual_seed(seed)
    return fashion_cnn.build(cfg, total_steps)


def normalize(x, mean, std, channels_last=False):
    return _standardize(x, mean, std, channels_last=channels_last)


def accuracy(model, x, y, mean, std, channels_last=False) -> float:
    prepare = lambda xb: normalize(xb, mean, std, channels_last)  # noqa: E731
    return evaluate(model, x, y, prepare=prepare, batch_size=2000)["accuracy"]

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


class AsWritten(torch.nn.Module):
    """The network run literally as its layers are listed (``FashionCNN.layer_by_layer``:
    ReLU before pooling, flatten in (C, H, W) order), as a training script that builds
    the same ``nn.Sequential`` runs it. Same parameters, same function as ``forward``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.layer_by_layer(x)


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


EXAMPLES_BATCH = 64  # pytorch/examples mnist/main.py defaults: batch 64, Adadelta(lr=1.0),
EXAMPLES_LR = 1.0  # StepLR(step_size=1 epoch, gamma=0.7), ToTensor + Normalize per sample,
EXAMPLES_GAMMA = 0.7  # fp32, log-softmax + NLL (= cross-entropy on logits, no smoothing)


def _pipelines(cfg: Config) -> list[dict]:
    """The rows of the race. ``recipe``: "quick" (deepnotes' quick tier: batch, SGD-Nesterov,
    one-cycle, label smoothing; the same for every row that names it) or "examples" (the
    training recipe of pytorch/examples' MNIST script, the issue's reference point)."""
    fmt = _name(cfg.channels_last, cfg.bf16)
    tv = "per-sample DataLoader, torchvision-style (PIL, ToTensor, Normalize), contiguous fp32"
    return [
        dict(label=f"deepnotes: in-memory Batches, {fmt}, FashionCNN.forward",
             dataset=None, cl=cfg.channels_last, bf=cfg.bf16, as_written=False, recipe="quick"),
        dict(label=f"{tv}, layers as written", dataset=TorchvisionStyleFashion, cl=False,
             bf=False, as_written=True, recipe="quick"),
        dict(label=f"per-sample DataLoader, lean, {fmt}, FashionCNN.forward",
             dataset=PerSampleFashion, cl=cfg.channels_last, bf=cfg.bf16, as_written=False,
             recipe="quick"),
        dict(label=f"in-memory Batches, {fmt}, layers as written", dataset=None,
             cl=cfg.channels_last, bf=cfg.bf16, as_written=True, recipe="quick"),
        dict(label=f"{tv}, layers as written, pytorch/examples recipe (batch "
                   f"{EXAMPLES_BATCH}, Adadelta lr {EXAMPLES_LR:g}, StepLR {EXAMPLES_GAMMA:g})",
             dataset=TorchvisionStyleFashion, cl=False, bf=False, as_written=True,
             recipe="examples"),
    ]


def _setup(spec: dict, cfg: Config, steps_per_epoch: int, total: int):
    """Model, optimizer and scheduler for one row; the scheduler steps once per step."""
    c = dataclasses.replace(cfg, channels_last=spec["cl"], bf16=spec["bf"])
    if spec["recipe"] == "quick":
        model, optimizer, scheduler = build_cnn(c, total, seed=0)
    else:
        c = dataclasses.replace(c, batch_size=EXAMPLES_BATCH, label_smoothing=0.0)
        model, _, _ = build_cnn(c, total, seed=0)  # same initial weights
        optimizer = torch.optim.Adadelta(model.parameters(), lr=EXAMPLES_LR)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=steps_per_epoch,
                                                    gamma=EXAMPLES_GAMMA)
    return c, (AsWritten(model) if spec["as_written"] else model), optimizer, scheduler


def _race(cfg: Config, eval_every: int, max_epochs: float, only: list[int] | None = None
          ) -> list[dict]:
    """Train each pipeline until the test accuracy, checked every ``eval_every`` quick-tier
    batches' worth of images with the clock stopped, reaches 88%."""
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    eval_images = eval_every * cfg.batch_size
    rows = []
    epochs = int(max_epochs) + 1
    for i, spec in enumerate(_pipelines(cfg)):
        if only and i not in only:
            continue
        batch = cfg.batch_size if spec["recipe"] == "quick" else EXAMPLES_BATCH
        order = Batches(x_train, y_train, batch_size=batch, seed=0)
        total = round(cfg.epochs * order.steps_per_epoch)  # one-cycle length (quick recipe)
        c, model, optimizer, scheduler = _setup(spec, cfg, order.steps_per_epoch, total)
        cl = spec["cl"]
        if spec["dataset"] is not None:
            loader = torch.utils.data.DataLoader(
                spec["dataset"](x_train, y_train), batch_size=batch,
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

        clock, reached, acc, seen, next_eval = 0.0, None, 0.0, 0, eval_images
        stream = batch_stream()
        t0 = time.perf_counter()
        for step in range(round(max_epochs * order.steps_per_epoch)):
            xb, yb = next(stream)
            loss = cnn_loss(model, xb, yb, c)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if spec["recipe"] != "quick" or step < total - 1:
                scheduler.step()
            seen += batch
            if seen >= next_eval:
                next_eval += eval_images
                clock += time.perf_counter() - t0
                acc = accuracy(model, x_test, y_test, FASHION_MEAN, FASHION_STD, cl)
                if acc >= TARGET:
                    reached = clock
                    break
                t0 = time.perf_counter()
        rows.append({"pipeline": spec["label"], "seconds": reached, "steps": step + 1,
                     "images": seen, "accuracy": acc, "ms_per_step": None if reached is None
                     else 1000 * reached / (step + 1)})
        shown = f"{reached:.1f} s" if reached else "not reached"
        print(f"  {spec['label']}: {shown} ({step + 1} steps, acc {acc:.4f})", flush=True)
    return rows


def main(threads: int = typer.Option(0, help="torch threads (0: all cores)"),
         rounds: int = 3, steps: int = 8, epochs: float = 1.0, eval_every: int = 25,
         max_epochs: float = 3.0,
         batch_size: int = typer.Option(0, help="race batch (0: quick tier's)"),
         lr: float = typer.Option(0.0, help="race peak lr (0: quick tier's)"),
         schedule_epochs: float = typer.Option(0.0, help="race one-cycle length in epochs "
                                               "(0: quick tier's)"), skip_table: bool = False,
         skip_race: bool = False,
         only: str = typer.Option("", help="race rows to run, e.g. 0,1 (default: all)")
         ) -> None:
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
        print(f"(quick recipe: batch {race.batch_size}, SGD-Nesterov, one-cycle to lr "
              f"{race.lr:g} over {race.epochs:g} epoch(s), warm-up {race.warmup:g}, "
              f"label smoothing {race.label_smoothing:g})")
        rows = _race(race, eval_every, max_epochs, [int(i) for i in only.split(",")]
                     if only else None)
        print("\n| pipeline | recipe | seconds to 88% | steps | images | ms/step "
              "| this row's time / deepnotes' |")
        print("|---|---|---|---|---|---|---|")
        ours = rows[0]["seconds"] if rows[0]["pipeline"].startswith("deepnotes") else None
        for row, spec in zip(rows, [p for i, p in enumerate(_pipelines(race))
                                    if not only or str(i) in only.split(",")], strict=True):
            sec = row["seconds"]
            if sec is None:
                print(f"| {row['pipeline']} | {spec['recipe']} | not reached | {row['steps']} "
                      f"| {row['images']} | - | - |")
                continue
            ratio = f"{sec / ours:.1f}x" if ours else "-"
            print(f"| {row['pipeline']} | {spec['recipe']} | {sec:.1f} | {row['steps']} "
                  f"| {row['images']} | {row['ms_per_step']:.1f} | {ratio} |")
    print(f"\nload average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    typer.run(main)
