"""Data augmentation of image batches (notes sec. 2.6.2: crop, flip, Gaussian noise).

Each op takes a whole batch ``(N, H, W)`` or ``(N, C, H, W)``, ``uint8`` (0..255) or float,
draws one random choice per image from the given ``torch.Generator`` (on the CPU, so results
do not depend on the device), and is vectorized over the batch: no per-image Python loop.
The output has the input's shape, dtype and device.
"""

from __future__ import annotations

import torch


def _check_images(x: torch.Tensor, name: str) -> None:
    if x.dim() not in (3, 4):
        raise ValueError(f"{name} expects images (N, H, W) or (N, C, H, W), got "
                         f"{tuple(x.shape)}")
    if not (x.dtype == torch.uint8 or x.is_floating_point()):
        raise ValueError(f"{name} expects uint8 or float images, got {x.dtype}")


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad each side by ``padding`` and cut a random ``H x W`` window per image.

    Equivalent to a random translation by up to ``padding`` pixels in each direction, with
    the uncovered border filled with 0.

    Args:
        x: ``(N, H, W)`` or ``(N, C, H, W)`` images.
        padding: pixels added on every side (>= 0).
        generator: CPU generator for the offsets.
    Returns:
        images of ``x``'s shape.
    """
    _check_images(x, "random_crop")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if padding == 0:
        return x
    squeeze = x.dim() == 3
    images = x[:, None] if squeeze else x  # (N, C, H, W)
    n, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    # One offset per image in [0, 2 * padding]: the window's top-left corner in the padded image.
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator).to(x.device)
    rows = offsets[0][:, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = offsets[1][:, None] + torch.arange(w, device=x.device)  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    out = padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]  # (N, C, H, W)
    return out[:, 0] if squeeze else out


def horizontal_flip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5
                    ) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``.

    Args:
        x: ``(N, H, W)`` or ``(N, C, H, W)`` images.
        generator: CPU generator for the coin flips.
        p: flip probability.
    """
    _check_images(x, "horizontal_flip")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    flip = (torch.rand(x.shape[0], generator=generator) < p).to(x.device)  # (N,)
    mask = flip.view(-1, *([1] * (x.dim() - 1)))
    return torch.where(mask, x.flip(-1), x)


def gaussian_noise(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Add i.i.d. ``N(0, std^2)`` noise to every pixel.

    ``std`` is in units of the image's full range: for float images added as is (no clipping,
    since inputs may already be normalized); for ``uint8`` images the noise is ``255 * std``
    and the result is rounded and clipped to ``0..255``.

    Args:
        x: ``(N, H, W)`` or ``(N, C, H, W)`` images.
        std: noise standard deviation (>= 0).
        generator: CPU generator for the noise.
    """
    _check_images(x, "gaussian_noise")
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    if std == 0:
        return x
    noise = torch.randn(x.shape, generator=generator).to(x.device)  # (x.shape), float32
    if x.dtype == torch.uint8:
        return (x.float() + 255.0 * std * noise).round().clamp(0, 255).to(torch.uint8)
    return x + std * noise.to(x.dtype)


__all__ = ["random_crop", "horizontal_flip", "gaussian_noise"]
