"""DCGAN, LSGAN and the conditional GAN on Fashion-MNIST, judged by offline FID and IS
(notes 8.6, 8.6.1, 8.7.1, 8.9, 8.10).

One recipe for all three (:mod:`deepnotes.zoo.gan_fashion`): the DCGAN of
:mod:`deepnotes.generative.dcgan` (latent 64, width 32), Adam 2e-4 with beta1 = 0.5, batch 64,
one D step per G step, real = 1 / fake = 0, an EMA copy of G (decay 0.999), generator in eval
mode for every sample. ``dcgan-fashion`` uses the non-saturating loss, ``lsgan-fashion`` the
least-squares loss of 8.7.1, ``cgan-fashion`` the non-saturating loss with the class given to
G (embedding added to its first layer) and to D (projection).

**Measured** with the zoo CNN (``cnn-fashion``, its penultimate layer, the artifact's sha256
in the summary): the FID of ``fid_n`` EMA samples against as many test images, and of the
PCA-Gaussian baseline (:class:`deepnotes.generative.baselines.PCAGaussian`, 95% of the
variance, fitted on the training images, the same N) as the number to beat; the FID of the
raw (non-EMA) generator; the Inception Score (``p(y)`` the marginal over the samples, 10
splits); FID and IS against training steps on ``curve_n`` samples; for the cGAN, the zoo
classifier's accuracy on samples of each requested class.

**Interpolation (8.6.1)**, DCGAN only: between pairs of latent draws, linear (lerp) and
spherical (slerp) paths; in 64 dimensions a draw of N(0, I) lies near the sphere of radius 8,
and the lerp midpoint's norm drops to about 8 / sqrt(2): off the shell the generator was
trained on. Reported: the mean norm at the midpoints and the classifier's mean confidence
(max probability) along each path.

Quick tier calibrated on an Intel Xeon (Sapphire Rapids class, AMX), 2 threads:
``benchmarks/bench_gan.py``-style step timing gave 19.6 ms per step for width 32 with
channels_last and bf16 autocast (33 ms channels_last fp32, 60 ms plain fp32).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from deepnotes.data import load_fashion_mnist
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.generative.baselines import PCAGaussian
from deepnotes.generative.dcgan import slerp, to_uint8
from deepnotes.metrics.generative import CNNFeatures, ReferenceStatistics, inception_score
from deepnotes.zoo import fashion_cnn, gan_fashion

# Fixed before the run (the targets).
MAX_FID_RATIO = 0.5  # FID(GAN) <= 0.5 x FID(PCA-Gaussian baseline) at the same N
MIN_INCEPTION_SCORE = {"smoke": 1.0, "quick": 6.0, "full": 6.0}
MIN_CLASS_ACCURACY = {"smoke": 0.0, "quick": 0.70, "full": 0.85}
INTERPOLATION_PAIRS = 8
INTERPOLATION_STEPS = 9


@dataclass(frozen=True)
class Config(gan_fashion.Recipe):
    loss: str = "non-saturating"
    conditional: bool = False
    train_first: int = 0  # first N training images (0: all 60,000)
    fid_n: int = 5000  # samples and test images of the final FID
    curve_n: int = 1000  # samples of each FID/IS point against steps
    curve_points: int = 4  # evaluations along training


def _grid(images: torch.Tensor, rows: int, cols: int) -> np.ndarray:
    x = images.float().reshape(rows, cols, 28, 28).permute(0, 2, 1, 3)
    return x.reshape(rows * 28, cols * 28).numpy()


def _samples(generator, n: int, latent: int, gen: torch.Generator, conditional: bool,
             batch: int = 1000) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` uint8 samples (and their requested classes: ``n / 10`` of each)."""
    y = torch.arange(n) % 10 if conditional else None
    parts = []
    for i in range(0, n, batch):
        z = torch.randn(min(batch, n - i), latent, generator=gen)
        parts.append(to_uint8(gan_fashion.sample(generator, z, None if y is None
                                                 else y[i:i + len(z)])))
    return torch.cat(parts), y


