"""Generative adversarial networks: the losses, one alternating training step, small MLP
networks for 1-D/2-D data, and the optimal discriminator on known densities (notes 8.6-8.7.1).

The game (notes 8.6; Goodfellow et al. 2014), with ``D(x) = sigmoid(l(x))`` the probability
that ``x`` is real (real = 1, fake = 0, everywhere in deepnotes)::

    min_G max_D V(D, G) = E_{p_data} log D(x) + E_{p_z} log(1 - D(G(z)))

Every loss takes the discriminator's raw last-layer output ``l`` (a logit, any shape, e.g.
``(N, 1)`` from an MLP or a DCGAN), never ``sigmoid(l)``: ``log D = -softplus(-l)`` and
``log(1 - D) = -softplus(l)`` stay finite where a saturated sigmoid would give ``log 0``.

* Discriminator (all three but LSGAN): the binary cross-entropy with targets real = 1,
  fake = 0, ``E softplus(-l_real) + E softplus(l_fake) = -V``; D *minimizes* it.
* Generator, minimax: ``E log(1 - D(G(z))) = -E softplus(l)``; ``dL/dl = -D``, which
  vanishes as ``D(G(z)) -> 0`` (saturation, notes 8.7.1).
* Generator, non-saturating (Goodfellow et al. 2014, sec. 3): ``-E log D(G(z)) =
  E softplus(-l)``; ``dL/dl = -(1 - D)``, which tends to ``-1``. Same fixed point.
* Least squares (notes 8.7.1; Mao et al. 2017, LSGAN with a = 0, b = c = 1), ``l`` is
  ``D_linear`` with no sigmoid: D minimizes ``E (l_real - 1)^2 + E l_fake^2``, G minimizes
  ``E (l_fake - 1)^2``.

For a fixed G the best discriminator is ``D* = p_data / (p_data + p_g)`` (notes Cor. 8.6.1) and
``V(D*, G) = 2 JSD(p_g || p_data) - log 4`` (Cor. 8.6.2): :func:`optimal_discriminator`,
:func:`optimal_discriminator_logit`, :func:`value_by_quadrature`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.nn import MLP

# ----------------------------------------------------------------- losses


def discriminator_bce(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """``-V(D, G)`` estimated on a batch: BCE with real = 1, fake = 0 (D minimizes it).

    Args:
        real_logit: D's logits on real samples, any shape.
        fake_logit: D's logits on generated samples, any shape.
    Returns:
        scalar ``mean softplus(-l_real) + mean softplus(l_fake)``.
    """
    return F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()


def minimax_generator_loss(fake_logit: torch.Tensor) -> torch.Tensor:
    """The game's own generator loss ``E log(1 - D(G(z))) = -E softplus(l)`` (G minimizes)."""
    return -F.softplus(fake_logit).mean()


def non_saturating_generator_loss(fake_logit: torch.Tensor) -> torch.Tensor:
    """``-E log D(G(z)) = E softplus(-l)``: BCE of the fakes against the *real* label."""
    return F.softplus(-fake_logit).mean()


def least_squares_discriminator_loss(real_out: torch.Tensor, fake_out: torch.Tensor
                                     ) -> torch.Tensor:
    """Notes 8.7.1: ``E (D_linear(x) - 1)^2 + E (D_linear(G(z)) - 0)^2`` (D minimizes it)."""
    return (real_out - 1).pow(2).mean() + fake_out.pow(2).mean()


def least_squares_generator_loss(fake_out: torch.Tensor) -> torch.Tensor:
    """LSGAN's generator loss ``E (D_linear(G(z)) - 1)^2`` (Mao et al. 2017, c = 1)."""
    return (fake_out - 1).pow(2).mean()


@dataclass(frozen=True)
class GANLoss:
    """A discriminator loss and a generator loss that play one game; both are minimized.

    Attributes:
        name: ``"minimax"``, ``"non-saturating"`` or ``"least-squares"``.
        discriminator: ``(real_out, fake_out) -> scalar``.
        generator: ``fake_out -> scalar``.
    """

    name: str
    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    generator: Callable[[torch.Tensor], torch.Tensor]


