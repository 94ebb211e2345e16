"""The Wasserstein auto-encoder of notes 7.3 (Tolstikhin et al., 2018).

A deterministic encoder ``z = E(x)`` and decoder ``x_hat = sigmoid(D(z))``, trained on

    c(x, x_hat) + lambda * penalty(Q_Z, P_Z),    c(x, x_hat) = ||x - x_hat||^2 (summed pixels)

where ``Q_Z`` is the **aggregate** posterior, the distribution of the codes of all images, and
``P_Z = N(0, sigma^2 I)`` the prior. The penalty compares distributions, not single codes:
unlike the VAE's per-image KL it never pulls each image's code towards 0, so the codes of
different images stay apart while their cloud fills the prior. Two penalties:

* **WAE-MMD:** :func:`deepnotes.metrics.distances.mmd_unbiased` between a batch of codes and
  as many prior draws, inverse multiquadratic kernel summed over the paper's scales ``C =
  2 d sigma^2 * s``, ``s in {0.1, 0.2, 0.5, 1, 2, 5, 10}`` (:func:`mmd_scales`);
* **WAE-GAN:** a latent discriminator :class:`LatentDiscriminator` learns to tell prior draws
  (label 1) from codes (label 0); the encoder minimizes the non-saturating loss
  ``-log D(E(x))`` (:func:`latent_discriminator_loss`,
  :func:`latent_encoder_penalty`).

``lambda = 0`` gives the plain (deterministic) auto-encoder with the same architecture.
The architecture is the VAE's of :mod:`deepnotes.autoencoders.vae` (MLP ``784 -> hidden ->
latent`` encoder, ``latent -> hidden -> 784`` logits decoder), with one code instead of a mean
and a log-variance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.metrics.distances import mmd_unbiased
from deepnotes.nn import MLP

MMD_SCALE_FACTORS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # Tolstikhin et al., section 4


def mmd_scales(latent: int, prior_std: float = 1.0) -> tuple[float, ...]:
    """The IMQ scales ``C = 2 d sigma^2 * s`` of the WAE paper for a ``d``-dim prior."""
    base = 2.0 * latent * prior_std ** 2
    return tuple(base * s for s in MMD_SCALE_FACTORS)


class WAE(nn.Module):
    """Deterministic auto-encoder on flattened images with a ``latent``-dim code.

    Shapes: ``x (N, input_dim)`` in [0, 1] -> ``(logits (N, input_dim), z (N, latent))``.
    """

    def __init__(self, input_dim: int = 784, hidden: int = 400, latent: int = 8) -> None:
        super().__init__()
        self.architecture_kwargs = {"input_dim": input_dim, "hidden": hidden, "latent": latent}
        self.latent = latent
        self.encoder = MLP([input_dim, hidden, latent], fused=True)
        self.decoder = MLP([latent, hidden, input_dim], fused=True)

    @property
    def architecture(self) -> dict:
        return {"class": f"{type(self).__module__}.{type(self).__name__}",
                "kwargs": dict(self.architecture_kwargs)}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of the pixel means; ``sigmoid`` gives the image."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z


class LatentDiscriminator(nn.Module):
    """WAE-GAN's adversary in the latent space: ``z (N, latent) -> logit (N,)``."""

    def __init__(self, latent: int = 8, hidden: int = 256) -> None:
        super().__init__()
        self.net = MLP([latent, hidden, hidden, 1])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(-1)


def squared_error(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``c(x, x_hat) = ||x - sigmoid(logits)||^2`` summed over pixels: ``(N,)``."""
    return (torch.sigmoid(logits.float()) - x).square().sum(-1)


def sample_prior(n: int, latent: int, generator: torch.Generator | None = None,
                 prior_std: float = 1.0, device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` draws of ``P_Z = N(0, prior_std^2 I)``, drawn on the generator's device (a run's
    named streams are CPU generators: the same draws on every device) and moved to
    ``device``."""
    where = generator.device if generator is not None else device
    return prior_std * torch.randn(n, latent, generator=generator, device=where).to(device)


def wae_mmd_penalty(z: torch.Tensor, z_prior: torch.Tensor, prior_std: float = 1.0
                    ) -> torch.Tensor:
    """Unbiased IMQ MMD^2 between a batch of codes and prior draws (summed paper scales)."""
    return mmd_unbiased(z.float(), z_prior.float(), mmd_scales(z.shape[-1], prior_std))


def latent_discriminator_loss(discriminator: nn.Module, z: torch.Tensor,
                              z_prior: torch.Tensor) -> torch.Tensor:
    """WAE-GAN's adversary loss, a batch mean: prior draws are real (1), codes fake (0);
    the codes are detached, so only the discriminator learns from it."""
    real, fake = discriminator(z_prior.float()), discriminator(z.detach().float())
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def latent_encoder_penalty(discriminator: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """WAE-GAN's encoder penalty, the non-saturating ``-log D(z) = softplus(-logit)``."""
    return F.softplus(-discriminator(z.float())).mean()


@torch.no_grad()
def decode_prior(model: WAE, n: int, generator: torch.Generator | None = None,
                 prior_std: float = 1.0) -> torch.Tensor:
    """``n`` images ``sigmoid(D(z))``, ``z ~ P_Z``: ``(n, input_dim)``."""
    model.eval()
    return torch.sigmoid(model.decode(sample_prior(n, model.latent, generator, prior_std)))


def mean_pairwise_distance(z: torch.Tensor) -> float:
    """Mean Euclidean distance between the codes of different samples (``i != j``)."""
    n = len(z)
    if n < 2:
        raise ValueError(f"mean_pairwise_distance needs >= 2 codes, got {n}")
    d = torch.cdist(z.double(), z.double())
    return float(d.sum() / (n * (n - 1)))
