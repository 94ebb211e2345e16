"""GLO, IMLE and GLANN on Fashion-MNIST (notes 8.12, 8.13).

**GLO** (:mod:`deepnotes.generative.glo`): one learnable 64-d code per training image (the
first ``train_first``), initialized by PCA (``code_init="pca"``, the GLO paper's choice;
``"gaussian"`` is the notes' N(0, I)) and projected onto the unit sphere after every step;
chapter 8's DCGAN generator (width 32); loss the per-pixel mean squared error (an optional
perceptual term on the zoo CNN's features, ``perceptual_weight``, is off by default: the same
network scores the FID); Adam (beta1 = 0.5) with one learning rate for the generator (1e-3)
and its own for the codes (1e-2). The notes give the codes a *smaller* rate so that they stay
near their Gaussian start; here each code is updated only once per epoch (32-56 times in the
quick run), so its rate is the larger one, and ``code_cosine_mean`` reports how far the codes
moved from their start. GLO's sampler is the full-covariance Gaussian fitted to the codes
(draws projected onto the sphere too).

**GLANN**: IMLE in GLO's latent space. An MLP mapper (noise 64 -> 256 -> 256 -> 64, output
projected) is trained by IMLE: each step takes ``imle_batch`` codes, draws ``imle_candidates``
mapped noise vectors, finds each code's nearest candidate exactly
(:func:`~deepnotes.generative.glo.nearest_neighbours`) and takes one Adam step on those pairs.
Samples: noise -> mapper -> GLO's generator.

**Measured**: FID (zoo CNN features, ``FashionCNN.embed``; ``fid_n`` samples against as many
test images) of GLANN, of GLO's Gaussian, of GLO with isotropic codes (no fit), of GLO's
reconstructions of training images (what a perfect latent sampler could reach) and of
training images against test images (the floor at that N); the counted FLOPs of IMLE's
nearest-neighbour search in the 64-d latent space and in pixel space (784) for the same
steps and counts (:func:`~deepnotes.generative.glo.nn_search_flops`), plus the cost of drawing
the candidates (mapper vs generator, FLOPs counted by torch); how far the codes moved from
their initialization. Wall times of the search go to ``benchmarks/bench_imle.py``.

Both samplers are published to the zoo (``glo-fashion``, ``glann-fashion``;
:mod:`deepnotes.zoo.glo_fashion`) for chapter 8's FID table.

Quick tier calibrated on an Intel Xeon (Sapphire Rapids class, AMX), 2 threads, under the
CPU lock, 2026-12-01: GLO 52 steps/s (batch 128, channels_last, bf16 autocast), IMLE 174
steps/s (256 codes against 2,560 candidates); 89 s wall in all (76 s in training loops),
FID 49.2 (GLANN) against 67.9 (GLO + Gaussian) at N = 2,000.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from deepnotes.data import load_fashion_mnist
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.generative.dcgan import DCGANGenerator, from_uint8
from deepnotes.generative.glo import (
    GLANNSampler,
    GLOSampler,
    LatentCodes,
    PerceptualLoss,
    code_drift,
    fit_gaussian,
    forward_flops,
    gaussian_codes,
    glo_loss,
    glo_optimizer,
    imle_loss,
    imle_select,
    nearest_neighbours,
    nn_search_flops,
    pca_codes,
)
from deepnotes.metrics.generative import CNNFeatures, ReferenceStatistics
from deepnotes.zoo import fashion_cnn, glo_fashion

# Fixed before the first quick run.
MAX_FID_RATIO = 1.0  # FID(GLANN) / FID(GLO + Gaussian) below this (GLANN paper's ranking)
MAX_SEARCH_FLOP_RATIO = 1 / 8  # latent (64-d) search vs pixel (784-d) search, same steps
PIXELS = 28 * 28


@dataclass(frozen=True)
class Config:
    latent: int = 64
    width: int = 32
    train_first: int = 8000  # first N training images get codes
    code_init: str = "pca"  # "pca" (GLO paper) or "gaussian" (the notes)
    projection: str = "sphere"  # "sphere" or "ball" (radius 1)
    batch_size: int = 128
    glo_steps: int = 3500
    lr_generator: float = 1e-3
    lr_codes: float = 1e-2
    perceptual_weight: float = 0.0
    bf16: bool = True
    channels_last: bool = True
    noise_dim: int = 64
    mapper_hidden: tuple[int, ...] = (256, 256)
    glann_steps: int = 1500
    imle_batch: int = 256
    imle_candidates: int = 2560
    lr_mapper: float = 1e-3
    nn_chunk: int = 4096
    fid_n: int = 2000
    log_every: int = 50


def _uint8(images01: torch.Tensor) -> torch.Tensor:
    """[0, 1] images ``(N, 1, 28, 28)`` -> uint8 ``(N, 28, 28)``."""
    return (images01.squeeze(1) * 255).round().clamp(0, 255).to(torch.uint8)


def _init_codes(cfg: Config, x: torch.Tensor, ctx) -> torch.Tensor:
    if cfg.code_init == "pca":
        return pca_codes(x.reshape(len(x), -1).float() / 255.0, cfg.latent)
    if cfg.code_init == "gaussian":
        return gaussian_codes(len(x), cfg.latent, ctx.rng("codes-init"))
    raise ValueError(f"code_init must be 'pca' or 'gaussian', got {cfg.code_init!r}")


def _train_glo(cfg: Config, ctx, x_train: torch.Tensor, cnn) -> tuple[DCGANGenerator,
                                                                      LatentCodes]:
    device = ctx.fabric.device
    ctx.manual_seed("init-glo")
    g = DCGANGenerator(cfg.latent, cfg.width).to(device)
    if cfg.channels_last:
        g = g.to(memory_format=torch.channels_last)
    codes = LatentCodes(len(x_train), cfg.latent, cfg.projection).to(device)
    codes.reset_(_init_codes(cfg, x_train, ctx))
    optimizer = glo_optimizer(g, codes, cfg.lr_generator, cfg.lr_codes)
    perceptual = PerceptualLoss(cnn).to(device) if cfg.perceptual_weight > 0 else None
    batches = ctx.batches(x_train, torch.arange(len(x_train)), batch_size=cfg.batch_size,
                          stream="glo")
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.bf16)
    track = {"generator": g, "codes": codes, "optimizer": optimizer}
    for step in ctx.steps(cfg.glo_steps, track=track, phase="glo", log_every=cfg.log_every):
        xb, ib = batches.batch(step)
        real = from_uint8(xb.to(device))
        ib = ib.to(device)
        with torch.autocast(**amp):
            loss, l2, perc = glo_loss(g, codes(ib), real, perceptual, cfg.perceptual_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        codes.project_()  # all rows: Adam's momentum also moves codes outside the batch
        ctx.log(step, phase="glo", loss=loss.item(), l2=l2.item(), perceptual=perc.item())
    return g.cpu().to(memory_format=torch.contiguous_format), codes.cpu()


def _train_glann(cfg: Config, ctx, targets: torch.Tensor, sampler: GLANNSampler) -> None:
    device = ctx.fabric.device
    mapper = sampler.mapper.to(device)
    optimizer = torch.optim.Adam(mapper.parameters(), lr=cfg.lr_mapper)
    batches = ctx.batches(targets, batch_size=cfg.imle_batch, stream="glann")
    track = {"mapper": mapper, "optimizer": optimizer}
    for step in ctx.steps(cfg.glann_steps, track=track, phase="glann",
                          log_every=cfg.log_every):
        (zb,) = batches.batch(step)
        zb = zb.to(device)
        noise, d2 = imle_select(mapper, zb, cfg.imle_candidates, ctx.rng("imle-noise", step),
                                cfg.nn_chunk)
        loss = imle_loss(mapper, noise, zb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ctx.log(step, phase="glann", loss=loss.item(), nn_distance=float(d2.mean()))
    mapper.cpu()


def _flops(cfg: Config, ctx, glo: GLOSampler, glann: GLANNSampler) -> dict[str, float]:
    n, m, steps = cfg.imle_batch, cfg.imle_candidates, cfg.glann_steps
    latent = nn_search_flops(n, m, cfg.latent) * steps
    pixel = nn_search_flops(n, m, PIXELS) * steps
    gen = ctx.rng("flop-check")
    out: dict[str, float] = {"search_flops_latent": latent, "search_flops_pixel": pixel,
                             "search_flop_ratio": latent / pixel}
    # torch's own counter on the matrix products of one search, against the formula's 2nmd.
    for d in (cfg.latent, PIXELS):
        q, c = torch.randn(n, d, generator=gen), torch.randn(m, d, generator=gen)
        out[f"counted_matmul_flops_d{d}"] = forward_flops(nearest_neighbours, q, c,
                                                          cfg.nn_chunk)
        out[f"formula_matmul_flops_d{d}"] = 2 * n * m * d
    noise = torch.randn(1, cfg.noise_dim, generator=gen)
    glann.eval()
    glo.eval()
    out["mapper_flops_per_sample"] = forward_flops(glann.mapper, noise)
    out["generator_flops_per_sample"] = forward_flops(glo.generator,
                                                      torch.randn(1, cfg.latent, generator=gen))
    # Whole IMLE: the searches plus drawing the candidates (mapper vs generator).
    out["imle_flops_latent"] = latent + steps * m * out["mapper_flops_per_sample"]
    out["imle_flops_pixel"] = pixel + steps * m * out["generator_flops_per_sample"]
    out["imle_flop_ratio"] = out["imle_flops_latent"] / out["imle_flops_pixel"]
    return out


def run(cfg: Config, ctx) -> Result:
    x_train, _ = load_fashion_mnist("train", first=cfg.train_first or None)
    x_test, _ = load_fashion_mnist("test")
    cnn, artifact = fashion_cnn.load(ctx.tier)
    features = CNNFeatures(cnn, artifact.sha256)
    n_fid = min(cfg.fid_n, len(x_test), len(x_train))

    g, codes = _train_glo(cfg, ctx, x_train, cnn)
    mean, scale_tril = fit_gaussian(codes.weight)
    glo = GLOSampler(cfg.latent, cfg.width, cfg.projection)
    glo.generator.load_state_dict(g.state_dict())
    glo.set_gaussian(mean.float(), scale_tril.float())
    ctx.manual_seed("init-mapper")
    glann = GLANNSampler(cfg.latent, cfg.width, cfg.noise_dim, cfg.mapper_hidden,
                         cfg.projection)
    glann.generator.load_state_dict(g.state_dict())
    _train_glann(cfg, ctx, codes.weight.detach().clone(), glann)
    glo.eval()
    glann.eval()

    reference = ReferenceStatistics(features(x_test[:n_fid]))
    glo_images = _uint8(glo_fashion.sample(glo, n_fid, ctx.rng("samples-glo")))
    glann_images = _uint8(glo_fashion.sample(glann, n_fid, ctx.rng("samples-glann")))
    isotropic = GLOSampler(cfg.latent, cfg.width, cfg.projection)  # N(0, I), projected
    isotropic.generator.load_state_dict(g.state_dict())
    iso_images = _uint8(glo_fashion.sample(isotropic, n_fid, ctx.rng("samples-isotropic")))
    with torch.no_grad():
        g.eval()
        rec = g(codes.weight[:n_fid].detach()).float()
    rec_images = _uint8((rec + 1) / 2)
    rec_mse = float((rec - from_uint8(x_train[:n_fid])).square().mean())
    fid_glo, fid_glann = reference.fid(features(glo_images)), reference.fid(features(glann_images))
    metrics: dict[str, float] = {
        "fid_glann": fid_glann, "fid_glo_gaussian": fid_glo,
        "fid_ratio_glann_to_glo": fid_glann / fid_glo,
        "fid_glo_isotropic": reference.fid(features(iso_images)),
        "fid_glo_reconstructions": reference.fid(features(rec_images)),
        "fid_train_vs_test": reference.fid(features(x_train[:n_fid])),
        "fid_n": n_fid, "reconstruction_mse": rec_mse, "train_images": len(x_train),
        "glo_steps": cfg.glo_steps, "glann_steps": cfg.glann_steps,
        "glo_epochs": cfg.glo_steps * cfg.batch_size / len(x_train),
        "code_norm_max_deviation": float((codes.weight.detach().norm(dim=1) - 1).abs().max())
        if cfg.projection == "sphere" else float(codes.weight.detach().norm(dim=1).max()),
        "imle_final_nn_distance": ctx.series("nn_distance", "glann")[1][-1],
    }
    initial = LatentCodes(len(x_train), cfg.latent, cfg.projection).reset_(
        _init_codes(cfg, x_train, ctx))  # recomputed: a function of the data and the seed
    metrics.update(code_drift(initial.weight.detach(), codes.weight.detach()))
    metrics.update(_flops(cfg, ctx, glo, glann))
    matmul_gap = max(abs(metrics[f"counted_matmul_flops_d{d}"]
                         - metrics[f"formula_matmul_flops_d{d}"]) for d in (cfg.latent, PIXELS))
    claims = [
        Claim("glann_beats_glo_gaussian",
              f"GLANN's samples have a lower FID than GLO's with the fitted Gaussian (zoo-CNN "
              f"features, N = {n_fid} samples against {n_fid} test images): "
              "FID(GLANN) / FID(GLO + Gaussian).", fid_glann / fid_glo, "<", MAX_FID_RATIO,
              source="project"),
        Claim("latent_search_cheaper",
              f"IMLE's nearest-neighbour search in GLO's {cfg.latent}-d latent space costs at "
              f"most 1/8 of the counted FLOPs of the search in pixel space ({PIXELS}-d), for "
              f"the same {cfg.glann_steps} steps of {cfg.imle_batch} points against "
              f"{cfg.imle_candidates} candidates.", metrics["search_flop_ratio"], "<=",
              MAX_SEARCH_FLOP_RATIO),
        Claim("flop_formula_matches_torch_counter",
              "The formula's matrix-product FLOPs (2 n m d) equal what torch's FlopCounterMode "
              "counts for one search, in both dimensions: the largest absolute gap.",
              matmul_gap, "<=", 0.0, source="project"),
    ]
    summary = {k: metrics[k] for k in ("fid_glo_gaussian", "fid_glann", "fid_n")}
    glo_fashion.save(ctx, glo_fashion.NAMES["glo"], glo, summary)
    glo_fashion.save(ctx, glo_fashion.NAMES["glann"], glann, summary)
    _figure(ctx, x_train[:16], rec_images[:16], glo_images[:32], glann_images[:32],
            fid_glo, fid_glann)
    return Result(metrics=metrics, claims=claims)


def _grid(images: torch.Tensor, rows: int, cols: int) -> np.ndarray:
    x = images.float().reshape(rows, cols, 28, 28).permute(0, 2, 1, 3)
    return x.reshape(rows * 28, cols * 28).numpy()


def _figure(ctx, real, rec, glo_images, glann_images, fid_glo: float, fid_glann: float) -> None:
    fig = Figure(figsize=(12, 3.4))
    axes = fig.subplots(1, 4)
    panels = [(real, 2, "training images"), (rec, 2, "GLO reconstructions"),
              (glo_images, 4, f"GLO + Gaussian (FID {fid_glo:.1f})"),
              (glann_images, 4, f"GLANN (FID {fid_glann:.1f})")]
    for ax, (images, rows, title) in zip(axes, panels, strict=True):
        ax.imshow(_grid(images, rows, len(images) // rows), cmap="gray_r")
        ax.set(title=title, xticks=[], yticks=[])
    ctx.figure(fig, "samples")

    fig = Figure(figsize=(8, 3))
    ax1, ax2 = fig.subplots(1, 2)
    steps, loss = ctx.series("l2", "glo")
    ax1.plot(steps, loss)
    ax1.set(xlabel="step", ylabel="per-pixel MSE", yscale="log", title="GLO")
    steps, dist = ctx.series("nn_distance", "glann")
    ax2.plot(steps, dist)
    ax2.set(xlabel="step", ylabel="mean squared NN distance", yscale="log",
            title="GLANN: IMLE in the latent space")
    ctx.figure(fig, "training")


_SMOKE = Config(train_first=1000, glo_steps=12, batch_size=64, glann_steps=8, imle_batch=64,
                imle_candidates=256, nn_chunk=100, fid_n=200, log_every=4,
                mapper_hidden=(64, 64))

EXPERIMENT = experiment(
    name="glann-fashion",
    sections=("8.12", "8.13"),
    claim="GLANN (IMLE in GLO's 64-d latent space) samples Fashion-MNIST with a lower FID than "
          "GLO's fitted Gaussian, and its nearest-neighbour search costs under 1/8 of the "
          "FLOPs of IMLE's in pixel space.",
    presets={"smoke": _SMOKE, "quick": Config(),
             "full": Config(train_first=0, glo_steps=30000, glann_steps=10000, fid_n=10000)},
    run=run,
    single_process=True,
    requires=(fashion_cnn.NAME,),
    produces=(glo_fashion.NAMES["glo"], glo_fashion.NAMES["glann"]),
    quick_seconds=90.0,
    flagship=True,
)
