"""FID and IS respond to known degradations of real images as they should (notes 8.9).

Features and class probabilities come from the zoo CNN of the run's tier (artifact
``cnn-fashion``; its sha256 is in the summary's ``artifacts``), layer ``FashionCNN.embed``:
the flattened last feature maps that feed the linear classifier (3136-d at quick and full,
784-d for the smoke network). The reference set is the first ``reference_size`` training
images; every compared set has ``sample_size`` images taken from the test split:

1. Gaussian pixel noise of std ``s`` (pixels in [0, 1], clamped and requantized to uint8);
2. Gaussian blur of std ``s`` pixels;
3. mode dropping: a share of the 10 classes (nested: the classes dropped at 50% include those
   dropped at 20%) is removed and the set filled with the kept classes' test images (cycled
   when there are too few);
4. the clean test images: the FID floor (train against test), for N in ``sizes``: FID is
   biased upward by terms of order 1/N, so the floor falls with N; a line in 1/N extrapolates
   it to N -> infinity (Chong & Forsyth 2020);
5. the PCA-Gaussian baseline (:class:`deepnotes.generative.baselines.PCAGaussian`, 95% of the
   variance, fitted to the reference images): the FID that chapter 8's generators must beat,
   at this N and network only.

Each curve starts at the clean set (level 0). The FIDs of sets smaller than the feature
dimension use the ``n x n`` form of the trace term (:class:`ReferenceStatistics`), the same
number as :func:`deepnotes.metrics.generative.fid`. Claims (thresholds set before the first
run): FID rises at every step of noise, blur and dropped share; IS falls at every dropped
step; the floor falls at every step of N; the PCA baseline lies above the floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from deepnotes.data import load_fashion_mnist
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.generative.baselines import PCAGaussian
from deepnotes.metrics.generative import CNNFeatures, ReferenceStatistics, inception_score
from deepnotes.zoo import fashion_cnn

NUM_CLASSES = 10


@dataclass(frozen=True)
class Config:
    reference_size: int = 10000  # training images the compared sets are measured against
    sample_size: int = 1000  # images in each compared set
    test_size: int = 10000  # test images available to the compared sets
    noise_levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)  # pixel-noise std, [0, 1] scale
    blur_levels: tuple[float, ...] = (0.5, 1.0, 2.0)  # Gaussian blur std in pixels
    drop_shares: tuple[float, ...] = (0.2, 0.5, 0.8)  # share of the classes removed
    sizes: tuple[int, ...] = (250, 500, 1000, 2000)  # N of the floor's bias curve
    is_splits: int = 10
    variance_kept: float = 0.95  # PCA-Gaussian baseline
    threads: int = 0  # intra-op threads; 0 = the runner's choice


# --- Degradations (uint8 images (N, 28, 28) in, uint8 out) -----------------------------------
def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def add_noise(images: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    x = images.float() / 255
    return _to_uint8(x + std * torch.randn(x.shape, generator=generator))


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, radius ``ceil(3 sigma)``, reflected borders."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-t.square() / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    x = F.pad(images.float().unsqueeze(1) / 255, (radius,) * 4, mode="reflect")  # (N,1,H',W')
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return _to_uint8(x[:, 0])


def kept_class_indices(labels: torch.Tensor, dropped: torch.Tensor, n: int) -> torch.Tensor:
    """The first ``n`` indices of images whose class is not dropped (cycled if too few)."""
    kept = torch.nonzero(~torch.isin(labels, dropped)).flatten()
    return kept[torch.arange(n) % len(kept)]


# --- Measure -----------------------------------------------------------------------------------
def measure(cfg: Config, ctx) -> dict:
    model, artifact = fashion_cnn.load(ctx.tier)
    features = CNNFeatures(model, artifact.sha256,
                           prepare=partial(fashion_cnn.prepare, channels_last=True))
    x_ref, _ = load_fashion_mnist("train", first=cfg.reference_size)
    x_test, y_test = load_fashion_mnist("test", first=cfg.test_size)
    reference = ReferenceStatistics(features(x_ref))
    test_features = features(x_test)  # (test_size, d): clean sets are slices of it
    test_probs = features.class_probabilities(x_test)
    base = x_test[:cfg.sample_size]

    def fid_of(images: torch.Tensor) -> float:
        return reference.fid(features(images))

    floor = reference.fid(test_features[:cfg.sample_size])
    noise = [floor] + [fid_of(add_noise(base, s, ctx.rng("noise", i)))
                       for i, s in enumerate(cfg.noise_levels)]
    blur = [floor] + [fid_of(gaussian_blur(base, s)) for s in cfg.blur_levels]

    order = torch.randperm(NUM_CLASSES, generator=ctx.rng("dropped-classes"))
    drop_fid, drop_is = [floor], [inception_score(test_probs[:cfg.sample_size],
                                                  cfg.is_splits)[0]]
    for share in cfg.drop_shares:
        idx = kept_class_indices(y_test, order[:round(share * NUM_CLASSES)], cfg.sample_size)
        drop_fid.append(reference.fid(test_features[idx]))
        drop_is.append(inception_score(test_probs[idx], cfg.is_splits)[0])

    by_n = [reference.fid(test_features[:n]) for n in cfg.sizes]
    slope, intercept = np.polyfit(1.0 / np.asarray(cfg.sizes, dtype=float), by_n, 1)

    pca = PCAGaussian(cfg.variance_kept).fit(x_ref.flatten(1).double() / 255)
    pca_images = _to_uint8(pca.sample(cfg.sample_size, ctx.rng("pca-samples")).view(-1, 28, 28))
    pca_features = features(pca_images)
    pca_is = inception_score(features.class_probabilities(pca_images), cfg.is_splits)[0]
    return {"noise": noise, "blur": blur, "drop_fid": drop_fid, "drop_is": drop_is,
            "by_n": by_n, "floor": floor, "floor_slope": float(slope),
            "floor_extrapolated": float(intercept), "pca_fid": reference.fid(pca_features),
            "pca_is": pca_is, "pca_components": pca.num_components,
            "pca_explained": pca.explained, "feature_dim": features.num_features,
            "artifact_test_accuracy": artifact.metrics["test_accuracy"],
            "_pca_images": pca_images[:8], "_examples": _examples(cfg, base[0], ctx)}


def _examples(cfg: Config, image: torch.Tensor, ctx) -> list[tuple[str, torch.Tensor]]:
    one = image.unsqueeze(0)
    rows = [("clean", image)]
    rows += [(f"noise {s}", add_noise(one, s, ctx.rng("example-noise", i))[0])
             for i, s in enumerate(cfg.noise_levels)]
    rows += [(f"blur {s}", gaussian_blur(one, s)[0]) for s in cfg.blur_levels]
    return rows


# --- Plot ---------------------------------------------------------------------------------------
def plot(ctx, cfg: Config, m: dict) -> None:
    fig = Figure(figsize=(15, 3.6))
    ax_noise, ax_blur, ax_drop, ax_n = fig.subplots(1, 4)
    ax_noise.plot([0, *cfg.noise_levels], m["noise"], "o-")
    ax_noise.set(xlabel="pixel noise std", ylabel="FID", title="added Gaussian noise")
    ax_blur.plot([0, *cfg.blur_levels], m["blur"], "o-")
    ax_blur.set(xlabel="blur std (pixels)", ylabel="FID", title="Gaussian blur")
    shares = [0, *cfg.drop_shares]
    ax_drop.plot(shares, m["drop_fid"], "o-", label="FID")
    ax_drop.set(xlabel="share of classes dropped", ylabel="FID", title="mode dropping")
    ax_is = ax_drop.twinx()
    ax_is.plot(shares, m["drop_is"], "s--", color="C1", label="IS")
    ax_is.set_ylabel("Inception Score (CNN)")
    inv_n = 1.0 / np.asarray(cfg.sizes, dtype=float)
    ax_n.plot(inv_n, m["by_n"], "o", label="train vs test")
    line = np.linspace(0, inv_n.max(), 20)
    ax_n.plot(line, m["floor_extrapolated"] + m["floor_slope"] * line, "--",
              label=f"fit, 1/N -> 0: {m['floor_extrapolated']:.2f}")
    ax_n.axhline(m["pca_fid"], color="C3", ls=":", label="PCA-Gaussian (N = sample size)")
    ax_n.set(xlabel="1 / N", ylabel="FID", title="FID floor against N (bias)")
    ax_n.legend(fontsize=8)
    ctx.figure(fig, "fid_sanity")

    examples = m["_examples"] + [(f"PCA-Gaussian {i}", im) for i, im in
                                 enumerate(m["_pca_images"][:4])]
    fig = Figure(figsize=(1.6 * len(examples), 2))
    for ax, (title, im) in zip(fig.subplots(1, len(examples)), examples, strict=True):
        ax.imshow(im.numpy(), cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    ctx.figure(fig, "degradations")


# --- Claims ------------------------------------------------------------------------------------
def _steps(values: list[float]) -> np.ndarray:
    return np.diff(np.asarray(values, dtype=float))


def run(cfg: Config, ctx) -> Result:
    m = measure(cfg, ctx)
    plot(ctx, cfg, m)
    metrics = {k: v for k, v in m.items() if not k.startswith("_") and not isinstance(v, list)}
    metrics.update({"reference_size": cfg.reference_size, "sample_size": cfg.sample_size})
    for name, levels in (("noise", cfg.noise_levels), ("blur", cfg.blur_levels)):
        for level, value in zip((0, *levels), m[name], strict=True):
            metrics[f"fid_{name}_{level:g}"] = value
    for share, f, s in zip((0, *cfg.drop_shares), m["drop_fid"], m["drop_is"], strict=True):
        metrics[f"fid_drop_{share:g}"], metrics[f"is_drop_{share:g}"] = f, s
    for n, value in zip(cfg.sizes, m["by_n"], strict=True):
        metrics[f"fid_floor_n{n}"] = value
    metrics["pca_fid_over_floor"] = m["pca_fid"] / m["floor"]
    return Result(metrics=metrics, claims=[
        Claim("fid_grows_with_noise", "FID rises at every step of added Gaussian pixel noise "
              "(smallest step).", float(_steps(m["noise"]).min()), ">", 0.0, source="project"),
        Claim("fid_grows_with_blur", "FID rises at every step of Gaussian blur (smallest "
              "step).", float(_steps(m["blur"]).min()), ">", 0.0, source="project"),
        Claim("fid_grows_with_dropped_classes", "FID rises at every step of the share of "
              "classes dropped (smallest step).", float(_steps(m["drop_fid"]).min()), ">", 0.0,
              source="project"),
        Claim("is_falls_with_dropped_classes", "The Inception Score falls at every step of the "
              "share of classes dropped (largest step).", float(_steps(m["drop_is"]).max()),
              "<", 0.0),
        Claim("fid_floor_falls_with_n", "The train-vs-test FID falls at every step of the "
              "sample size N: it is biased upward (largest step).",
              float(_steps(m["by_n"]).max()), "<", 0.0, source="project"),
        Claim("pca_baseline_above_floor", "The PCA-Gaussian baseline's FID lies above the "
              "train-vs-test floor (ratio).", metrics["pca_fid_over_floor"], ">", 1.0,
              source="project"),
    ])


EXPERIMENT = experiment(
    name="fid-sanity",
    sections="8.9",
    claim="On real Fashion-MNIST images FID rises with noise, blur and dropped classes, IS "
          "falls with dropped classes, and FID's floor falls with the sample size.",
    presets={
        "smoke": Config(reference_size=1000, sample_size=200, test_size=1000,
                        noise_levels=(0.1, 0.4), blur_levels=(1.0, 2.0),
                        drop_shares=(0.2, 0.8), sizes=(50, 100, 200), is_splits=4, threads=1),
        "quick": Config(),
        "full": Config(reference_size=60000, sample_size=10000,
                       sizes=(500, 1000, 2000, 5000, 10000)),
    },
    run=run,
    requires=(fashion_cnn.NAME,),
    quick_seconds=20.0,
)
