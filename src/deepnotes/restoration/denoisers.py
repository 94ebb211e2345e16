"""A small DnCNN-style denoiser (Zhang et al. 2017) for Plug-and-Play and RED (notes 8.15),
and its training on Gaussian-noise patches of the *training* photographs only.

The network takes the noisy image and a constant noise-level map (FFDNet's input; so one
network serves every σ and PnP can set its strength ``sqrt(β/λ)``), runs
conv-ReLU, ``depth − 2`` × conv-BN-ReLU, conv, and predicts the noise: ``D(y) = y − R(y, σ)``
(residual learning). Sized for 2 CPU cores (Intel Xeon, Sapphire Rapids class, AMX): width
24, depth 6 and 32×32 patches: about 22 ms per Adam step of batch 16 (2 threads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.data.photos import TEST_PHOTOS, load_photo


class DnCNN(nn.Module):
    """``D(y, σ) = y − R([y, σ·1])``: residual learning with a noise-level input channel.

    Args:
        channels: image channels (1 for grey).
        features: width of the hidden convolutions.
        depth: number of 3×3 convolutions (>= 3).
    """

    def __init__(self, channels: int = 1, features: int = 24, depth: int = 6) -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"DnCNN needs depth >= 3, got {depth}")
        self.channels, self.features, self.depth = channels, features, depth
        layers: list[nn.Module] = [nn.Conv2d(channels + 1, features, 3, padding=1),
                                   nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False),
                       nn.BatchNorm2d(features), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    @property
    def architecture(self) -> dict[str, Any]:
        return {"class": "deepnotes.restoration.denoisers.DnCNN",
                "kwargs": {"channels": self.channels, "features": self.features,
                           "depth": self.depth}}

    def residual(self, noisy: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """The predicted noise ``R(y, σ)`` of ``(N, C, H, W)`` images; ``sigma`` a float or
        one value per image."""
        level = torch.as_tensor(sigma, dtype=noisy.dtype, device=noisy.device)
        level = level.reshape(-1, 1, 1, 1).expand(noisy.shape[0], 1, *noisy.shape[-2:])
        return self.body(torch.cat([noisy, level], dim=1))

    def forward(self, noisy: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        return noisy - self.residual(noisy, sigma)


def as_denoiser(model: DnCNN):
    """``denoise(image, sigma)`` for ``(C, H, W)`` or ``(H, W)`` float tensors with the
    model in eval mode: what :func:`deepnotes.restoration.admm.pnp_admm` plugs in. Computes
    in float32 and returns the input's dtype; keeps autograd (for Jacobian probes)."""
    model.eval()

    def denoise(image: torch.Tensor, sigma: float) -> torch.Tensor:
        shape, dtype = image.shape, image.dtype
        batch = image.reshape(1, model.channels, *shape[-2:]).float()
        return model(batch, float(sigma)).reshape(shape).to(dtype)

    return denoise


@dataclass(frozen=True)
class Recipe:
    """Architecture and training recipe (an experiment's config supplies it)."""

    features: int = 24
    depth: int = 6
    steps: int = 1200
    batch_size: int = 16
    patch: int = 32
    lr: float = 2e-3
    sigma_min: float = 1.0 / 255
    sigma_max: float = 40.0 / 255
    photos: tuple[str, ...] = ("chelsea", "rocket", "brick", "grass", "gravel", "moon",
                               "coins", "clock", "horse", "hubble_deep_field")
    log_every: int = 25


def training_images(photos: tuple[str, ...]) -> list[torch.Tensor]:
    """The grey training photographs ``(1, H, W)``; a test photo is refused."""
    leaked = sorted(set(photos) & set(TEST_PHOTOS))
    if leaked:
        raise ValueError(f"denoisers never train on test photos, got {leaked}")
    if not photos:
        raise ValueError("need at least one training photo")
    return [load_photo(name, grey=True, split="train") for name in photos]


def sample_patches(images: list[torch.Tensor], count: int, patch: int,
                   generator: torch.Generator) -> torch.Tensor:
    """``count`` random ``patch × patch`` crops, uniform over images then positions, with
    random flips and 90° rotations: ``(count, 1, patch, patch)``."""
    which = torch.randint(len(images), (count,), generator=generator)
    out = []
    for i in which.tolist():
        image = images[i]
        height, width = image.shape[-2:]
        top = int(torch.randint(height - patch + 1, (1,), generator=generator))
        left = int(torch.randint(width - patch + 1, (1,), generator=generator))
        crop = image[:, top:top + patch, left:left + patch]
        turns, flip = torch.randint(4, (2,), generator=generator).tolist()
        crop = torch.rot90(crop, turns, dims=(-2, -1))
        out.append(crop.flip(-1) if flip % 2 else crop)
    return torch.stack(out)


def train(ctx: Any, recipe: Recipe, phase: str = "train") -> DnCNN:
    """Train the DnCNN on Gaussian noise (σ uniform in [sigma_min, sigma_max]) over patches of
    ``recipe.photos`` (training photos only) with Adam and a cosine schedule; MSE on the
    predicted noise. Returns the model in eval mode."""
    images = training_images(recipe.photos)
    ctx.manual_seed(f"init-{phase}")
    model = DnCNN(1, recipe.features, recipe.depth)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, recipe.steps)
    track = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    model.train()
    for step in ctx.steps(recipe.steps, track=track, phase=phase, log_every=recipe.log_every):
        g = ctx.rng(f"patches-{phase}", step)
        clean = sample_patches(images, recipe.batch_size, recipe.patch, g)
        sigma = recipe.sigma_min + (recipe.sigma_max - recipe.sigma_min) * torch.rand(
            recipe.batch_size, generator=g)
        noise = torch.randn(clean.shape, generator=g) * sigma.reshape(-1, 1, 1, 1)
        loss = F.mse_loss(model.residual(clean + noise, sigma), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        ctx.log(step, phase=phase, loss=loss.item(),
                psnr=float(-10 * torch.log10(loss.detach().clamp_min(1e-12))))
    model.eval()
    return model
