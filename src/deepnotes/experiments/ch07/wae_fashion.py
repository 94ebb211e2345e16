"""The Wasserstein auto-encoder against the plain auto-encoder and the VAE (notes 7.3).

Four models with one architecture (MLP 784-400-8-400-784, ReLU; the VAE's encoder head gives
a mean and a log-variance instead of one code), one step budget and one learning-rate grid
``LEARNING_RATES`` (fixed before the run; each model keeps the rate with the best value of
its own validation objective on 5,000 held-out training images):

* ``ae``: squared error summed over pixels, no penalty;
* ``wae-mmd``: the same plus ``lambda = 10`` times the unbiased IMQ MMD between the batch's
  codes and as many prior draws (:mod:`deepnotes.autoencoders.wae`);
* ``wae-gan``: the same plus ``lambda = 1`` times the non-saturating loss of a latent
  discriminator (``LAMBDA``: Tolstikhin et al.'s MNIST values, not tuned here). Its learning
  rate is selected by squared error + 10 MMD, an adversary-free criterion;
* ``vae``: pytorch/examples' objective (BCE on grey levels + KL), the baseline of 7.2.

Measured on the test set: the aggregate posterior's distance from the prior N(0, I)
(``mmd_<model>``: unbiased IMQ MMD, the paper's summed scales, between the codes of
``mmd_images`` test images and as many prior draws; for the VAE one draw of q(z|x) per
image), the spread of the codes (``code_spread_<model>``: mean distance between the codes of
different images over the mean distance between two prior draws, ~sqrt(2 d)), the test
squared error, and the Fréchet distance between decoded prior samples and test images on the
penultimate features of the zoo CNN (``cnn-fashion``, :class:`deepnotes.metrics.generative.
CNNFeatures`; ``fid_n`` images on each side, samples quantized to uint8 like the test images;
values are not comparable with Inception FIDs). ``wae-fashion``
publishes the WAE-MMD.

The notes (7.3) motivate the WAE by the VAE's per-image KL, which pulls every posterior
towards the prior; the WAE penalizes only the aggregate: measured as ``code_spread``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from deepnotes.autoencoders import grey_neg_elbo, posterior_means, reparameterize, sample_images
from deepnotes.autoencoders.ae import encode_all
from deepnotes.autoencoders.wae import (
    decode_prior,
    mean_pairwise_distance,
    sample_prior,
    squared_error,
    wae_mmd_penalty,
)
from deepnotes.data import hold_out, load_fashion_mnist
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.metrics.generative import CNNFeatures, ReferenceStatistics
from deepnotes.zoo import fashion_cnn, vae_fashion, wae_fashion

LEARNING_RATES = (1e-3, 3e-3)  # one grid for every model, fixed before the run
LAMBDA = {"ae": 0.0, "wae-mmd": 10.0, "wae-gan": 1.0}  # Tolstikhin et al. (MNIST)
PENALTY = {"ae": "none", "wae-mmd": "mmd", "wae-gan": "gan"}
SELECTION_LAMBDA = 10.0  # weight of the MMD in the validation criterion of the WAE-GAN
MODELS = ("ae", "wae-mmd", "wae-gan", "vae")
MIN_CODE_SPREAD = 0.5  # codes of different images at least half as far apart as prior draws
MAX_MMD_RATIO = 1.0  # the WAE's aggregate posterior closer to the prior than the AE's
VAL_IMAGES = 5000


@dataclass(frozen=True)
class Config(wae_fashion.Recipe):
    train_first: int = 0  # first N training images (0: all 60,000; the last 5,000 validate)
    test_first: int = 0  # first N test images (0: all 10,000)
    mmd_images: int = 2000  # test codes (and prior draws) in the MMD
    fid_n: int = 5000  # images on each side of the Fréchet distance


def _grid(images: torch.Tensor, rows: int, cols: int) -> np.ndarray:
    tiles = images.reshape(rows, cols, 28, 28).permute(0, 2, 1, 3).reshape(rows * 28, cols * 28)
    return tiles.numpy()


def _uint8(images: torch.Tensor) -> torch.Tensor:
    """Decoded grey levels ``(N, 784)`` in [0, 1] -> uint8 images ``(N, 28, 28)``."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).reshape(-1, 28, 28)