MINIMAX = GANLoss("minimax", discriminator_bce, minimax_generator_loss)
NON_SATURATING = GANLoss("non-saturating", discriminator_bce, non_saturating_generator_loss)
LEAST_SQUARES = GANLoss("least-squares", least_squares_discriminator_loss,
                        least_squares_generator_loss)
LOSSES = {loss.name: loss for loss in (MINIMAX, NON_SATURATING, LEAST_SQUARES)}


def gan_loss(name: str) -> GANLoss:
    """The :class:`GANLoss` called ``name`` (for configs that name their loss)."""
    if name not in LOSSES:
        raise ValueError(f"unknown GAN loss {name!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[name]


# ----------------------------------------------------------------- networks


def mlp_generator(latent_dim: int, out_features: int, hidden: Sequence[int] = (128, 128),
                  fused: bool = True) -> MLP:
    """``G: R^latent_dim -> R^out_features``, ReLU hidden layers, linear output."""
    return MLP([latent_dim, *hidden, out_features], activation="relu", fused=fused)


def mlp_discriminator(in_features: int, hidden: Sequence[int] = (128, 128),
                      fused: bool = True) -> MLP:
    """``D: R^in_features -> R`` returning a logit (shape ``(N, 1)``): no sigmoid, no softmax
    (a softmax over one output is identically 1, see docs/ERRATA.md, 8.7.1)."""
    return MLP([in_features, *hidden, 1], activation="relu", fused=fused)


class GAN(nn.Module):
    """A generator, a discriminator and the game they play.

    Args:
        generator: ``(N, latent_dim) -> (N, ...)`` samples.
        discriminator: samples ``-> (N, 1)`` raw outputs (logits; ``D_linear`` for LSGAN).
        latent_dim: size of ``z ~ N(0, I)``.
        loss: a :class:`GANLoss`.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent_dim: int,
                 loss: GANLoss = NON_SATURATING) -> None:
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim, self.loss = int(latent_dim), loss

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``z ~ N(0, I)``, shape ``(n, latent_dim)``."""
        return torch.randn(n, self.latent_dim, generator=generator)

    def discriminator_loss(self, real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        fake = self.generator(z).detach()  # D's step leaves G alone
        return self.loss.discriminator(self.discriminator(real), self.discriminator(fake))

    def generator_loss(self, z: torch.Tensor) -> torch.Tensor:
        return self.loss.generator(self.discriminator(self.generator(z)))

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """``G(z)`` with G in eval mode (BatchNorm uses its running statistics), then restored."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(z)
        finally:
            self.generator.train(was_training)


def adam_optimizers(gan: GAN, lr: float, lr_d: float | None = None,
                    betas: tuple[float, float] = (0.5, 0.999)
                    ) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """``(opt_d, opt_g)``: Adam with DCGAN's ``beta1 = 0.5`` (Radford et al. 2016)."""
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr if lr_d is None else lr_d,
                             betas=betas)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=betas)
    return opt_d, opt_g


class StepMetrics(NamedTuple):
    """Losses of one :func:`train_step`: the last D step's and the last G step's."""

    d_loss: float
    g_loss: float


def train_step(gan: GAN, opt_d: torch.optim.Optimizer, opt_g: torch.optim.Optimizer,
               real: Sequence[torch.Tensor], z_d: Sequence[torch.Tensor],
               z_g: Sequence[torch.Tensor], generator_first: bool = False) -> StepMetrics:
    """One round of the game: ``len(real)`` D steps, then ``len(z_g)`` G steps.

    The usual min-max order (Goodfellow et al. 2014, Alg. 1) trains D first. With
    ``generator_first`` the G steps come first: the notes' max-min ordering (8.7.2), where
    G minimizes against the current D before D answers. All randomness comes in as tensors,
    so a run that draws them from step-addressed streams resumes exactly.

    Args:
        gan: the :class:`GAN`.
        opt_d, opt_g: optimizers of D's and G's parameters.
        real: one real batch per D step.
        z_d: one noise batch per D step (same length as ``real``).
        z_g: one noise batch per G step (at least one).
        generator_first: the max-min order.
    """
    if len(real) < 1 or len(real) != len(z_d) or len(z_g) < 1:
        raise ValueError(f"need one real and one noise batch per D step (>= 1) and >= 1 noise "
                         f"batch for G; got {len(real)} real, {len(z_d)} z_d, {len(z_g)} z_g")

    def d_steps() -> float:
        loss = torch.zeros(())
        for x, z in zip(real, z_d, strict=True):
            loss = gan.discriminator_loss(x, z)
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
        return loss.item()

    def g_steps() -> float:
        loss = torch.zeros(())
        for z in z_g:
            loss = gan.generator_loss(z)
            # The backward also fills D's .grad; opt_d.zero_grad clears it before D steps.
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
        return loss.item()

    if generator_first:
        g_loss = g_steps()
        d_loss = d_steps()
    else:
        d_loss = d_steps()
        g_loss = g_steps()
    return StepMetrics(d_loss=d_loss, g_loss=g_loss)