def run(cfg: Config, ctx) -> Result:
    x_train, y_train = load_fashion_mnist("train", first=cfg.train_first or None)
    x_test, _ = load_fashion_mnist("test")
    cnn, artifact = fashion_cnn.load(ctx.tier)
    features = CNNFeatures(cnn, artifact.sha256)
    n_fid = min(cfg.fid_n, len(x_test))
    test_features = features(x_test[:max(n_fid, cfg.curve_n)])  # one pass for both sets
    reference = ReferenceStatistics(test_features[:n_fid])
    reference_curve = ReferenceStatistics(test_features[:cfg.curve_n])
    name = gan_fashion.NAMES["conditional" if cfg.conditional else cfg.loss]

    # What the evaluations record is checkpointed with the networks (resume keeps it).
    state: dict = {"curve": [], "snapshots": []}
    fixed_z = torch.randn(64, cfg.latent, generator=ctx.rng("fixed-noise"))
    fixed_y = torch.arange(64) % 10 if cfg.conditional else None

    def evaluate(step: int, generator) -> None:
        images, _ = _samples(generator, cfg.curve_n, cfg.latent, ctx.rng("curve", step),
                             cfg.conditional)
        score, _ = inception_score(features.class_probabilities(images), splits=10)
        state["curve"].append([step, reference_curve.fid(features(images)), score])
        state["snapshots"].append(to_uint8(gan_fashion.sample(generator, fixed_z, fixed_y)))

    eval_every = max(1, cfg.steps // max(cfg.curve_points, 1))
    g, ema = gan_fashion.train(ctx, cfg, x_train, y_train, cfg.loss, cfg.conditional,
                               phase="gan", evaluate=evaluate, eval_every=eval_every,
                               state=state)
    curve = [(int(step), float(f), float(s)) for step, f, s in state["curve"]]
    snapshots = list(zip([c[0] for c in curve], state["snapshots"], strict=True))
    sampler = ema if ema is not None else g
    images, y_req = _samples(sampler, n_fid, cfg.latent, ctx.rng("fid-samples"), cfg.conditional)
    fid = reference.fid(features(images))
    probs = features.class_probabilities(images)
    is_mean, is_std = inception_score(probs, splits=10)
    raw_images, _ = _samples(g, n_fid, cfg.latent, ctx.rng("fid-samples-raw"), cfg.conditional)
    pca = PCAGaussian(0.95).fit(x_train.reshape(len(x_train), -1).double() / 255.0)
    pca_images = (pca.sample(n_fid, ctx.rng("pca-samples")).clamp(0, 1) * 255).round()
    pca_fid = reference.fid(features(pca_images.to(torch.uint8).reshape(-1, 28, 28)))
    metrics: dict[str, float] = {
        "fid": fid, "fid_raw_generator": reference.fid(features(raw_images)),
        "fid_pca_gaussian": pca_fid, "fid_ratio_to_pca": fid / pca_fid,
        "pca_components": pca.num_components, "fid_n": n_fid,
        "inception_score": is_mean, "inception_score_std": is_std,
        "test_inception_score": inception_score(
            features.class_probabilities(x_test[:n_fid]), splits=10)[0],
        "steps": cfg.steps, "train_images": len(x_train)}
    for step, f, s in curve:
        metrics[f"fid_curve_step{step}"] = f
        metrics[f"is_curve_step{step}"] = s
    claims = [
        Claim("fid_beats_pca_baseline", f"The {name} samples' FID (zoo-CNN features, N = "
              f"{n_fid}) is at most {MAX_FID_RATIO:g} x the PCA-Gaussian baseline's: "
              "FID(GAN) / FID(PCA-Gaussian).", fid / pca_fid, "<=", MAX_FID_RATIO,
              source="project"),
        Claim("inception_score", f"The {name} samples' Inception Score (zoo CNN, 10 splits) is "
              f"at least {MIN_INCEPTION_SCORE[ctx.tier]:g} of 10.", is_mean, ">=",
              MIN_INCEPTION_SCORE[ctx.tier], source="project"),
    ]
    if cfg.conditional:
        accuracy = float((probs.argmax(1) == y_req).double().mean())
        per_class = [float((probs.argmax(1)[y_req == c] == c).double().mean())
                     for c in range(10)]
        metrics["class_accuracy"] = accuracy
        metrics.update({f"class_accuracy_{c}": a for c, a in enumerate(per_class)})
        claims.append(Claim(
            "class_accuracy", "The zoo classifier labels the cGAN's samples with the class they "
            f"were requested for at least {MIN_CLASS_ACCURACY[ctx.tier]:.0%} of the time (8.10).",
            accuracy, ">=", MIN_CLASS_ACCURACY[ctx.tier]))
    else:
        metrics.update(_interpolation(ctx, cfg, sampler, features))
    gan_fashion.save(ctx, name, sampler, {k: metrics[k] for k in (
        "fid", "fid_pca_gaussian", "inception_score", "fid_n")})
    _figures(ctx, name, snapshots, curve, pca_fid)
    return Result(metrics=metrics, claims=claims)


def _interpolation(ctx, cfg: Config, generator, features: CNNFeatures) -> dict[str, float]:
    gen = ctx.rng("interpolation")
    t = torch.linspace(0, 1, INTERPOLATION_STEPS)
    rows, out = {"lerp": [], "slerp": []}, {}
    for _ in range(INTERPOLATION_PAIRS):
        z0, z1 = torch.randn(cfg.latent, generator=gen), torch.randn(cfg.latent, generator=gen)
        rows["lerp"].append((1 - t[:, None]) * z0 + t[:, None] * z1)
        rows["slerp"].append(slerp(z0, z1, t))
    for kind, paths in rows.items():
        z = torch.cat(paths)
        images = to_uint8(gan_fashion.sample(generator, z))
        confidence = features.class_probabilities(images).max(1).values
        out[f"{kind}_confidence"] = float(confidence.mean())
        out[f"{kind}_midpoint_norm"] = float(
            torch.stack(paths)[:, INTERPOLATION_STEPS // 2].norm(dim=1).mean())
        fig = Figure(figsize=(6, 5.5))
        ax = fig.subplots()
        ax.imshow(_grid(images, INTERPOLATION_PAIRS, INTERPOLATION_STEPS), cmap="gray_r")
        ax.set(title=f"{kind} in z-space: mean classifier confidence "
                     f"{out[f'{kind}_confidence']:.3f}", xticks=[], yticks=[])
        ctx.figure(fig, f"interpolation_{kind}")
    return out


def _figures(ctx, name: str, snapshots, curve, pca_fid: float) -> None:
    fig = Figure(figsize=(3 * len(snapshots), 3.2))
    axes = np.atleast_1d(fig.subplots(1, len(snapshots)))
    for ax, (step, images) in zip(axes, snapshots, strict=True):
        ax.imshow(_grid(images, 8, 8), cmap="gray_r")
        ax.set(title=f"step {step}", xticks=[], yticks=[])
    fig.suptitle(f"{name}: the same 64 latent draws at each evaluation")
    ctx.figure(fig, "fixed_noise")

    fig = Figure(figsize=(8, 3))
    ax1, ax2 = fig.subplots(1, 2)
    steps = [c[0] for c in curve]
    ax1.plot(steps, [c[1] for c in curve], "o-", label=name)
    ax1.axhline(pca_fid, color="k", ls=":", label="PCA-Gaussian (N = fid_n)")
    ax1.set(xlabel="step", ylabel="FID (zoo CNN)", yscale="log")
    ax1.legend(fontsize=7)
    ax2.plot(steps, [c[2] for c in curve], "o-")
    ax2.set(xlabel="step", ylabel="Inception Score (zoo CNN)")
    fig.suptitle("FID and IS against training steps (curve_n samples each)")
    ctx.figure(fig, "curves")


_SMOKE = Config(steps=12, batch_size=32, train_first=2000, fid_n=300, curve_n=200,
                curve_points=2, log_every=4, ema_decay=0.9)
_QUICK = Config(steps=4000, bf16=True)
_FULL = Config(steps=20000, bf16=True, fid_n=10000, curve_n=2000, curve_points=10)


def _presets(**changes) -> dict:
    return {tier: dataclasses.replace(c, **changes)
            for tier, c in (("smoke", _SMOKE), ("quick", _QUICK), ("full", _FULL))}


EXPERIMENT = experiment(
    name="dcgan-fashion",
    sections=("8.6", "8.6.1", "8.9"),
    claim="A DCGAN trained for about 2 minutes beats the PCA-Gaussian baseline's FID by half "
          "and reaches an Inception Score of 6; slerp stays on the latent shell, lerp does not.",
    presets=_presets(),
    run=run,
    single_process=True,
    requires=(fashion_cnn.NAME,),
    produces=(gan_fashion.NAMES["non-saturating"],),
    quick_seconds=110.0,
    flagship=True,
)

EXPERIMENT_LSGAN = experiment(
    name="lsgan-fashion",
    sections=("8.7.1", "8.9"),
    claim="The least-squares GAN of 8.7.1, with the DCGAN's recipe, beats the PCA-Gaussian "
          "baseline's FID by half.",
    presets=_presets(loss="least-squares"),
    run=run,
    single_process=True,
    requires=(fashion_cnn.NAME,),
    produces=(gan_fashion.NAMES["least-squares"],),
    quick_seconds=110.0,
    flagship=True,
)

EXPERIMENT_CGAN = experiment(
    name="cgan-fashion",
    sections=("8.10", "8.9"),
    claim="A class-conditional DCGAN draws the requested class: the zoo classifier agrees "
          "with the request at least 70% of the time.",
    presets=_presets(conditional=True),
    run=run,
    single_process=True,
    requires=(fashion_cnn.NAME,),
    produces=(gan_fashion.NAMES["conditional"],),
    quick_seconds=116.0,
    flagship=True,
)
