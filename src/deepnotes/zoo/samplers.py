"""Every image generator of the zoo behind one interface, for chapter 8's FID table.

``load_sampler(name, tier)`` returns ``(sample, artifact)`` where ``sample(n, generator)``
draws ``n`` Fashion-MNIST-like images as uint8 ``(n, 28, 28)`` — the test images' own format,
so every model is scored by the same quantization — from the model's own prior, with the
noise drawn on the CPU from ``generator``. Each entry knows how its model samples:

* ``vae-fashion``: Bernoulli means ``sigmoid(decode(z))``, ``z ~ N(0, I)`` (notes 7.6);
* ``wae-fashion``: the same from the WAE-MMD's decoder;
* ``dcgan-fashion`` / ``lsgan-fashion``: ``G(z)`` in eval mode, tanh output mapped to [0, 255];
* ``cgan-fashion``: the same with the requested classes cycling 0..9, so that every class is
  asked for equally often (the unconditional marginal of a balanced dataset);
* ``wgan-gp-fashion``: the WGAN-GP's DCGAN generator, like the GANs;
* ``glow-fashion``: the flow's samples at temperature 1 (the model's own density);
* ``glo-fashion`` / ``glann-fashion``: GLO's generator on codes from the Gaussian fitted to
  its training codes, and GLANN's noise -> code mapping followed by the same generator.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from deepnotes.autoencoders.vae import sample_images
from deepnotes.autoencoders.wae import decode_prior
from deepnotes.generative.dcgan import to_uint8
from deepnotes.zoo import (
    gan_fashion,
    glo_fashion,
    glow_fashion,
    vae_fashion,
    wae_fashion,
    wgan_fashion,
)
from deepnotes.zoo.artifacts import Artifact

Sampler = Callable[[int, torch.Generator], torch.Tensor]


def unit_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Grey levels in [0, 1], any shape with 784 pixels per image -> uint8 ``(N, 28, 28)``."""
    return (images.float().clamp(0, 1) * 255).round().to(torch.uint8).reshape(-1, 28, 28)


def _batched(draw: Callable[[int, torch.Generator], torch.Tensor], batch: int = 1000
             ) -> Sampler:
    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.cat([draw(min(batch, n - i), generator) for i in range(0, n, batch)])
    return sample


def _vae(tier: str) -> tuple[Sampler, Artifact]:
    model, artifact = vae_fashion.load(tier)
    return _batched(lambda n, g: unit_to_uint8(sample_images(model, n, generator=g))), artifact


def _wae(tier: str) -> tuple[Sampler, Artifact]:
    model, artifact = wae_fashion.load(tier)
    return _batched(lambda n, g: unit_to_uint8(decode_prior(model, n, generator=g))), artifact


def _gan(name: str, tier: str) -> tuple[Sampler, Artifact]:
    generator, artifact = gan_fashion.load(name, tier)
    conditional = generator.architecture["kwargs"].get("classes", 0) > 0
    latent = generator.architecture["kwargs"]["latent"]

    def draw(n: int, g: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, latent, generator=g)
        y = torch.arange(n) % 10 if conditional else None
        return to_uint8(gan_fashion.sample(generator, z, y)).reshape(-1, 28, 28)
    return _batched(draw), artifact


def _wgan(tier: str) -> tuple[Sampler, Artifact]:
    generator, artifact = wgan_fashion.load(tier)
    latent = generator.architecture["kwargs"]["latent"]

    def draw(n: int, g: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, latent, generator=g)
        return to_uint8(gan_fashion.sample(generator, z)).reshape(-1, 28, 28)
    return _batched(draw), artifact


def _glow(tier: str) -> tuple[Sampler, Artifact]:
    model, artifact = glow_fashion.load(tier)
    return (lambda n, g: unit_to_uint8(glow_fashion.sample(model, n, 1.0, g))), artifact


def _glo(name: str, tier: str) -> tuple[Sampler, Artifact]:
    model, artifact = glo_fashion.load(name, tier)
    return (lambda n, g: unit_to_uint8(glo_fashion.sample(model, n, g))), artifact


LOADERS: dict[str, Callable[[str], tuple[Sampler, Artifact]]] = {
    "vae-fashion": _vae,
    "wae-fashion": _wae,
    "dcgan-fashion": lambda tier: _gan("dcgan-fashion", tier),
    "lsgan-fashion": lambda tier: _gan("lsgan-fashion", tier),
    "cgan-fashion": lambda tier: _gan("cgan-fashion", tier),
    wgan_fashion.NAME: _wgan,
    glow_fashion.NAME: _glow,
    glo_fashion.NAMES["glo"]: lambda tier: _glo(glo_fashion.NAMES["glo"], tier),
    glo_fashion.NAMES["glann"]: lambda tier: _glo(glo_fashion.NAMES["glann"], tier),
}


def load_sampler(name: str, tier: str) -> tuple[Sampler, Artifact]:
    """``(sample, artifact)`` for zoo generator ``name`` at ``tier`` (see module docstring).

    Raises:
        ValueError: ``name`` is not an image generator of the zoo.
        MissingArtifact: it has not been trained at ``tier`` (the message says how to).
    """
    if name not in LOADERS:
        raise ValueError(f"{name!r} is not a zoo image generator; known: "
                         f"{', '.join(LOADERS)}")
    return LOADERS[name](tier)
