"""CycleGAN: unpaired image-to-image translation (notes 8.8; Zhu et al. 2017), sized for 28x28
single-channel images.

Two generators ``G: X -> Y`` and ``F: Y -> X``, two discriminators ``D_X`` (real x against
``F(y)``) and ``D_Y`` (real y against ``G(x)``). With real = 1 and fake = 0, as everywhere in
deepnotes, the generators' objective (both minimize it, one optimizer over both) is::

    L_gen = adv(D_Y(G(x))) + adv(D_X(F(y)))
            + alpha * (||F(G(x)) - x||_1 + ||G(F(y)) - y||_1)            (cycle consistency)
            + identity * alpha * (||G(y) - y||_1 + ||F(x) - x||_1)      (optional)

where ``adv`` is a generator loss of :mod:`deepnotes.generative.gan` that *rises* as D calls
the fake fake: least squares ``(D(.) - 1)^2`` (the paper's choice) or the non-saturating
``-log D(.)``. The notes write ``Loss[G] = D_Y(G(X)) + alpha ||F(G(X)) - X||``; minimizing
``D_Y(G(X))`` itself, with ``D_Y`` the probability of "real", would teach G to be recognized
as fake (docs/ERRATA.md, 8.8; ``tests/generative/test_cyclegan.py`` decides it by the
gradient). The paper's alpha is 10, its identity weight 0.5 (of alpha), its L1 norm
per pixel (a mean here).

Discriminators see the current real batch and fakes drawn from an :class:`ImagePool`, a
history of earlier generator outputs (50 images in the paper, after Shrivastava et al. 2017),
which damps the oscillation of the game. Each discriminator loss is halved, as in the paper,
so D learns at half G's rate.

Learning rates: constant, then a linear decay to 0 (:class:`LinearDecay`, the paper's 100 +
100 epochs in step units).

Networks (per 28x28 image, all convolutional, InstanceNorm as in the paper):
:class:`CycleGenerator` is a 7x7 conv to ``width`` maps, a stride-2 conv to ``2 width`` maps at
14x14, ``blocks`` residual blocks there, back to 28x28 by a stride-2 transposed conv (the
paper's) or by nearest-neighbour upsampling and a 3x3 conv (``upsample="nearest"``, free of
the transposed conv's checkerboard, Odena et al. 2016), and a 7x7 conv to one channel with
tanh (images in [-1, 1]). :class:`PatchDiscriminator` is a PatchGAN:
two stride-2 4x4 convs (28 -> 14 -> 7) and a 3x3 conv to one raw output per 7x7 patch (each
patch sees a 22x22 receptive field), no sigmoid (the losses take raw outputs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from deepnotes.generative.gan import GANLoss, gan_loss

# ----------------------------------------------------------------- networks


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", bias=False),
            nn.InstanceNorm2d(channels, affine=True), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", bias=False),
            nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _check_images(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
        raise ValueError(f"expected images (N, 1, 28, 28), got {tuple(x.shape)}")


class CycleGenerator(nn.Module):
    """Images ``(N, 1, 28, 28)`` in [-1, 1] -> images of the other domain, same shape, tanh."""

    def __init__(self, width: int = 16, blocks: int = 3, upsample: str = "transpose") -> None:
        super().__init__()
        if width < 1 or blocks < 0 or upsample not in ("transpose", "nearest"):
            raise ValueError(f"need width >= 1, blocks >= 0, upsample 'transpose' or 'nearest'; "
                             f"got {width}, {blocks}, {upsample!r}")
        self.architecture_kwargs = {"width": width, "blocks": blocks, "upsample": upsample}
        w = width
        up = (nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1, bias=False)
              if upsample == "transpose" else
              nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                            nn.Conv2d(2 * w, w, 3, padding=1, padding_mode="reflect",
                                      bias=False)))
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 7, padding=3, padding_mode="reflect", bias=False),
            nn.InstanceNorm2d(w, affine=True), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(2 * w, affine=True), nn.ReLU(inplace=True),
            *[_Residual(2 * w) for _ in range(blocks)],
            up, nn.InstanceNorm2d(w, affine=True), nn.ReLU(inplace=True),
            nn.Conv2d(w, 1, 7, padding=3, padding_mode="reflect"), nn.Tanh())

    @property
    def architecture(self) -> dict:
        return {"class": f"{type(self).__module__}.{type(self).__name__}",
                "kwargs": dict(self.architecture_kwargs)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x)
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """Images ``(N, 1, 28, 28)`` -> raw outputs ``(N, 1, 7, 7)``, one per overlapping patch."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"need width >= 1, got {width}")
        self.architecture_kwargs = {"width": width}
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(2 * width, affine=True), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * width, 1, 3, padding=1))

    @property
    def architecture(self) -> dict:
        return {"class": f"{type(self).__module__}.{type(self).__name__}",
                "kwargs": dict(self.architecture_kwargs)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x)
        return self.net(x)