def _train(ctx, cfg: Config, name: str, lr: float, x_train: torch.Tensor):
    phase = f"{name}-lr{lr:g}".replace(".", "p")
    if name == "vae":
        recipe = vae_fashion.Recipe(hidden=cfg.hidden, latent=cfg.latent, epochs=cfg.epochs,
                                    batch_size=cfg.batch_size, lr=lr, cosine=cfg.cosine,
                                    bf16=cfg.bf16, log_every=cfg.log_every)
        return vae_fashion.train(ctx, recipe, x_train, phase=phase)
    return wae_fashion.train(ctx, cfg, x_train, PENALTY[name], LAMBDA[name], phase=phase, lr=lr)


def _val_objective(ctx, name: str, model, x_val: torch.Tensor) -> float:
    if name == "vae":
        return grey_neg_elbo(model, x_val, generator=ctx.rng("val-eps"))["neg_elbo"]
    lam = 0.0 if name == "ae" else (LAMBDA[name] if name == "wae-mmd" else SELECTION_LAMBDA)
    return wae_fashion.objective(model, x_val, "mmd", lam, ctx.rng("val-prior"))


def _codes(ctx, name: str, model, x: torch.Tensor) -> torch.Tensor:
    if name == "vae":
        mu, log_var = posterior_means(model, x)
        return reparameterize(mu, log_var, ctx.rng("vae-codes"))
    return encode_all(model, x)


@torch.no_grad()
def _test_error(name: str, model, x: torch.Tensor) -> float:
    if name == "vae":
        mu, _ = posterior_means(model, x)
        logits = model.decode(mu)
    else:
        logits = model(x)[0]
    return float(squared_error(logits, x).double().mean())


def run(cfg: Config, ctx) -> Result:
    x_all, _ = load_fashion_mnist("train", first=cfg.train_first or None)
    (x_train,), (x_val,) = hold_out(VAL_IMAGES, x_all)
    n_val, x_val = len(x_val), vae_fashion.prepare(x_val)
    x_test_u8, _ = load_fashion_mnist("test", first=cfg.test_first or None)
    x_test = vae_fashion.prepare(x_test_u8)
    cnn, artifact = fashion_cnn.load(ctx.tier)  # recorded (name, tier, sha256) in the summary
    features = CNNFeatures(cnn, artifact.sha256)

    metrics: dict[str, float] = {"latent": cfg.latent, "train_images": len(x_train),
                                 "val_images": n_val, "test_images": len(x_test)}
    models = {}
    for name in MODELS:
        scores = {}
        for lr in LEARNING_RATES:
            model = _train(ctx, cfg, name, lr, x_train)
            with ctx.untimed():
                scores[lr] = (_val_objective(ctx, name, model, x_val), model)
            metrics[f"val_objective_{name}_lr{lr:g}".replace(".", "p")] = scores[lr][0]
        best = min(scores, key=lambda lr: scores[lr][0])
        metrics[f"lr_{name}"] = best
        models[name] = scores[best][1]

    n_mmd = min(cfg.mmd_images, len(x_test))
    prior = sample_prior(n_mmd, cfg.latent, ctx.rng("mmd-prior"))
    prior_spread = mean_pairwise_distance(prior)
    metrics["prior_spread"] = prior_spread
    n_fid = min(cfg.fid_n, len(x_test))
    real = ReferenceStatistics(features(x_test_u8[:n_fid]))
    samples = {}
    for name, model in models.items():
        z = _codes(ctx, name, model, x_test[:n_mmd])
        metrics[f"mmd_{name}"] = float(wae_mmd_penalty(z, prior))
        metrics[f"code_spread_{name}"] = mean_pairwise_distance(z) / prior_spread
        metrics[f"test_sq_error_{name}"] = _test_error(name, model, x_test)
        gen = ctx.rng("fid-samples", MODELS.index(name))
        samples[name] = (sample_images(model, n_fid, generator=gen) if name == "vae"
                         else decode_prior(model, n_fid, generator=gen))
        metrics[f"fid_{name}"] = real.fid(features(_uint8(samples[name])))
    metrics["fid_n"] = n_fid
    metrics["mmd_images"] = n_mmd
    wae_fashion.save(ctx, models["wae-mmd"], {k: metrics[f"{k}_wae-mmd"] for k in (
        "mmd", "code_spread", "test_sq_error", "fid")})
    _figures(ctx, samples, models, x_test, metrics)

    claims = [
        Claim("wae_mmd_prior_match", "The WAE-MMD's aggregate posterior is closer to the prior "
              "than the plain auto-encoder's (same architecture and steps): MMD(WAE-MMD) / "
              f"MMD(AE) < {MAX_MMD_RATIO:g}.", metrics["mmd_wae-mmd"] / metrics["mmd_ae"], "<",
              MAX_MMD_RATIO),
        Claim("wae_gan_prior_match", "The WAE-GAN's aggregate posterior is closer to the prior "
              f"than the plain auto-encoder's: MMD(WAE-GAN) / MMD(AE) < {MAX_MMD_RATIO:g}.",
              metrics["mmd_wae-gan"] / metrics["mmd_ae"], "<", MAX_MMD_RATIO),
        Claim("wae_codes_distinct", "The WAE-MMD keeps the codes of different images apart: "
              "their mean distance is at least "
              f"{MIN_CODE_SPREAD:g} x that of two prior draws.", metrics["code_spread_wae-mmd"],
              ">=", MIN_CODE_SPREAD),
        Claim("wae_beats_vae_fid", "Decoded prior samples of the WAE-MMD are closer to test "
              "images than the VAE's (same architecture, steps and LR grid): Fréchet distance "
              "on the zoo CNN's features, FID(WAE-MMD) - FID(VAE) < 0.",
              metrics["fid_wae-mmd"] - metrics["fid_vae"], "<", 0.0),
    ]
    return Result(metrics=metrics, claims=claims)