# ----------------------------------------------------------------- theory on known densities


def _check_densities(p_data: torch.Tensor, p_g: torch.Tensor) -> None:
    if p_data.shape != p_g.shape:
        raise ValueError(f"p_data and p_g must share a grid; got shapes {tuple(p_data.shape)} "
                         f"and {tuple(p_g.shape)}")
    if (p_data < 0).any() or (p_g < 0).any() or p_data.isnan().any() or p_g.isnan().any():
        raise ValueError("densities must be non-negative and not NaN")


def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """``D*(x) = p_data(x) / (p_data(x) + p_g(x))`` (notes Cor. 8.6.1); ``1/2`` where both
    densities are 0 (there every value is optimal)."""
    _check_densities(p_data, p_g)
    total = p_data + p_g
    return torch.where(total > 0, p_data / total.clamp_min(torch.finfo(total.dtype).tiny),
                       torch.full_like(total, 0.5))


def optimal_discriminator_logit(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """The logit of :func:`optimal_discriminator`, ``log p_data - log p_g`` (``+-inf`` where one
    density is 0, 0 where both are): exact where ``1 - D*`` would round to 0."""
    _check_densities(p_data, p_g)
    logit = torch.log(p_data) - torch.log(p_g)
    return torch.where((p_data > 0) | (p_g > 0), logit, torch.zeros_like(logit))


def value_by_quadrature(logit: torch.Tensor, p_data: torch.Tensor, p_g: torch.Tensor,
                        dx: float) -> torch.Tensor:
    """``V(D, G) = int p_data log D + p_g log(1 - D) dx`` as a Riemann sum on a grid, for
    ``D = sigmoid(logit)``; ``log D = -softplus(-logit)``, ``log(1 - D) = -softplus(logit)``.

    Args:
        logit: D's logit on the grid (may be ``+-inf``, e.g. :func:`optimal_discriminator_logit`).
        p_data, p_g: densities on the same grid.
        dx: grid spacing.
    Returns:
        scalar (``-inf`` where D is certain and wrong on some mass).
    """
    _check_densities(p_data, p_g)
    if logit.shape != p_data.shape or logit.isnan().any():
        raise ValueError(f"logit must be a NaN-free tensor on the densities' grid "
                         f"{tuple(p_data.shape)}, got shape {tuple(logit.shape)}")
    zero = torch.zeros((), dtype=logit.dtype)
    # 0 * log 0 = 0: no density, no contribution (and no 0 * inf).
    real = torch.where(p_data > 0, p_data * -F.softplus(-logit), zero)
    fake = torch.where(p_g > 0, p_g * -F.softplus(logit), zero)
    return (real + fake).sum() * dx


__all__ = [
    "GAN", "GANLoss", "LEAST_SQUARES", "LOSSES", "MINIMAX", "NON_SATURATING", "StepMetrics",
    "adam_optimizers", "discriminator_bce", "gan_loss", "least_squares_discriminator_loss",
    "least_squares_generator_loss", "minimax_generator_loss", "mlp_discriminator",
    "mlp_generator", "non_saturating_generator_loss", "optimal_discriminator",
    "optimal_discriminator_logit", "train_step", "value_by_quadrature",
]
