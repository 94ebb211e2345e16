"""A small DnCNN-style denoiser (Zhang et al. 2017) for Plug-and-Play and RED (notes 8.15),
and the patch sampler its training uses (the training loop, on the *training* photographs
only, is :func:`deepnotes.zoo.dncnn.train`).

The network takes the noisy image and a constant noise-level map (FFDNet's input; so one
network serves every σ and PnP can set its strength ``sqrt(β/λ)``), runs
conv-ReLU, ``depth − 2`` × conv-BN-ReLU, conv, and predicts the noise: ``D(y) = y − R(y, σ)``
(residual learning). Sized for 2 CPU cores (Intel Xeon, Sapphire Rapids class, AMX): width
24, depth 6 and 32×32 patches: about 22 ms per Adam step of batch 16 (2 threads).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


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