def _figures(ctx, samples, models, x_test, metrics) -> None:
    fig = Figure(figsize=(10, 2.9))
    axes = fig.subplots(1, len(MODELS))
    for ax, name in zip(axes, MODELS, strict=True):
        ax.imshow(_grid(samples[name][:36], 6, 6), cmap="gray_r", vmin=0, vmax=1)
        ax.set(title=f"{name}: FID {metrics[f'fid_{name}']:.1f}", xticks=[], yticks=[])
    fig.suptitle("decoded prior samples z ~ N(0, I) (Fréchet distance on zoo-CNN features)")
    ctx.figure(fig, "samples")

    fig = Figure(figsize=(10, 2.9))
    axes = fig.subplots(1, len(MODELS))
    for ax, name in zip(axes, MODELS, strict=True):
        z = _codes(ctx, name, models[name], x_test[:1000]).numpy()
        ax.scatter(*sample_prior(1000, z.shape[1], ctx.rng("figure-prior"))[:, :2].T.numpy(),
                   s=1, c="0.7", label="prior")
        ax.scatter(z[:, 0], z[:, 1], s=1, c="C0", label="codes")
        ax.set(title=f"{name}: MMD {metrics[f'mmd_{name}']:.3f}", xlabel="z_1",
               ylabel="z_2" if name == MODELS[0] else None)
    axes[0].legend(markerscale=5, fontsize=7)
    fig.suptitle("first two code dimensions of 1,000 test images against prior draws")
    ctx.figure(fig, "codes")


EXPERIMENT = experiment(
    name="wae-fashion",
    sections=("7.3",),
    claim="A WAE penalizes only the aggregate posterior: its codes match the prior (MMD) "
          "while staying apart, and its prior samples beat a VAE's under the Fréchet distance.",
    presets={
        "smoke": Config(epochs=1.0, train_first=3000, test_first=600, mmd_images=200,
                        fid_n=300, log_every=5),
        "quick": Config(epochs=10.0, batch_size=512, bf16=True),
        "full": Config(epochs=60.0, batch_size=512, bf16=True),
    },
    run=run,
    requires=(fashion_cnn.NAME,),
    produces=(wae_fashion.NAME,),
    quick_seconds=120.0,
    flagship=True,
)
