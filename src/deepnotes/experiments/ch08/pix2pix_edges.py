"""Pix2Pix on Fashion-MNIST edges (notes 8.18): L1 alone, cGAN alone and L1 + cGAN, and the
PatchGAN against a full-image discriminator (the paper's Tables 1 and 3 in miniature).

**Task.** The input ``x`` is the Canny edge map of an item (:func:`deepnotes.data.edges.
canny_edges`, sigma 1, from scikit-image), the target ``y`` the item itself. The first
``train_first`` training images are the pairs to learn from; the first ``eval_n`` test items
are translated and judged, the next ``eval_n`` test items are the FID's reference set (other
items of the same distribution, so a copy of the targets is not required to score well).

**Model** (:mod:`deepnotes.generative.pix2pix`): the U-Net generator with dropout as its noise,
kept on when translating; the PatchGAN ``D(x, y)`` on the concatenated pair (7x7 logits, each
a 10x10 patch); the generator's loss ``-log D(x, G(x)) + 100 * L1``; D's loss half the BCE.
Adam 2e-4 with beta1 = 0.5 for both networks, constant for the first half of the steps, then
linearly to zero (the paper's schedule), batch 64, one D step per G step, the same batch order
for every arm.

**Arms**, one training each, same steps and seed for the initial weights:
``l1`` (L1 alone, no D), ``cgan`` (the adversarial term alone), ``l1-cgan`` (both: Pix2Pix),
``l1-cgan-full`` (both, with :class:`~deepnotes.generative.pix2pix.FullImageDiscriminator`:
the same convolutions, then one linear layer over the whole map, one logit per pair).

**Measured** on the translated test items: the L1 error (mean absolute pixel error, pixels in
[0, 1]); the FID against the reference set on the zoo CNN's features (``cnn-fashion``, its
penultimate layer; the floor, FID of the translated items' own targets against the reference,
is reported); the sharpness, the RMS Sobel gradient over that of the real test items;
the discriminators' parameters and multiply-adds per pair (machine independent; the speed is
``benchmarks/bench_patchgan.py``).

**The ranking, fixed before the first run** (the paper's Table 1: L1 alone is closest per
pixel but blurry, the cGAN alone is sharp but wanders, L1 + cGAN is both):
L1 error ``L1 <= L1+cGAN < cGAN``; FID ``L1+cGAN < L1``; sharpness ``L1 < L1+cGAN``. The notes'
PatchGAN remark: ``FID(PatchGAN) < FID(full image)``, sharpness ``PatchGAN > full image``,
fewer parameters and fewer multiply-adds.

Quick tier calibrated on an Intel Xeon (Sapphire Rapids class, AMX), 2 threads: one training
step of U-Net width 32 with the PatchGAN took 35 ms with channels_last and bf16 autocast (61 ms
plain fp32); 600 steps per arm. The quick tier took 114 s (seed 0; one arm ran at 17 instead
of 26 steps/s beside other work) and 95 s (seed 1) of wall time under the CPU lock, 100 and
85 s of it training.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from deepnotes.data import load_fashion_mnist
from deepnotes.data.edges import EDGE_SIGMA, canny_edges
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.generative.dcgan import from_uint8
from deepnotes.generative.pix2pix import (
    LAMBDA_L1,
    FullImageDiscriminator,
    PatchDiscriminator,
    UNetGenerator,
    count_parameters,
    discriminator_loss,
    generator_loss,
    multiply_adds,
    rms_gradient,
    translate,
)
from deepnotes.metrics.generative import CNNFeatures, ReferenceStatistics
from deepnotes.zoo import fashion_cnn

# Fixed before the first run (the ranking is the claim: every threshold is a ratio of 1).
ARMS = ("l1", "cgan", "l1-cgan", "l1-cgan-full")
RANK = 1.0
FIGURE_ITEMS = 8


@dataclass(frozen=True)
class Config:
    width: int = 32  # U-Net outermost channels
    d_width: int = 32  # both discriminators' first-layer channels
    dropout: float = 0.5
    steps: int = 600  # per arm
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    decay_from: float = 0.5  # constant LR for this fraction of the steps, then linear to 0
    lambda_l1: float = LAMBDA_L1
    train_first: int = 10000
    eval_n: int = 2000  # translated test items, and as many reference items
    channels_last: bool = True
    bf16: bool = True
    log_every: int = 25


def _key(arm: str) -> str:
    return arm.replace("-", "_")


def _prepare(x: torch.Tensor, device, channels_last: bool) -> torch.Tensor:
    x = from_uint8(x.to(device))
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _linear_decay(total: int, decay_from: float):
    start = int(decay_from * total)
    return lambda step: min(1.0, (total - step) / max(1, total - start))


def _train(ctx, cfg: Config, arm: str, batches) -> UNetGenerator:
    """One arm's training loop; the generator comes back on the CPU."""
    device = ctx.fabric.device
    adversarial = arm != "l1"
    lambda_l1 = 0.0 if arm == "cgan" else cfg.lambda_l1
    ctx.manual_seed(f"init-{arm}")
    g = UNetGenerator(cfg.width, cfg.dropout).to(device)
    d = None
    if adversarial:
        d = (FullImageDiscriminator if arm.endswith("full") else PatchDiscriminator)(
            cfg.d_width).to(device)
    if cfg.channels_last:
        g = g.to(memory_format=torch.channels_last)
        d = d.to(memory_format=torch.channels_last) if d is not None else None
    betas = (cfg.beta1, 0.999)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr, betas=betas)
    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, _linear_decay(cfg.steps, cfg.decay_from))
    track: dict = {"generator": g, "g_optimizer": opt_g, "g_schedule": sched_g}
    if d is not None:
        opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr, betas=betas)
        sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d,
                                                    _linear_decay(cfg.steps, cfg.decay_from))
        track.update(discriminator=d, d_optimizer=opt_d, d_schedule=sched_d)
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.bf16)
    phase = f"train-{arm}"
    for step in ctx.steps(cfg.steps, track=track, phase=phase, log_every=cfg.log_every):
        xb, yb = batches.batch(step)
        x, y = _prepare(xb, device, cfg.channels_last), _prepare(yb, device, cfg.channels_last)
        with torch.autocast(**amp):
            fake = g(x)
        logs = {}
        fake_logit = None
        if d is not None:
            with torch.autocast(**amp):
                d_loss = discriminator_loss(d(x, y).float(), d(x, fake.detach()).float())
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            sched_d.step()
            logs["d_loss"] = d_loss.item()
            with torch.autocast(**amp):
                fake_logit = d(x, fake).float()
        g_loss = generator_loss(fake_logit, fake.float(), y, lambda_l1)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()  # also fills D's .grad, cleared before D's next step
        opt_g.step()
        sched_g.step()
        logs["g_loss"] = g_loss.item()
        logs["l1"] = float((fake.detach().float() - y).abs().mean())
        ctx.log(step, phase=phase, lr=sched_g.get_last_lr()[0], **logs)
    return g.cpu()


