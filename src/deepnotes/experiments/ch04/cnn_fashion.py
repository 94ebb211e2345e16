"""A small BN-CNN classifies Fashion-MNIST with far fewer parameters than an MLP (notes 4.2).

The CNN (:class:`deepnotes.conv.FashionCNN`) is trained with SGD + Nesterov momentum and a
one-cycle learning rate, batches sliced from in-memory uint8 tensors
(:class:`deepnotes.data.Batches`). Speed choices, each measured (``benchmarks/bench_cnn.py``,
``benchmarks/README.md``): channels_last memory format and bfloat16 autocast (2.4-2.6x the
training throughput of contiguous fp32 on 2 CPU cores; weights, optimizer and BatchNorm
statistics stay fp32, and the final test accuracy is measured in fp32; fp32 training ends
within 0.05 points of it), and ``FashionCNN.forward``'s exact rewrites (ReLU after pooling,
channels-last head; 11% of a step). Quick tier: 5 epochs of batch 128, 45-52 s of training
on two idle cores, 92.3-92.4% test accuracy. The full tier trains a deeper network 24
epochs with random crops and flips (94.6%).

For comparison the same run trains the chapter-2 MLP (``784-512-256-10``, the architecture of
``mlp-fashion``, same AdamW one-cycle recipe) for ``mlp_epochs`` epochs. Claims: the CNN
reaches the tier's target accuracy (quick 91.5%, full 93.5%), has fewer parameters than the
MLP, is more accurate, and its predictions are more stable when test images move by one
pixel (weight sharing + pooling; the MLP has neither).

The trained CNN is saved as an artifact (weights + normalization + accuracy, see
:mod:`deepnotes.artifacts`): always in the run folder (``artifact/``), and under the name
``cfg.artifact`` in the shared artifact folder (``cnn-fashion-quick`` for the quick tier,
``cnn-fashion`` for full; the smoke tier publishes nothing). Later experiments load it by
name with :func:`load_fashion_cnn`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from deepnotes.experiments.base import Claim, Experiment, Result

# Names under which the full and quick tiers publish the CNN; loaders prefer the first.
ARTIFACT_FULL, ARTIFACT_QUICK = "cnn-fashion", "cnn-fashion-quick"


@dataclass(frozen=True)
class Config:
    channels: tuple[int, ...] = (32, 64)
    convs_per_stage: int = 1
    global_pool: bool = False
    epochs: float = 5.0
    batch_size: int = 128
    lr: float = 0.1  # peak of the one-cycle schedule
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup: float = 0.25  # fraction of steps spent warming up
    crop_padding: int = 0  # random-crop augmentation (0: none)
    flip: bool = False  # random horizontal flips
    channels_last: bool = True
    bf16: bool = True  # bfloat16 autocast in training (evaluation is float32)
    train_size: int = 60000
    test_size: int = 10000
    mlp_hidden: tuple[int, ...] = (512, 256)
    mlp_epochs: float = 3.0
    mlp_lr: float = 3e-3
    target_accuracy: float = 0.915
    artifact: str = ARTIFACT_QUICK  # "" = keep it in the run folder only
    log_every: int = 25
    threads: int = 0  # intra-op threads; 0 = the runner's choice (smoke: 1, tiny tensors)
    shift_test_size: int = 2000  # test images moved by 1 pixel to compare CNN and MLP


def normalize(x: torch.Tensor, mean: float, std: float, channels_last: bool = False
              ) -> torch.Tensor:
    """uint8 images ``(N, 28, 28)`` -> standardized float ``(N, 1, 28, 28)``."""
    out = x.float().div_(255).sub_(mean).div_(std).unsqueeze(1)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


def augment(x: torch.Tensor, crop_padding: int, flip: bool, generator: torch.Generator
            ) -> torch.Tensor:
    """Random crops (shifts up to ``crop_padding`` pixels) and horizontal flips of uint8 images."""
    from deepnotes.nn.augment import horizontal_flip, random_crop

    if crop_padding:
        x = random_crop(x, crop_padding, generator)
    if flip:
        x = horizontal_flip(x, generator)
    return x


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mean: float, std: float,
             channels_last: bool = False, batch_size: int = 2000,
             flatten: bool = False) -> float:
    """Test accuracy in float32 of a classifier on uint8 images."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(x), batch_size):
        xb = normalize(x[start:start + batch_size], mean, std, channels_last and not flatten)
        xb = xb.flatten(1) if flatten else xb
        correct += (model(xb.to(device)).argmax(1).cpu() == y[start:start + batch_size]).sum()
    model.train(was_training)
    return correct.item() / len(x)


def build_cnn(cfg: Config, total_steps: int, seed: int):
    """The CNN, its SGD-Nesterov optimizer and one-cycle schedule: ``(model, opt, sched)``."""
    from deepnotes.conv import FashionCNN

    torch.manual_seed(seed)
    model = FashionCNN(cfg.channels, cfg.convs_per_stage, cfg.global_pool)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                nesterov=True, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr,
                                                    total_steps=total_steps,
                                                    pct_start=cfg.warmup)
    return model, optimizer, scheduler