# ----------------------------------------------------------------- image pool


class ImagePool:
    """A history buffer of generated images (Shrivastava et al. 2017; CycleGAN's 50).

    :meth:`query` takes a batch of fakes and returns a batch of the same size for the
    discriminator. Until the pool holds ``size`` images every incoming image is stored and
    returned as it is. Once full, each incoming image, independently with probability 1/2,
    either replaces a uniformly chosen stored image, which is returned in its place, or is
    returned as it is (the pool unchanged). ``size = 0`` returns every batch unchanged.

    The pool's randomness comes from its own ``torch.Generator`` (``generator``; default a new
    one seeded with 0), one uniform draw per incoming image once the pool is full and one
    index draw per swap;
    :meth:`state_dict` holds the stored images, their count and the generator's state, so a
    restored pool answers every later query exactly as the original would. Stored images are
    detached float32 copies on the device of the first query.
    """

    def __init__(self, size: int = 50, generator: torch.Generator | None = None) -> None:
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        self.size = int(size)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.images: torch.Tensor | None = None  # (size, ...) once the first query arrives
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """The batch the discriminator sees, ``images``' shape and dtype (see class doc)."""
        images = images.detach()
        if self.size == 0:
            return images
        if self.images is None:
            self.images = torch.zeros((self.size, *images.shape[1:]), dtype=torch.float32,
                                      device=images.device)
        elif self.images.shape[1:] != images.shape[1:]:
            raise ValueError(f"pool holds images {tuple(self.images.shape[1:])}, got "
                             f"{tuple(images.shape[1:])}")
        out = []
        for image in images:
            if self.count < self.size:
                self.images[self.count] = image.float()
                self.count += 1
                out.append(image)
            elif float(torch.rand((), generator=self.generator)) < 0.5:
                index = int(torch.randint(self.size, (), generator=self.generator))
                old = self.images[index].clone()
                self.images[index] = image.float()
                out.append(old.to(images.dtype))
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        images = self.images[:self.count].cpu().clone() if self.images is not None else None
        return {"size": self.size, "count": self.count, "images": images,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if int(state["size"]) != self.size:
            raise ValueError(f"pool of size {self.size} cannot load a pool of size "
                             f"{state['size']}")
        self.count = int(state["count"])
        self.generator.set_state(state["generator"])
        stored = state["images"]
        if stored is None:
            self.images = None
            return
        device = self.images.device if self.images is not None else stored.device
        self.images = torch.zeros((self.size, *stored.shape[1:]), dtype=torch.float32,
                                  device=device)
        self.images[:self.count] = stored.to(device)


# ----------------------------------------------------------------- shape


def silhouette(images: torch.Tensor, threshold: int = 25) -> torch.Tensor:
    """The item's silhouette: pixels ``>= threshold`` of uint8 images ``(N, H, W)``, holes
    (dark regions enclosed by the item) filled; bool ``(N, H, W)``."""
    if images.dtype != torch.uint8 or images.ndim != 3:
        raise ValueError(f"expected uint8 images (N, H, W), got {images.dtype} "
                         f"{tuple(images.shape)}")
    masks = (images >= threshold).cpu().numpy()
    return torch.from_numpy(np.stack([ndimage.binary_fill_holes(m) for m in masks])
                            if len(masks) else masks)


def silhouette_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of bool masks ``(N, H, W)``, per pair ``(N,)`` (1 where both
    are empty)."""
    if a.shape != b.shape or a.dtype != torch.bool or b.dtype != torch.bool:
        raise ValueError(f"expected two bool masks of one shape, got {a.dtype} "
                         f"{tuple(a.shape)} and {b.dtype} {tuple(b.shape)}")
    inter = (a & b).flatten(1).sum(1).double()
    union = (a | b).flatten(1).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


# ----------------------------------------------------------------- schedule


class LinearDecay:
    """Learning-rate factor for ``LambdaLR``: 1 for ``constant`` steps, then linear to 0 over
    ``decay`` steps: ``1 - max(0, step - constant) / (decay + 1)``, the paper's rule (there in
    epochs; 100 + 100). A plain object, so ``LambdaLR.state_dict()`` records it."""

    def __init__(self, constant: int, decay: int) -> None:
        if constant < 0 or decay < 0:
            raise ValueError(f"need constant >= 0 and decay >= 0; got {constant}, {decay}")
        self.constant, self.decay = int(constant), int(decay)

    def __call__(self, step: int) -> float:
        return 1.0 - max(0, step - self.constant) / (self.decay + 1)


# ----------------------------------------------------------------- losses


def cycle_loss(reconstruction: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Cycle-consistency ``||F(G(x)) - x||_1`` as the mean absolute error per pixel."""
    if reconstruction.shape != original.shape:
        raise ValueError(f"shapes differ: {tuple(reconstruction.shape)} and "
                         f"{tuple(original.shape)}")
    return (reconstruction - original).abs().mean()


