"""The Fashion-MNIST WGAN-GP of notes 8.17: train, save and load by name (``wgan-gp-fashion``).

Generator: :class:`deepnotes.generative.dcgan.DCGANGenerator` (BatchNorm; eval mode when
sampling, :func:`deepnotes.zoo.gan_fashion.sample`). Critic:
:class:`deepnotes.generative.wgan.WGANCritic`, the DCGAN discriminator with per-sample
LayerNorm instead of BatchNorm (the gradient penalty is per sample). Recipe after Gulrajani et
al. 2017: ``n_critic`` critic steps per generator step, each on its own real batch, penalty
weight ``lambda = 10`` on per-sample interpolates, Adam with ``beta2 = 0.9`` (lr 4e-4 and
``beta1 = 0.5`` of :class:`deepnotes.zoo.gan_fashion.Recipe`); an EMA copy of the
generator as in :mod:`deepnotes.zoo.gan_fashion`, whose ``save``/``load``/``sample`` this
module reuses. Interpolation coefficients come from step-addressed CPU streams, so a resumed run
repeats the uninterrupted one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from deepnotes.generative import wgan
from deepnotes.generative.dcgan import DCGANGenerator, ema_update
from deepnotes.zoo import gan_fashion
from deepnotes.zoo.artifacts import Artifact

NAME = "wgan-gp-fashion"
sample = gan_fashion.sample  # G(z) in eval mode, on the generator's device, back on the CPU


@dataclass(frozen=True)
class Recipe(gan_fashion.Recipe):
    """:class:`deepnotes.zoo.gan_fashion.Recipe` plus the WGAN-GP settings; ``steps`` counts
    generator steps (each after ``n_critic`` critic steps)."""

    beta2: float = 0.9  # lr 4e-4 and beta1 0.5 as in gan_fashion
    n_critic: int = 5
    gp_weight: float = 10.0
    critic_norm: str = "layer"


def train(ctx: Any, recipe: Recipe, x_train: torch.Tensor, phase: str = "wgan",
          evaluate: Callable[[int, DCGANGenerator], None] | None = None, eval_every: int = 0,
          state: dict[str, Any] | None = None
          ) -> tuple[DCGANGenerator, DCGANGenerator | None]:
    """Train in a ``ctx.steps`` loop of generator steps; returns ``(generator, ema or None)``.

    Every step logs ``w1`` (the last critic step's ``mean c(real) - mean c(fake)``, the
    negative critic loss without the penalty), ``w1_mean`` (its mean over the step's
    ``n_critic`` critic steps), ``penalty``, ``critic_loss`` and ``g_loss``.
    ``evaluate(step, generator)`` runs untimed after every ``eval_every`` steps and at the
    end (as in :func:`deepnotes.zoo.gan_fashion.train`); just before each call the mean
    ``w1_mean`` of the steps since the previous evaluation is appended to
    ``state["critic_w1"]`` as ``[step, value]`` (the critic's smoothed W1 estimate, i.e.
    minus its loss). ``state`` is checkpointed with the networks.
    """
    if recipe.n_critic < 1:
        raise ValueError(f"n_critic must be >= 1, got {recipe.n_critic}")
    device = ctx.fabric.device
    batches = ctx.batches(x_train, batch_size=recipe.batch_size, stream=phase)
    ctx.manual_seed(f"init-{phase}")
    g = DCGANGenerator(recipe.latent, recipe.width).to(device)
    critic = wgan.WGANCritic(recipe.width, recipe.critic_norm).to(device)
    if recipe.channels_last:
        g = g.to(memory_format=torch.channels_last)
        critic = critic.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(g).eval() if recipe.ema_decay > 0 else None
    for p in ema.parameters() if ema is not None else ():
        p.requires_grad_(False)
    betas = (recipe.beta1, recipe.beta2)
    opt_g = torch.optim.Adam(g.parameters(), lr=recipe.lr, betas=betas)
    opt_c = torch.optim.Adam(critic.parameters(), lr=recipe.lr, betas=betas)
    track: dict[str, Any] = {"generator": g, "critic": critic, "g_optimizer": opt_g,
                             "c_optimizer": opt_c}
    if ema is not None:
        track["ema_generator"] = ema
    state = {} if state is None else state
    state.setdefault("critic_w1", [])
    state.setdefault("w1_window", [0.0, 0])  # sum and count since the last evaluation
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=recipe.bf16)
    for step in ctx.steps(recipe.steps, track=track, phase=phase, state=state,
                          log_every=recipe.log_every):
        w1_sum = 0.0
        for k in range(recipe.n_critic):
            index = step * recipe.n_critic + k
            (xb,) = batches.batch(index)
            real = gan_fashion._prepare(xb.to(device), recipe.channels_last)
            z = torch.randn(len(xb), recipe.latent,
                            generator=ctx.rng(f"z-critic-{phase}", index)).to(device)
            with torch.no_grad(), torch.autocast(**amp):
                fake = g(z)
            with torch.autocast(**amp):
                out = wgan.critic_objective(critic, real, fake.float(), recipe.gp_weight,
                                            ctx.rng(f"interpolate-{phase}", index))
            opt_c.zero_grad(set_to_none=True)
            out.loss.backward()
            opt_c.step()
            w1_sum += out.w1.item()
        z = torch.randn(recipe.batch_size, recipe.latent,
                        generator=ctx.rng(f"z-{phase}", step)).to(device)
        with torch.autocast(**amp):
            g_loss = wgan.generator_loss(critic(g(z)).float())
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()  # also fills the critic's .grad, cleared before its next step
        opt_g.step()
        if ema is not None:  # warm-up as in gan_fashion.train
            ema_update(ema, g, min(recipe.ema_decay, (1 + step) / (10 + step)))
        ctx.log(step, phase=phase, critic_loss=out.loss.item(), w1=out.w1.item(),
                w1_mean=w1_sum / recipe.n_critic, penalty=out.penalty.item(),
                g_loss=g_loss.item())
        state["w1_window"] = [state["w1_window"][0] + w1_sum / recipe.n_critic,
                              state["w1_window"][1] + 1]
        if evaluate is not None and ((eval_every and (step + 1) % eval_every == 0)
                                     or step + 1 == recipe.steps):
            total, count = state["w1_window"]
            state["critic_w1"].append([step + 1, total / max(count, 1)])
            state["w1_window"] = [0.0, 0]
            with ctx.untimed():
                evaluate(step + 1, ema if ema is not None else g)
    return g.cpu(), ema.cpu() if ema is not None else None


def save(ctx: Any, generator: DCGANGenerator, metrics: dict[str, float]) -> None:
    """Publish ``generator`` as artifact ``(NAME, ctx.tier)`` (:func:`gan_fashion.save`)."""
    gan_fashion.save(ctx, NAME, generator, metrics)


def load(tier: str) -> tuple[DCGANGenerator, Artifact]:
    """A trained generator in eval mode and its artifact (recorded in the run)."""
    return gan_fashion.load(NAME, tier)
