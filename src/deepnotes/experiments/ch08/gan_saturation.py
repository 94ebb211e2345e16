"""Discriminator saturation: a D trained far ahead of G starves the minimax generator loss of
gradient, not the non-saturating one nor LSGAN's (notes 8.7.1).

Real data ``N(4, 0.5^2)`` on the line; the generator is an untrained MLP (4-32-32-1) whose
samples sit near 0, far from the data: the case the notes describe ("G wasn't trained
already"). G is frozen and two discriminators (2x64 ReLU, the same initialization, Adam 1e-3,
beta1 0.5, fresh batches of 256) train against it: one on the binary cross-entropy (real = 1,
fake = 0), one on the notes' least-squares loss ``E (D(x) - 1)^2 + E D(G(z))^2``. Every
``log_every`` D steps the gradient norm ``||grad_theta L_G||`` over all of G's parameters is
measured on 2,048 fixed noise vectors for

* minimax, ``E log(1 - D(G(z)))`` through the BCE discriminator;
* non-saturating, ``-E log D(G(z))`` through the same discriminator;
* least squares, ``E (D(G(z)) - 1)^2`` through the LSGAN discriminator.

``dL/dl`` is ``-D(G(z))`` for the minimax loss, so as D learns to reject the fakes
(``D(G(z)) -> 0``) G's gradient vanishes however large D's slope grows; the non-saturating
loss has ``dL/dl = -(1 - D(G(z))) -> -1``. This also decides the notes' 8.6 advice to reach
"convergence on D, per single G step": with the minimax loss that is the saturated regime.

Quick tier, seed 0, on an Intel Xeon (Sapphire Rapids class, AMX), 2 threads (4.6 s), 2,000
D steps: mean ``D(G(z))`` 1.7e-5. G's gradient norm, peak -> final: minimax 0.356 -> 3.4e-4
(0.09% of its peak), non-saturating still rising (15.2 at the end, 45,000 times minimax's),
least squares 0.265 -> 3.6e-3 (1.3% of its peak: the LSGAN D fits 0 flatly around the fakes,
so LSGAN keeps 10 times minimax's gradient here but also decays; its claim fails).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.generative.gan import (
    discriminator_bce,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    minimax_generator_loss,
    mlp_discriminator,
    mlp_generator,
    non_saturating_generator_loss,
)

DATA_MU, DATA_SIGMA = 4.0, 0.5
LATENT = 4
LOSSES = ("minimax", "non_saturating", "least_squares")
# Thresholds, fixed before the first quick run.
MINIMAX_DECAY_MAX = 0.01  # minimax gradient norm, trained-ahead D / its peak during D's training
NS_OVER_MINIMAX_MIN = 100.0  # non-saturating / minimax, trained-ahead D
LS_DECAY_MIN = 0.1  # least-squares gradient norm, trained-ahead D / its peak
D_FAKE_MAX = 0.01  # mean D(G(z)) of the BCE discriminator at the end: "far ahead"


@dataclass(frozen=True)
class Config:
    d_steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    hidden: int = 64
    eval_noise: int = 2048
    log_every: int = 20


def _grad_norm(loss: torch.Tensor, generator: torch.nn.Module) -> float:
    grads = torch.autograd.grad(loss, list(generator.parameters()), retain_graph=True)
    return torch.sqrt(sum((g ** 2).sum() for g in grads)).item()


def _generator_gradients(generator, d_bce, d_ls, z) -> dict[str, float]:
    fake = generator(z)
    bce_logit = d_bce(fake)
    return {
        "minimax": _grad_norm(minimax_generator_loss(bce_logit), generator),
        "non_saturating": _grad_norm(non_saturating_generator_loss(bce_logit), generator),
        "least_squares": _grad_norm(least_squares_generator_loss(d_ls(fake)), generator),
        "d_fake_bce": torch.sigmoid(bce_logit).mean().item(),
        "d_fake_ls": d_ls(fake).mean().item(),
    }


# ----------------------------------------------------------------- measure


def measure(cfg: Config, ctx) -> dict:
    ctx.manual_seed("init-g")
    generator = mlp_generator(LATENT, 1, (32, 32))
    generator.requires_grad_(True)  # frozen by never stepping it; gradients are measured
    discriminators = {}
    for name in ("bce", "ls"):
        ctx.manual_seed("init-d")  # the same starting D for both losses
        discriminators[name] = mlp_discriminator(1, (cfg.hidden, cfg.hidden))
    d_bce, d_ls = discriminators["bce"], discriminators["ls"]
    opt_bce = torch.optim.Adam(d_bce.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_ls = torch.optim.Adam(d_ls.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    z_eval = torch.randn(cfg.eval_noise, LATENT, generator=ctx.rng("eval"))
    initial = _generator_gradients(generator, d_bce, d_ls, z_eval)
    track = {"d_bce": d_bce, "d_ls": d_ls, "opt_bce": opt_bce, "opt_ls": opt_ls}
    for step in ctx.steps(cfg.d_steps, track=track, log_every=cfg.log_every):
        real = DATA_MU + DATA_SIGMA * torch.randn(cfg.batch_size, 1,
                                                  generator=ctx.rng("data", step))
        z = torch.randn(cfg.batch_size, LATENT, generator=ctx.rng("noise", step))
        with torch.no_grad():
            fake = generator(z)
        losses = {"bce": discriminator_bce(d_bce(real), d_bce(fake)),
                  "ls": least_squares_discriminator_loss(d_ls(real), d_ls(fake))}
        for opt, loss in ((opt_bce, losses["bce"]), (opt_ls, losses["ls"])):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        values = {}
        if ctx.due(step):  # G's gradients after this D step
            with ctx.untimed():
                values = _generator_gradients(generator, d_bce, d_ls, z_eval)
        ctx.log(step, d_loss_bce=losses["bce"].item(), d_loss_ls=losses["ls"].item(), **values)
    final = _generator_gradients(generator, d_bce, d_ls, z_eval)
    return {"initial": initial, "final": final}


# ----------------------------------------------------------------- plot


def plot(ctx, r: dict) -> None:
    fig = Figure(figsize=(9, 3.3), layout="constrained")
    ax_g, ax_d = fig.subplots(1, 2)
    for name in LOSSES:
        steps, values = ctx.series(name)
        ax_g.loglog([s + 1 for s in steps], values, label=name.replace("_", "-"))
    ax_g.set(xlabel="D steps ahead of G", ylabel="||grad_theta L_G||",
             title="generator gradient as D trains ahead")
    ax_g.legend(fontsize=8)
    steps, d_fake = ctx.series("d_fake_bce")
    ax_d.semilogx([s + 1 for s in steps], d_fake, label="sigmoid D(G(z)), BCE-trained")
    steps, d_ls = ctx.series("d_fake_ls")
    ax_d.semilogx([s + 1 for s in steps], d_ls, label="D_linear(G(z)), LS-trained")
    ax_d.set(xlabel="D steps ahead of G", ylabel="mean over fakes", title="D on the fakes")
    ax_d.legend(fontsize=8)
    ctx.figure(fig, "saturation")


# ----------------------------------------------------------------- claims


def run(cfg: Config, ctx) -> Result:
    r = measure(cfg, ctx)
    plot(ctx, r)
    initial, final = r["initial"], r["final"]
    metrics = {f"{k}_{when}": v for when, values in (("initial", initial), ("final", final))
               for k, v in values.items()}
    # An untrained D has almost no slope, so G's gradient first grows as D learns, then (for
    # the minimax loss) vanishes: decay is measured from the peak over the logged steps.
    peak = {name: max(initial[name], *ctx.series(name)[1]) for name in LOSSES}
    minimax_decay = final["minimax"] / peak["minimax"]
    ns_over_mm = final["non_saturating"] / final["minimax"]
    ls_decay = final["least_squares"] / peak["least_squares"]
    metrics.update({f"{name}_peak": peak[name] for name in LOSSES})
    metrics.update(minimax_decay=minimax_decay, ns_over_minimax_final=ns_over_mm,
                   ls_decay=ls_decay, ls_over_minimax_final=final["least_squares"] / final[
                       "minimax"])
    return Result(metrics=metrics, claims=[
        Claim("d_far_ahead", f"After the D steps the BCE discriminator rejects the fakes: mean "
              f"D(G(z)) <= {D_FAKE_MAX}.", final["d_fake_bce"], "<=", D_FAKE_MAX,
              source="project"),
        Claim("minimax_gradient_vanishes", f"With D trained far ahead, the minimax generator "
              f"loss's gradient norm falls to at most {MINIMAX_DECAY_MAX:g} of its peak "
              f"while D trained.", minimax_decay, "<=", MINIMAX_DECAY_MAX),
        Claim("non_saturating_keeps_gradient", f"Against the same trained-ahead D the "
              f"non-saturating loss's gradient norm is >= {NS_OVER_MINIMAX_MIN:g} times the "
              f"minimax loss's.", ns_over_mm, ">=", NS_OVER_MINIMAX_MIN, source="project"),
        Claim("least_squares_keeps_gradient", f"The least-squares generator loss keeps at "
              f"least {LS_DECAY_MIN:g} of its peak gradient norm as its D trains far ahead.",
              ls_decay, ">=", LS_DECAY_MIN),
    ])


EXPERIMENT = experiment(
    name="gan-saturation",
    sections=("8.7.1", "8.6"),
    claim="A discriminator trained far ahead of G makes the minimax generator loss's gradient "
          "vanish; the non-saturating and least-squares losses keep theirs.",
    presets={
        "smoke": Config(d_steps=40, eval_noise=256, log_every=5),
        "quick": Config(),
        "full": Config(d_steps=10000, log_every=50),
    },
    run=run,
    single_process=True,
    quick_seconds=5.0,
    max_threads=2,
)