def run(cfg: Config, ctx) -> Result:
    x_train, _ = load_fashion_mnist("train", first=cfg.train_first)
    x_test, _ = load_fashion_mnist("test", first=2 * cfg.eval_n)
    n = cfg.eval_n
    targets, reference_images = x_test[:n], x_test[n:2 * n]
    edges_train, edges_test = canny_edges(x_train), canny_edges(targets)
    cnn, artifact = fashion_cnn.load(ctx.tier)
    features = CNNFeatures(cnn, artifact.sha256)
    reference = ReferenceStatistics(features(reference_images))
    real_sharpness = rms_gradient(targets)
    metrics: dict[str, float] = {
        "fid_floor": reference.fid(features(targets)), "eval_n": n,
        "train_images": len(x_train), "steps_per_arm": cfg.steps, "edge_sigma": EDGE_SIGMA,
        "edge_fraction": float((edges_train > 0).double().mean()),
        "sharpness_real": real_sharpness}

    batches = ctx.batches(edges_train, x_train, batch_size=cfg.batch_size, stream="batches")
    outputs = {}
    for arm in ARMS:
        g = _train(ctx, cfg, arm, batches)
        ctx.manual_seed(f"translate-{arm}")  # the dropout noise of the translation
        images = translate(g, edges_test)
        outputs[arm] = images
        k = _key(arm)
        metrics[f"l1_error_{k}"] = float((images.double() - targets.double()).abs().mean()
                                         / 255.0)
        metrics[f"fid_{k}"] = reference.fid(features(images))
        metrics[f"sharpness_{k}"] = rms_gradient(images) / real_sharpness
    metrics.update(_costs(cfg))

    m = metrics
    claims = [
        Claim("l1_error_l1_at_most_l1_cgan", "L1 alone reaches an L1 error no larger than "
              "L1 + cGAN's on the translated test items: L1 error(L1) / L1 error(L1 + cGAN) "
              "(the paper's Table 1).", m["l1_error_l1"] / m["l1_error_l1_cgan"], "<=", RANK,
              source="project"),
        Claim("l1_error_l1_cgan_below_cgan", "L1 + cGAN's L1 error is below the cGAN alone's: "
              "L1 error(L1 + cGAN) / L1 error(cGAN).",
              m["l1_error_l1_cgan"] / m["l1_error_cgan"], "<", RANK, source="project"),
        Claim("fid_l1_cgan_below_l1", "Adding the cGAN term to L1 lowers the FID of the "
              "translated items (zoo-CNN features): FID(L1 + cGAN) / FID(L1).",
              m["fid_l1_cgan"] / m["fid_l1"], "<", RANK),
        Claim("l1_alone_blurrier", "L1 alone gives blurrier items than L1 + cGAN: RMS "
              "gradient, L1 / (L1 + cGAN).",
              m["sharpness_l1"] / m["sharpness_l1_cgan"], "<", RANK, source="project"),
        Claim("patchgan_fid_below_full_image", "With L1 + cGAN, the PatchGAN gives a lower FID "
              "than the full-image discriminator: FID(PatchGAN) / FID(full image).",
              m["fid_l1_cgan"] / m["fid_l1_cgan_full"], "<", RANK),
        Claim("patchgan_sharper_than_full_image", "With L1 + cGAN, the PatchGAN's items are "
              "sharper than the full-image discriminator's: RMS gradient, PatchGAN / "
              "full image.", m["sharpness_l1_cgan"] / m["sharpness_l1_cgan_full"], ">", RANK),
        Claim("patchgan_fewer_parameters", "The PatchGAN has fewer parameters than the "
              "full-image discriminator: parameters(PatchGAN) / parameters(full image).",
              m["d_parameters_patch"] / m["d_parameters_full"], "<", RANK, source="project"),
        Claim("patchgan_fewer_multiply_adds", "The PatchGAN costs fewer multiply-adds per "
              "pair than the full-image discriminator (the notes' cost remark as a "
              "machine-independent count): multiply-adds(PatchGAN) / multiply-adds(full image).",
              m["d_multiply_adds_patch"] / m["d_multiply_adds_full"], "<", RANK),
    ]
    _figure(ctx, edges_test, targets, outputs, m)
    return Result(metrics=metrics, claims=claims)


