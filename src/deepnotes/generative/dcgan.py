"""DCGAN for 28x28 images (notes 8.6; Radford et al. 2016), optionally class-conditional (8.10).

Generator: ``z (N, latent)`` -> a linear layer to ``(4w, 7, 7)`` maps, BatchNorm, ReLU ->
transposed convolution (kernel 4, stride 2, padding 1) to ``(2w, 14, 14)``, BatchNorm, ReLU ->
transposed convolution to ``(1, 28, 28)``, ``tanh``: images in [-1, 1]. Each stride-2
transposed convolution is the upsampling of notes 4 (chapter 4 reproduces the notes' 2x2
example); kernel 4 with stride 2 makes every output pixel receive the same number (4) of
kernel taps, the standard remedy for the checkerboard that kernel 3 with stride 2 leaves.

Discriminator: convolutions (kernel 4, stride 2) ``1 -> w -> 2w`` with LeakyReLU(0.2),
BatchNorm after the second, then one linear layer to a logit (no sigmoid: the losses of
:mod:`deepnotes.generative.gan` take logits; real = 1, fake = 0).

Conditional (``classes > 0``): the generator adds a learned class embedding to ``z``'s
projection (the class enters the first layer); the discriminator adds a projection term
``<embed(y), h>`` to its logit (Miyato & Koyama 2018), so the class reaches both networks.

:func:`ema_update` keeps an exponential moving average of the generator's parameters
(buffers, i.e. BatchNorm statistics, are copied), the usual way to sample a steadier G.
"""

from __future__ import annotations

import torch
from torch import nn


class DCGANGenerator(nn.Module):
    """``z (N, latent)`` [and classes ``y (N,)``] -> images ``(N, 1, 28, 28)`` in [-1, 1]."""

    def __init__(self, latent: int = 64, width: int = 32, classes: int = 0) -> None:
        super().__init__()
        if latent < 1 or width < 1 or classes < 0:
            raise ValueError(f"need latent >= 1, width >= 1, classes >= 0; got {latent}, "
                             f"{width}, {classes}")
        self.architecture_kwargs = {"latent": latent, "width": width, "classes": classes}
        self.latent, self.width, self.classes = latent, width, classes
        self.project = nn.Linear(latent, 4 * width * 7 * 7, bias=False)
        self.embed = nn.Embedding(classes, 4 * width * 7 * 7) if classes else None
        self.net = nn.Sequential(
            nn.BatchNorm2d(4 * width), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(4 * width, 2 * width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * width, 1, 4, stride=2, padding=1), nn.Tanh())

    @property
    def architecture(self) -> dict:
        return {"class": f"{type(self).__module__}.{type(self).__name__}",
                "kwargs": dict(self.architecture_kwargs)}

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent:
            raise ValueError(f"expected z of shape (N, {self.latent}), got {tuple(z.shape)}")
        h = self.project(z)
        if self.embed is not None:
            if y is None:
                raise ValueError("a conditional generator needs the classes y (N,)")
            h = h + self.embed(y)
        return self.net(h.view(len(z), 4 * self.width, 7, 7))


class DCGANDiscriminator(nn.Module):
    """Images ``(N, 1, 28, 28)`` in [-1, 1] [and classes ``y``] -> logits ``(N,)``."""

    def __init__(self, width: int = 32, classes: int = 0) -> None:
        super().__init__()
        self.architecture_kwargs = {"width": width, "classes": classes}
        self.classes = classes
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2, inplace=True), nn.Flatten())
        self.out = nn.Linear(2 * width * 7 * 7, 1)
        self.embed = nn.Embedding(classes, 2 * width * 7 * 7) if classes else None

    @property
    def architecture(self) -> dict:
        return {"class": f"{type(self).__module__}.{type(self).__name__}",
                "kwargs": dict(self.architecture_kwargs)}

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"expected images (N, 1, 28, 28), got {tuple(x.shape)}")
        h = self.features(x)
        logit = self.out(h).squeeze(-1)
        if self.embed is not None:
            if y is None:
                raise ValueError("a conditional discriminator needs the classes y (N,)")
            logit = logit + (self.embed(y) * h).sum(-1)
        return logit


@torch.no_grad()
def ema_update(average: nn.Module, model: nn.Module, decay: float) -> None:
    """``average <- decay * average + (1 - decay) * model`` for parameters; buffers copied."""
    if not 0 <= decay < 1:
        raise ValueError(f"decay must be in [0, 1), got {decay}")
    for a, p in zip(average.parameters(), model.parameters(), strict=True):
        a.lerp_(p, 1 - decay)
    for a, b in zip(average.buffers(), model.buffers(), strict=True):
        a.copy_(b)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1], ``(N, 1, 28, 28)`` -> uint8 ``(N, 28, 28)``."""
    return ((images.float().squeeze(1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` -> float ``(N, 1, 28, 28)`` in [-1, 1]."""
    return images.float().div(127.5).sub(1).unsqueeze(1)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between two latent vectors ``(latent,)`` at times ``t (T,)``:
    ``(T, latent)``. Falls back to linear where the vectors are (anti)parallel."""
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1, 1))
    t = t[:, None]
    if float(omega.sin().abs()) < 1e-6:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / omega.sin()
