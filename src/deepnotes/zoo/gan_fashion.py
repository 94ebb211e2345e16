"""The Fashion-MNIST image GANs of notes 8.6-8.10: train, save and load by name.

:class:`deepnotes.generative.dcgan.DCGANGenerator` / ``DCGANDiscriminator`` trained with a loss
of :mod:`deepnotes.generative.gan` (``non-saturating`` for ``dcgan-fashion``, ``least-squares``
for ``lsgan-fashion``; ``cgan-fashion`` is the class-conditional DCGAN), Adam (4e-4) with DCGAN's
beta1 = 0.5, one D step per G step, batches sliced from in-memory uint8 tensors, real = 1 and
fake = 0. An EMA copy of the generator is kept when ``ema_decay > 0``. Sampling always puts the
generator in eval mode (BatchNorm running statistics), :func:`sample`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from deepnotes.generative.dcgan import DCGANDiscriminator, DCGANGenerator, ema_update, from_uint8
from deepnotes.generative.gan import gan_loss
from deepnotes.zoo.artifacts import Artifact, load_model, save_artifact

NAMES = {"non-saturating": "dcgan-fashion", "least-squares": "lsgan-fashion",
         "conditional": "cgan-fashion"}


@dataclass(frozen=True)
class Recipe:
    """Architecture and training recipe (an experiment's config supplies them)."""

    latent: int = 64
    width: int = 32
    steps: int = 1500
    batch_size: int = 64
    lr: float = 4e-4
    beta1: float = 0.5
    ema_decay: float = 0.999  # 0: no EMA copy
    channels_last: bool = True
    bf16: bool = False
    log_every: int = 50


def _prepare(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    x = from_uint8(x)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def train(ctx: Any, recipe: Recipe, x_train: torch.Tensor, y_train: torch.Tensor, loss: str,
          conditional: bool = False, phase: str = "train",
          evaluate: Callable[[int, DCGANGenerator], None] | None = None, eval_every: int = 0,
          state: dict[str, Any] | None = None) -> tuple[DCGANGenerator, DCGANGenerator | None]:
    """Train G and D in a ``ctx.steps`` loop; returns ``(generator, ema_generator or None)``.

    ``evaluate(step, generator)`` runs untimed after every ``eval_every`` steps and at the
    end, with the generator to sample (the EMA copy when there is one; on the training
    device: :func:`sample` moves its inputs there). The networks come back on the CPU.
    ``state``: plain
    data the caller keeps across steps (e.g. what ``evaluate`` records), checkpointed and
    restored on resume with the networks.
    """
    device = ctx.fabric.device
    objective = gan_loss(loss)
    classes = 10 if conditional else 0
    batches = ctx.batches(x_train, y_train, batch_size=recipe.batch_size, stream=phase)
    ctx.manual_seed(f"init-{phase}")
    g = DCGANGenerator(recipe.latent, recipe.width, classes)
    d = DCGANDiscriminator(recipe.width, classes)
    g, d = g.to(device), d.to(device)
    if recipe.channels_last:
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(g).eval() if recipe.ema_decay > 0 else None
    for p in ema.parameters() if ema is not None else ():
        p.requires_grad_(False)
    opt_g = torch.optim.Adam(g.parameters(), lr=recipe.lr, betas=(recipe.beta1, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=recipe.lr, betas=(recipe.beta1, 0.999))
    track: dict[str, Any] = {"generator": g, "discriminator": d, "g_optimizer": opt_g,
                             "d_optimizer": opt_d}
    if ema is not None:
        track["ema_generator"] = ema
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=recipe.bf16)
    for step in ctx.steps(recipe.steps, track=track, phase=phase, state=state,
                          log_every=recipe.log_every):
        xb, yb = batches.batch(step)
        real = _prepare(xb.to(device), recipe.channels_last)
        # Noise and labels come from the run's CPU streams (the same on every device).
        z = torch.randn(len(xb), recipe.latent, generator=ctx.rng(f"z-{phase}", step)).to(device)
        y_fake = (torch.randint(0, 10, (len(xb),), generator=ctx.rng(f"y-{phase}", step))
                  .to(device) if conditional else None)
        y_real = yb.long().to(device) if conditional else None
        with torch.autocast(**amp):
            fake = g(z, y_fake)
            d_loss = objective.discriminator(d(real, y_real).float(),
                                             d(fake.detach(), y_fake).float())
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with torch.autocast(**amp):
            g_loss = objective.generator(d(fake, y_fake).float())
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()  # also fills D's .grad, cleared before D's next step
        opt_g.step()
        if ema is not None:  # warm-up: early averages do not keep the random initialization
            ema_update(ema, g, min(recipe.ema_decay, (1 + step) / (10 + step)))
        ctx.log(step, phase=phase, d_loss=d_loss.item(), g_loss=g_loss.item())
        if evaluate is not None and ((eval_every and (step + 1) % eval_every == 0)
                                     or step + 1 == recipe.steps):
            with ctx.untimed():
                evaluate(step + 1, ema if ema is not None else g)
    return g.cpu(), ema.cpu() if ema is not None else None


@torch.no_grad()
def sample(generator: DCGANGenerator, z: torch.Tensor, y: torch.Tensor | None = None
           ) -> torch.Tensor:
    """``G(z[, y])`` in eval mode (BatchNorm running statistics); the mode is restored."""
    was = generator.training
    generator.eval()
    try:
        device = next(generator.parameters()).device
        return generator(z.to(device), None if y is None else y.to(device)).float().cpu()
    finally:
        generator.train(was)


def save(ctx: Any, name: str, generator: DCGANGenerator, metrics: dict[str, float]) -> None:
    """Publish ``generator`` as artifact ``(name, ctx.tier)``."""
    save_artifact(ctx, name, generator, architecture=generator.architecture, metrics=metrics,
                  extra={"output": "images (N, 1, 28, 28) in [-1, 1] (tanh); "
                                   "deepnotes.generative.dcgan.to_uint8 gives uint8",
                         "latent": "z ~ N(0, I)"})


def load(name: str, tier: str) -> tuple[DCGANGenerator, Artifact]:
    """A trained generator in eval mode and its artifact (recorded in the run)."""
    return load_model(name, tier)