def cnn_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: Config
             ) -> torch.Tensor:
    """Label-smoothed cross-entropy, forward under bfloat16 autocast when ``cfg.bf16``."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
        return F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)


def train_cnn(cfg: Config, ctx, x_train, y_train, mean: float, std: float, phase: str = "train"
              ) -> tuple[torch.nn.Module, float]:
    """Train :class:`FashionCNN` per ``cfg``; returns ``(plain model, training seconds)``."""
    from deepnotes.data import Batches

    fabric = ctx.fabric
    batches = Batches(x_train, y_train, batch_size=cfg.batch_size, seed=ctx.seed,
                      rank=fabric.global_rank, world_size=fabric.world_size)
    steps = max(1, round(cfg.epochs * batches.steps_per_epoch))
    plain, optimizer, scheduler = build_cnn(cfg, steps, ctx.seed)
    model, optimizer = fabric.setup(plain, optimizer)
    t0 = time.perf_counter()
    for step in ctx.steps(steps, track={"model": model, "optimizer": optimizer,
                                        "scheduler": scheduler}, phase=phase):
        xb, yb = batches.batch(step)
        # One generator per step: a resumed run draws the same augmentations.
        xb = augment(xb, cfg.crop_padding, cfg.flip, ctx.generator(10_000 + step))
        xb, yb = fabric.to_device((normalize(xb, mean, std, cfg.channels_last), yb))
        loss = cnn_loss(model, xb, yb, cfg)
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        optimizer.step()
        scheduler.step()
        if step % cfg.log_every == 0 or step + 1 == steps:
            ctx.log(step, phase=phase, loss=loss.item(), lr=scheduler.get_last_lr()[0])
    return plain, time.perf_counter() - t0


def train_mlp(cfg: Config, ctx, x_train, y_train, mean: float, std: float
              ) -> tuple[torch.nn.Module, float]:
    """The chapter-2 MLP, AdamW + one-cycle, ``cfg.mlp_epochs`` epochs."""
    from deepnotes.data import Batches
    from deepnotes.nn import MLP

    fabric = ctx.fabric
    batches = Batches(x_train, y_train, batch_size=cfg.batch_size, seed=ctx.seed + 1,
                      rank=fabric.global_rank, world_size=fabric.world_size)
    steps = max(1, round(cfg.mlp_epochs * batches.steps_per_epoch))
    torch.manual_seed(ctx.seed + 1)
    model = MLP([784, *cfg.mlp_hidden, 10], activation="relu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.mlp_lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.mlp_lr,
                                                    total_steps=steps)
    plain = model
    model, optimizer = fabric.setup(model, optimizer)
    t0 = time.perf_counter()
    for step in ctx.steps(steps, track={"model": model, "optimizer": optimizer,
                                        "scheduler": scheduler}, phase="mlp"):
        xb, yb = batches.batch(step)
        xb, yb = fabric.to_device((normalize(xb, mean, std).flatten(1), yb))
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        optimizer.step()
        scheduler.step()
        if step % cfg.log_every == 0 or step + 1 == steps:
            ctx.log(step, phase="mlp", loss=loss.item())
    return plain, time.perf_counter() - t0


def load_fashion_cnn(name: str = ARTIFACT_FULL, allow_quick: bool = True):
    """Load the trained Fashion-MNIST CNN by artifact name.

    Args:
        name: artifact to load.
        allow_quick: when ``name`` is the full-tier artifact and it is missing, fall back to
            the quick-tier one (``artifact.is_fallback`` says so; record it in the run).
    Returns:
        ``(model in eval mode, artifact)``; normalize inputs with ``artifact.mean/std``.
    Raises:
        ValueError: no such artifact; the message names ``deepnotes run cnn-fashion ...``.
    """
    from deepnotes.artifacts import load_model

    fallbacks = (ARTIFACT_QUICK,) if (allow_quick and name == ARTIFACT_FULL) else ()
    return load_model(name, fallbacks=fallbacks)


def _figures(ctx, model: torch.nn.Module, cfg: Config) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.6))
    ax_loss, ax_filters = fig.subplots(1, 2, width_ratios=[1.3, 1])
    for phase, label in (("train", "CNN"), ("mlp", "MLP (ch. 2)")):
        steps, losses = ctx.series("loss", phase)
        if steps:
            ax_loss.plot(steps, losses, label=label)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    ax_loss.set_title("Fashion-MNIST training")
    # First-layer kernels, tiled 4 x (C / 4).
    kernels = model.features[0].weight.detach().float().cpu()[:, 0]  # (C, 3, 3)
    c = kernels.shape[0]
    cols = max(1, c // 4)
    grid = torch.full((4 * 4, cols * 4), float("nan"))
    for i in range(min(c, 4 * cols)):
        r, q = divmod(i, cols)
        grid[r * 4:r * 4 + 3, q * 4:q * 4 + 3] = kernels[i]
    ax_filters.imshow(grid.numpy(), cmap="coolwarm")
    ax_filters.set_title(f"first-layer 3x3 kernels ({c})")
    ax_filters.axis("off")
    ctx.figure(fig, "training")


def run(cfg: Config, ctx) -> Result:
    from deepnotes.artifacts import save_artifact
    from deepnotes.conv import cnn_parameter_count, count_parameters, mlp_parameter_count
    from deepnotes.data import FASHION_MEAN, FASHION_STD, fashion_mnist_source, load_fashion_mnist

    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    x_train, y_train = x_train[:cfg.train_size], y_train[:cfg.train_size]
    x_test, y_test = x_test[:cfg.test_size], y_test[:cfg.test_size]
    mean, std = FASHION_MEAN, FASHION_STD

    cnn, cnn_seconds = train_cnn(cfg, ctx, x_train, y_train, mean, std)
    cnn_accuracy = accuracy(cnn, x_test, y_test, mean, std, cfg.channels_last)
    mlp, mlp_seconds = train_mlp(cfg, ctx, x_train, y_train, mean, std)
    mlp_accuracy = accuracy(mlp, x_test, y_test, mean, std, flatten=True)

    from deepnotes.experiments.shift_equivariance import shift_agreement

    moved = (x_test[:cfg.shift_test_size], y_test[:cfg.shift_test_size])
    cnn_shift = shift_agreement(cnn.folded(), *moved, mean, std, max_shift=1)[1]["agreement"]
    mlp_shift = shift_agreement(mlp, *moved, mean, std, max_shift=1, flatten=True)[1]["agreement"]

    cnn_params = count_parameters(cnn)
    assert cnn_params == cnn_parameter_count(cfg.channels, cfg.convs_per_stage,
                                                   cfg.global_pool)
    mlp_params = mlp_parameter_count([784, *cfg.mlp_hidden, 10])
    assert mlp_params == count_parameters(mlp)

    extra = {"data": "Fashion-MNIST", "train": len(x_train), "test": len(x_test),
             "tier": ctx.tier, "seed": ctx.seed, "train_seconds": round(cnn_seconds, 1),
             "run_dir": str(ctx.dir), "parameters": cnn_params}
    if ctx.is_main:
        kwargs = dict(architecture=cnn.architecture, mean=mean, std=std,
                      accuracy=cnn_accuracy, extra=extra)
        save_artifact("cnn-fashion", cnn, root=ctx.dir / "artifact", **kwargs)
        if cfg.artifact:
            save_artifact(cfg.artifact, cnn, **kwargs)
    _figures(ctx, cnn, cfg)
    return Result(
        metrics={"test_accuracy": cnn_accuracy, "mlp_test_accuracy": mlp_accuracy,
                 "cnn_parameters": cnn_params, "mlp_parameters": mlp_params,
                 "parameter_ratio": cnn_params / mlp_params,
                 "train_seconds": cnn_seconds, "mlp_train_seconds": mlp_seconds,
                 "cnn_shift1_agreement": cnn_shift, "mlp_shift1_agreement": mlp_shift},
        claims=[
            Claim("test_accuracy", f"The BN-CNN reaches {cfg.target_accuracy:.1%} test "
                  f"accuracy on Fashion-MNIST.", cnn_accuracy, ">=", cfg.target_accuracy),
            Claim("fewer_parameters", "The CNN has fewer parameters than the chapter-2 MLP "
                  "(ratio CNN / MLP).", cnn_params / mlp_params, "<", 1.0),
            Claim("more_accurate", "The CNN is more accurate than the MLP trained in the same "
                  "run (accuracy difference).", cnn_accuracy - mlp_accuracy, ">", 0.0),
            Claim("more_shift_stable", "The CNN's predictions change less than the MLP's when "
                  "test images move by one pixel (difference of agreement rates).",
                  cnn_shift - mlp_shift, ">", 0.0),
        ],
        data={"name": "Fashion-MNIST", "train": len(x_train), "test": len(x_test),
              "source": fashion_mnist_source(), "artifact": cfg.artifact or None},
    )


EXPERIMENT = Experiment(
    name="cnn-fashion",
    sections=("4.2",),
    claim="A small convolutional network beats the chapter-2 MLP on Fashion-MNIST with far "
          "fewer parameters.",
    config=Config,
    presets={
        "smoke": Config(channels=(8, 16), epochs=2.0, batch_size=64, train_size=512,
                        test_size=500, mlp_hidden=(64,), mlp_epochs=2.0, artifact="",
                        threads=1),
        "quick": Config(),
        "full": Config(channels=(32, 64, 128), convs_per_stage=2, epochs=24.0,
                       crop_padding=2, flip=True, mlp_hidden=(512, 256), mlp_epochs=24.0,
                       target_accuracy=0.935, artifact=ARTIFACT_FULL),
    },
    run=run,
    module=__name__,
    test="tests/test_experiments_ch04.py",
)