def _costs(cfg: Config) -> dict[str, float]:
    """Parameters and multiply-adds per pair of both discriminators and of the generator."""
    x = torch.zeros(1, 1, 28, 28)
    out: dict[str, float] = {}
    for name, d in (("patch", PatchDiscriminator(cfg.d_width)),
                    ("full", FullImageDiscriminator(cfg.d_width))):
        out[f"d_parameters_{name}"] = count_parameters(d)
        out[f"d_multiply_adds_{name}"] = multiply_adds(d, x, x)
    g = UNetGenerator(cfg.width, cfg.dropout)
    out["g_parameters"] = count_parameters(g)
    out["g_multiply_adds"] = multiply_adds(g, x)
    out["patch_receptive_field"] = PatchDiscriminator(cfg.d_width).receptive_field()
    return out


def _figure(ctx, edges, targets, outputs, m) -> None:
    rows = [("edges", edges), ("target", targets)] + [(a, outputs[a]) for a in ARMS]
    fig = Figure(figsize=(FIGURE_ITEMS * 0.9, len(rows) * 1.0))
    axes = fig.subplots(len(rows), FIGURE_ITEMS)
    for r, (label, images) in enumerate(rows):
        for c in range(FIGURE_ITEMS):
            ax = axes[r, c]
            ax.imshow(images[c].numpy(), cmap="gray_r", vmin=0, vmax=255)
            ax.set(xticks=[], yticks=[])
        k = _key(label)
        extra = (f"\nFID {m[f'fid_{k}']:.1f}, L1 {m[f'l1_error_{k}']:.3f}"
                 if f"fid_{k}" in m else "")
        axes[r, 0].set_ylabel(label + extra, fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle("Pix2Pix on Fashion-MNIST edges: the first test items")
    ctx.figure(fig, "translations")

    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    for arm in ARMS:
        steps, values = ctx.series("l1", phase=f"train-{arm}")
        ax.plot(steps, np.asarray(values) / 2, label=arm)  # [-1, 1] pixels -> [0, 1]
    ax.set(xlabel="step", ylabel="training L1 error (pixels in [0, 1])")
    ax.legend(fontsize=7)
    ctx.figure(fig, "l1_curves")


_QUICK = Config()
_PRESETS = {
    "smoke": Config(width=8, d_width=8, steps=6, batch_size=16, train_first=256, eval_n=200,
                    log_every=2),
    "quick": _QUICK,
    "full": dataclasses.replace(_QUICK, steps=4000, train_first=60000, eval_n=3000),
}

EXPERIMENT = experiment(
    name="pix2pix-edges",
    sections=("8.18",),
    claim="Edges to Fashion-MNIST items: L1 alone has the lowest per-pixel error, the cGAN "
          "alone the highest; L1 + cGAN lowers L1's FID and blur. The PatchGAN beats a "
          "full-image discriminator in FID and sharpness, with fewer parameters and "
          "multiply-adds.",
    presets=_PRESETS,
    run=run,
    single_process=True,
    requires=(fashion_cnn.NAME,),
    quick_seconds=114.0,
    flagship=True,
)
