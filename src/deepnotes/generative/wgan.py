"""Wasserstein GANs: the critic's objective, weight clipping, the gradient penalty and a
training round of ``n_critic`` critic steps per generator step (notes 8.17).

Kantorovich-Rubinstein duality (notes Def. 8.17.2)::

    W1(P, Q) = sup_{Lip(f) <= 1}  E_{x ~ P} f(x) - E_{x ~ Q} f(x)

The critic ``c`` (a discriminator with a raw, unbounded output: no sigmoid) *maximizes*
``E c(x_real) - E c(G(z))``, its batch estimate of W1 (:func:`w1_estimate`); written as a
loss it minimizes :func:`critic_loss` ``= E c(G(z)) - E c(x_real)``. The generator minimizes
``-E c(G(z))`` (:func:`generator_loss`), the only term of the estimate that depends on it.

The sup is over 1-Lipschitz functions; a network is kept (roughly) Lipschitz in one of two
ways:

* **weight clipping** (Arjovsky et al. 2017, Alg. 1): after every critic update each weight is
  clamped to ``[-c, c]`` (:func:`clip_weights`; the paper: ``c = 0.01``, RMSProp with
  ``lr = 5e-5``, ``n_critic = 5``; :func:`rmsprop_optimizers`). The critic is then
  ``K``-Lipschitz for some unknown ``K`` that depends on ``c`` and the architecture, so its
  estimate is ``K W1`` up to the fit, and the weights pile up at ``+-c`` (Gulrajani et al. 2017,
  Fig. 1b; :func:`fraction_at_clip` measures it).
* **gradient penalty** (WGAN-GP, Gulrajani et al. 2017, Alg. 1): on interpolates
  ``x_hat = eps x_real + (1 - eps) x_fake`` with **one** ``eps ~ U[0, 1]`` **per sample**
  (shape ``(B, 1, ..., 1)``, :func:`interpolate`), add ``lambda E (||grad c(x_hat)||_2 - 1)^2``
  where the norm of each sample's gradient is taken **over all its other dimensions**
  (:func:`gradient_norms`). The paper: ``lambda = 10``, Adam ``lr = 1e-4``, ``betas = (0,
  0.9)``, ``n_critic = 5``, and no BatchNorm in the critic (the penalty is per sample; a batch
  statistic couples the samples): :class:`WGANCritic` swaps the DCGAN discriminator's
  BatchNorm for a per-sample LayerNorm over ``(C, H, W)`` (``GroupNorm(1, C)``) or nothing.

:func:`train_step` is one round: ``len(real)`` critic steps (``n_critic``), each on its own real
batch and noise, then one generator step. Every random draw comes in as a tensor or a
``torch.Generator``, so a loop that takes them from step-addressed streams resumes exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from deepnotes.generative.dcgan import DCGANDiscriminator
from deepnotes.generative.gan import GAN, GANLoss

# ----------------------------------------------------------------- objective


def w1_estimate(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """The critic's batch estimate of W1, ``E c(x_real) - E c(x_fake)`` (the dual objective)."""
    return real_score.mean() - fake_score.mean()


def critic_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """``E c(x_fake) - E c(x_real) = -`` :func:`w1_estimate` (the critic minimizes it)."""
    return fake_score.mean() - real_score.mean()


def generator_loss(fake_score: torch.Tensor) -> torch.Tensor:
    """``-E c(G(z))`` (G minimizes it; ``E c(x_real)`` does not depend on G)."""
    return -fake_score.mean()


WASSERSTEIN = GANLoss("wasserstein", critic_loss, generator_loss)


@torch.no_grad()
def critic_w1(critic: nn.Module, p: torch.Tensor, q: torch.Tensor, batch_size: int = 4096
              ) -> float:
    """The critic's W1 estimate ``mean c(p) - mean c(q)`` over two whole samples (batched, no
    gradients): what a trained critic says the distance between ``p`` and ``q`` is."""
    def mean_score(x: torch.Tensor) -> float:
        total = sum(float(critic(x[i:i + batch_size]).double().sum())
                    for i in range(0, len(x), batch_size))
        return total / len(x)
    return mean_score(p) - mean_score(q)


# ----------------------------------------------------------------- Lipschitz constraints


