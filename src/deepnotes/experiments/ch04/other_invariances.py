"""Invariance by normalization layers (notes sec. 4.3): LRN, the circle, the simplex.

1. Brightness: a bias-free convolution is linear, so a darker image ``a x`` gives responses
   ``a R``. Local response normalization ``R_c / (k + alpha/n sum_window R^2)^beta`` with
   ``beta = 1/2``, ``alpha = n`` and ``k -> 0`` divides by the local response energy and
   cancels ``a``: the normalized features of Fashion-MNIST test images at brightness
   ``a in {0.25, 0.5, 2}`` match those at ``a = 1`` (relative change below 1e-3; the change
   grows with ``k``, reported for a sweep of ``k``), while the raw
   responses change by ``|a - 1|``, and AlexNet's setting (k = 2, alpha = 1e-4, beta = 0.75)
   barely normalizes at all. Our LRN equals ``torch.nn.LocalResponseNorm`` on these images.
2. ``v / ||v||`` puts every output on the unit circle and maps each ray to one point.
3. Softmax lands in the open simplex and ignores added constants; it is a smooth map onto the
   simplex, not the Euclidean projection (which is idempotent; softmax is not).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from deepnotes.conv import local_response_norm, normalize_to_circle, project_to_simplex
from deepnotes.data import load_fashion_mnist
from deepnotes.experiments.base import Claim, Result, experiment

BRIGHTNESS = (0.25, 0.5, 2.0)
INVARIANCE_TOLERANCE = 1e-3  # relative feature change allowed for "invariant"
PARITY_TOLERANCE = 1e-10  # float64 agreement with torch
ROUNDOFF = 1e-12  # float64 identities (circle, softmax shift)


@dataclass(frozen=True)
class Config:
    images: int = 256
    filters: int = 16
    kernel_size: int = 5
    lrn_size: int = 5
    k: float = 1e-12  # LRN's additive constant for the energy normalization (k -> 0)
    k_sweep: tuple[float, ...] = (1.0, 1e-4, 1e-8, 1e-12)
    vectors: int = 10000
    threads: int = 0  # intra-op threads; 0 = the runner's choice


def _lrn_study(cfg: Config, ctx) -> dict:

    images, _ = load_fashion_mnist("test")
    x = images[:cfg.images].double().div(255).unsqueeze(1)  # (N, 1, 28, 28) in [0, 1]
    gen = ctx.rng("lrn-filters")
    bank = torch.randn(cfg.filters, 1, cfg.kernel_size, cfg.kernel_size, generator=gen,
                       dtype=torch.float64)  # any bias-free linear filter bank

    def responses(a: float) -> torch.Tensor:
        return F.conv2d(a * x, bank, padding=cfg.kernel_size // 2)  # (N, C, 28, 28)

    def energy_lrn(r):  # beta = 1/2, alpha = n: divide by the local RMS energy
        return local_response_norm(r, cfg.lrn_size, alpha=cfg.lrn_size, beta=0.5, k=cfg.k)

    def alexnet_lrn(r):
        return local_response_norm(r, cfg.lrn_size, alpha=1e-4, beta=0.75, k=2.0)

    def change(a_out, b_out):
        return ((a_out - b_out).norm() / b_out.norm()).item()

    ref = responses(1.0)
    rows = {}
    for a in BRIGHTNESS:
        r = responses(a)
        rows[a] = {"raw": change(r, ref), "alexnet_lrn": change(alexnet_lrn(r), alexnet_lrn(ref)),
                   "energy_lrn": change(energy_lrn(r), energy_lrn(ref))}
    # The role of k: invariance is exact only as k -> 0 (dim responses feel k first).
    darkest = responses(BRIGHTNESS[0])
    sweep = {k: change(local_response_norm(darkest, cfg.lrn_size, cfg.lrn_size, 0.5, k),
                       local_response_norm(ref, cfg.lrn_size, cfg.lrn_size, 0.5, k))
             for k in cfg.k_sweep}
    parity = max(
        (local_response_norm(ref, n, al, be, kk)
         - torch.nn.LocalResponseNorm(n, al, be, kk)(ref)).abs().max().item()
        for n, al, be, kk in ((cfg.lrn_size, 1e-4, 0.75, 2.0),
                              (cfg.lrn_size, cfg.lrn_size, 0.5, cfg.k), (3, 0.5, 0.6, 1.0)))
    example = (x[0, 0], responses(BRIGHTNESS[0])[0, 0], energy_lrn(ref)[0, 0],
               energy_lrn(responses(BRIGHTNESS[0]))[0, 0])
    return {"rows": rows, "parity": parity, "example": example, "sweep": sweep}


def _output_maps(cfg: Config, ctx) -> dict[str, float]:
    gen = ctx.rng("vectors")
    v = 5 * torch.randn(cfg.vectors, 2, dtype=torch.float64, generator=gen)
    scale = torch.rand(cfg.vectors, 1, dtype=torch.float64, generator=gen) * 100 + 1e-3
    on_circle = normalize_to_circle(v)
    logits = 3 * torch.randn(cfg.vectors, 10, dtype=torch.float64, generator=gen)
    shift = 10 * torch.randn(cfg.vectors, 1, dtype=torch.float64, generator=gen)
    p = torch.softmax(logits, -1)
    q = project_to_simplex(logits)
    return {
        "circle_radius_error": (on_circle.norm(dim=1) - 1).abs().max().item(),
        "circle_ray_error": (normalize_to_circle(scale * v) - on_circle).abs().max().item(),
        "softmax_sum_error": (p.sum(-1) - 1).abs().max().item(),
        "softmax_min": p.min().item(),
        "softmax_shift_error": (torch.softmax(logits + shift, -1) - p).abs().max().item(),
        "softmax_idempotence_gap": (torch.softmax(p, -1) - p).abs().max(-1).values.mean().item(),
        "projection_idempotence_gap": (project_to_simplex(q) - q).abs().max().item(),
        "softmax_vs_projection": (p - q).abs().max(-1).values.mean().item(),
    }


def _figure(ctx, study) -> None:
    image, dark_response, lrn_bright, lrn_dark = (t.numpy() for t in study["example"])
    fig = Figure(figsize=(13, 3.2))
    axes = fig.subplots(1, 5)
    axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("image (brightness 1)")
    axes[1].imshow(dark_response, cmap="coolwarm")
    axes[1].set_title(f"raw response, brightness {BRIGHTNESS[0]}")
    axes[2].imshow(lrn_bright, cmap="coolwarm")
    axes[2].set_title("LRN response, brightness 1")
    axes[3].imshow(lrn_dark, cmap="coolwarm")
    axes[3].set_title(f"LRN response, brightness {BRIGHTNESS[0]}")
    for ax in axes[:4]:
        ax.axis("off")
    kinds = ("raw", "alexnet_lrn", "energy_lrn")
    width = 0.25
    for i, kind in enumerate(kinds):
        axes[4].bar([j + i * width for j in range(len(BRIGHTNESS))],
                    [max(study["rows"][a][kind], 1e-17) for a in BRIGHTNESS], width, label=kind)
    axes[4].set_xticks([j + width for j in range(len(BRIGHTNESS))],
                       [f"a={a}" for a in BRIGHTNESS])
    axes[4].set_yscale("log")
    axes[4].set_title("relative feature change")
    axes[4].legend(fontsize=7)
    ctx.figure(fig, "lrn_brightness")


def run(cfg: Config, ctx) -> Result:
    study = _lrn_study(cfg, ctx)
    maps = _output_maps(cfg, ctx)
    _figure(ctx, study)
    rows = study["rows"]
    metrics = {f"{kind}_change_a{a}": rows[a][kind] for a in BRIGHTNESS for kind in rows[a]}
    metrics["lrn_parity_max_error"] = study["parity"]
    metrics.update({f"energy_lrn_change_a{BRIGHTNESS[0]}_k{k:g}": v
                    for k, v in study["sweep"].items()})
    metrics.update(maps)
    worst_lrn = max(rows[a]["energy_lrn"] for a in BRIGHTNESS)
    return Result(
        metrics=metrics,
        claims=[
            Claim("lrn_brightness_invariance", "Energy-normalizing LRN (beta = 1/2, small k) "
                  "makes conv features of Fashion-MNIST images invariant to brightness "
                  "(max relative change over a in {0.25, 0.5, 2}).", worst_lrn, "<=",
                  INVARIANCE_TOLERANCE),
            Claim("raw_features_change", "Without normalization the same features change by "
                  "|a - 1| (relative change at a = 0.5).", rows[0.5]["raw"], ">=", 0.5 - 1e-9),
            Claim("lrn_parity", "Our LRN equals torch.nn.LocalResponseNorm on these features "
                  "(max abs difference, float64).", study["parity"], "<=", PARITY_TOLERANCE),
            Claim("circle_ray_invariance", "v / ||v|| maps every point of a ray to one point of "
                  "the unit circle (max error).", max(maps["circle_ray_error"],
                                                      maps["circle_radius_error"]), "<=",
                  ROUNDOFF),
            Claim("softmax_on_simplex", "Softmax outputs are positive, sum to one and ignore "
                  "added constants (max error).", max(maps["softmax_sum_error"],
                                                      maps["softmax_shift_error"]), "<=",
                  ROUNDOFF),
        ]
    )


EXPERIMENT = experiment(
    name="other-invariances",
    sections=("4.3",),
    claim="Normalization layers buy invariances: LRN cancels brightness, v/||v|| cancels scale, "
          "softmax cancels additive shifts.",
    presets={
        "smoke": Config(images=32, vectors=500, threads=1),
        "quick": Config(),
        "full": Config(images=10000, vectors=100000),
    },
    run=run,
    quick_seconds=5.0,
)