class CycleLosses(NamedTuple):
    """The generators' objective and its parts (tensors; ``total`` is minimized)."""

    total: torch.Tensor
    adversarial_g: torch.Tensor  # adv(D_Y(G(x)))
    adversarial_f: torch.Tensor  # adv(D_X(F(y)))
    cycle_x: torch.Tensor  # ||F(G(x)) - x||_1
    cycle_y: torch.Tensor  # ||G(F(y)) - y||_1
    identity: torch.Tensor  # ||G(y) - y||_1 + ||F(x) - x||_1 (0 when switched off)
    fake_y: torch.Tensor  # G(x), for the pool of D_Y
    fake_x: torch.Tensor  # F(y), for the pool of D_X


@dataclass(frozen=True)
class CycleObjective:
    """The CycleGAN objective: ``loss`` names a :mod:`deepnotes.generative.gan` loss
    (``"least-squares"``, the paper's; or ``"non-saturating"``), ``alpha`` the cycle weight,
    ``identity`` the identity weight as a fraction of ``alpha`` (0: no identity loss)."""

    loss: str = "least-squares"
    alpha: float = 10.0
    identity: float = 0.5

    def __post_init__(self) -> None:
        gan_loss(self.loss)  # a known name
        if self.alpha < 0 or self.identity < 0:
            raise ValueError(f"need alpha >= 0 and identity >= 0; got {self.alpha}, "
                             f"{self.identity}")

    @property
    def gan(self) -> GANLoss:
        return gan_loss(self.loss)

    def generators(self, g: Callable, f: Callable, d_x: Callable, d_y: Callable,
                   x: torch.Tensor, y: torch.Tensor) -> CycleLosses:
        """The generators' losses on a batch ``x`` of domain X and ``y`` of domain Y."""
        fake_y, fake_x = g(x), f(y)
        adv_g = self.gan.generator(d_y(fake_y).float())
        adv_f = self.gan.generator(d_x(fake_x).float())
        cyc_x, cyc_y = cycle_loss(f(fake_y).float(), x), cycle_loss(g(fake_x).float(), y)
        total = adv_g + adv_f + self.alpha * (cyc_x + cyc_y)
        if self.identity > 0:
            ident = cycle_loss(g(y).float(), y) + cycle_loss(f(x).float(), x)
            total = total + self.identity * self.alpha * ident
        else:
            ident = torch.zeros((), device=x.device)
        return CycleLosses(total, adv_g, adv_f, cyc_x, cyc_y, ident, fake_y, fake_x)

    def discriminator(self, d: Callable, real: torch.Tensor, fake: torch.Tensor
                      ) -> torch.Tensor:
        """One discriminator's loss on real images and (pooled, detached) fakes, halved."""
        return 0.5 * self.gan.discriminator(d(real).float(), d(fake.detach()).float())


__all__ = [
    "CycleGenerator", "CycleLosses", "CycleObjective", "ImagePool", "LinearDecay",
    "PatchDiscriminator", "cycle_loss", "silhouette", "silhouette_iou",
]