@torch.no_grad()
def clip_weights(model: nn.Module, c: float) -> None:
    """Clamp every parameter of ``model`` to ``[-c, c]`` in place (WGAN, Alg. 1 line 7)."""
    if not c > 0:
        raise ValueError(f"clip value c must be > 0, got {c}")
    for p in model.parameters():
        p.clamp_(-c, c)


@torch.no_grad()
def fraction_at_clip(model: nn.Module, c: float, margin: float = 0.05) -> float:
    """Fraction of ``model``'s parameters (all tensors pooled) with ``|w| >= (1 - margin) c``:
    how many weights sit at the clipping bounds ``+-c``."""
    if not c > 0 or not 0 <= margin < 1:
        raise ValueError(f"need c > 0 and 0 <= margin < 1, got c={c}, margin={margin}")
    values = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return float((values.abs() >= (1 - margin) * c).double().mean())


def interpolate(real: torch.Tensor, fake: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``eps x_real + (1 - eps) x_fake`` with one ``eps ~ U[0, 1]`` per sample: ``eps`` has
    shape ``(B, 1, ..., 1)`` and is drawn on the CPU from ``generator`` (the same numbers on
    every device), ``B`` draws in order."""
    if real.shape != fake.shape or real.dim() < 1:
        raise ValueError(f"real and fake must share a shape (B, ...), got {tuple(real.shape)} "
                         f"and {tuple(fake.shape)}")
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, generator=generator, dtype=torch.float32).to(real.device, real.dtype)
    return fake + eps * (real - fake)


def gradient_norms(critic: nn.Module, x: torch.Tensor, create_graph: bool = False
                   ) -> torch.Tensor:
    """``||grad_x c(x_i)||_2`` per sample, ``(B,)``: the gradient of each sample's score with
    respect to that sample, its norm over all dimensions but the batch one. (Summing the
    scores before differentiating is exact: sample ``i``'s score depends on ``x_i`` only, which
    is why the critic must not hold batch statistics.)"""
    x = x.detach().requires_grad_(True)
    score = critic(x)
    (grad,) = torch.autograd.grad(score.sum(), x, create_graph=create_graph)
    return grad.reshape(len(x), -1).norm(2, dim=1)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None, target: float = 1.0
                     ) -> torch.Tensor:
    """WGAN-GP's ``E (||grad c(x_hat)||_2 - target)^2`` on per-sample interpolates
    (:func:`interpolate`, :func:`gradient_norms`), differentiable in the critic's parameters
    (multiply by ``lambda`` yourself)."""
    x_hat = interpolate(real.detach(), fake.detach(), generator)
    return (gradient_norms(critic, x_hat, create_graph=True) - target).pow(2).mean()


# ----------------------------------------------------------------- the critic for images


class WGANCritic(DCGANDiscriminator):
    """The DCGAN discriminator of :mod:`deepnotes.generative.dcgan` as a WGAN-GP critic: its
    BatchNorm is replaced by ``norm = "layer"`` (``GroupNorm(1, C)``: LayerNorm over each
    sample's ``(C, H, W)``, per-channel affine) or ``"none"``; the output is a raw score."""

    def __init__(self, width: int = 32, norm: str = "layer") -> None:
        super().__init__(width=width, classes=0)
        if norm not in ("layer", "none"):
            raise ValueError(f"norm must be 'layer' or 'none', got {norm!r}")
        self.architecture_kwargs = {"width": width, "norm": norm}
        index = next(i for i, m in enumerate(self.features) if isinstance(m, nn.BatchNorm2d))
        self.features[index] = nn.GroupNorm(1, 2 * width) if norm == "layer" else nn.Identity()


# ----------------------------------------------------------------- optimizers and steps


def rmsprop_optimizers(gan: GAN, lr: float = 5e-5
                       ) -> tuple[torch.optim.RMSprop, torch.optim.RMSprop]:
    """``(opt_critic, opt_g)``: RMSProp, the weight-clipping WGAN's optimizer (Arjovsky et al.
    2017: momentum-based optimizers such as Adam made its training unstable)."""
    return (torch.optim.RMSprop(gan.discriminator.parameters(), lr=lr),
            torch.optim.RMSprop(gan.generator.parameters(), lr=lr))


class CriticObjective(NamedTuple):
    """One critic step's loss (to backpropagate) and its parts, ``loss = -w1 + lambda gp``."""

    loss: torch.Tensor
    w1: torch.Tensor
    penalty: torch.Tensor


def critic_objective(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     gp_weight: float = 0.0, generator: torch.Generator | None = None
                     ) -> CriticObjective:
    """:func:`critic_loss` plus ``gp_weight`` times :func:`gradient_penalty` (``fake`` is
    detached: the critic's step leaves G alone). ``generator`` draws the interpolation."""
    fake = fake.detach()
    w1 = w1_estimate(critic(real).float(), critic(fake).float())
    penalty = (gradient_penalty(critic, real, fake, generator).float() if gp_weight > 0
               else torch.zeros((), device=w1.device))
    return CriticObjective(-w1 + gp_weight * penalty, w1.detach(), penalty.detach())


def critic_step(critic: nn.Module, optimizer: torch.optim.Optimizer, real: torch.Tensor,
                fake: torch.Tensor, clip: float | None = None, gp_weight: float = 0.0,
                generator: torch.Generator | None = None) -> CriticObjective:
    """One critic update: the objective, a step, then clipping to ``[-clip, clip]`` if given."""
    objective = critic_objective(critic, real, fake, gp_weight, generator)
    optimizer.zero_grad(set_to_none=True)
    objective.loss.backward()
    optimizer.step()
    if clip is not None:
        clip_weights(critic, clip)
    return objective


class StepMetrics(NamedTuple):
    """A round of :func:`train_step`: the last critic step's W1 estimate, penalty and loss,
    the generator's loss and the number of critic steps taken."""

    critic_loss: float
    w1: float
    penalty: float
    g_loss: float
    critic_steps: int


def train_step(gan: GAN, opt_c: torch.optim.Optimizer, opt_g: torch.optim.Optimizer,
               real: Sequence[torch.Tensor], z_c: Sequence[torch.Tensor], z_g: torch.Tensor,
               clip: float | None = None, gp_weight: float = 0.0,
               gp_generators: Sequence[torch.Generator] | None = None) -> StepMetrics:
    """One WGAN round: ``n_critic = len(real)`` critic steps, then one generator step.

    Args:
        gan: a :class:`~deepnotes.generative.gan.GAN` whose discriminator is the critic (raw
            scores); its ``loss`` is not used (the Wasserstein losses are).
        opt_c, opt_g: the critic's and the generator's optimizers.
        real: one real batch per critic step.
        z_c: one noise batch per critic step (same length as ``real``).
        z_g: the generator step's noise.
        clip: weight clipping to ``[-clip, clip]`` after every critic step (WGAN).
        gp_weight: ``lambda`` of the gradient penalty (WGAN-GP); 0 for none.
        gp_generators: one ``torch.Generator`` per critic step for the interpolation
            coefficients (required when ``gp_weight > 0``).
    """
    n_critic = len(real)
    if n_critic < 1 or len(z_c) != n_critic:
        raise ValueError(f"need one real and one noise batch per critic step (>= 1); got "
                         f"{len(real)} real and {len(z_c)} z_c")
    if clip is None and gp_weight <= 0:
        raise ValueError("a WGAN critic needs a Lipschitz constraint: clip=c or gp_weight > 0")
    if gp_weight > 0 and (gp_generators is None or len(gp_generators) != n_critic):
        raise ValueError("gp_weight > 0 needs one interpolation generator per critic step")
    objective = None
    for k, (x, z) in enumerate(zip(real, z_c, strict=True)):
        with torch.no_grad():
            fake = gan.generator(z)
        objective = critic_step(gan.discriminator, opt_c, x, fake, clip, gp_weight,
                                gp_generators[k] if gp_weight > 0 else None)
    g_loss = generator_loss(gan.discriminator(gan.generator(z_g)).float())
    # The backward also fills the critic's .grad; critic_step zeroes it before its next step.
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return StepMetrics(critic_loss=objective.loss.item(), w1=objective.w1.item(),
                       penalty=objective.penalty.item(), g_loss=g_loss.item(),
                       critic_steps=n_critic)


__all__ = [
    "WASSERSTEIN", "CriticObjective", "StepMetrics", "WGANCritic", "clip_weights", "critic_loss",
    "critic_objective", "critic_step", "critic_w1", "fraction_at_clip", "generator_loss",
    "gradient_norms", "gradient_penalty", "interpolate", "rmsprop_optimizers", "train_step",
    "w1_estimate",
]
