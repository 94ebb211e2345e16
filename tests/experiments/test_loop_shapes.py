"""The three training-loop shapes that do not fit ``fit``, each written as an explicit loop
from the engine's parts (``ctx.steps``, ``ctx.log``, ``ctx.rng``, ``ctx.batches``), each
interrupted and resumed to exactly the uninterrupted numbers:

* a GAN with two networks and two optimizers;
* a per-image optimization (Deep Image Prior: a network fitted to one noisy image);
* a stateful truncated-BPTT sequence model (the hidden state crosses steps and checkpoints).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from conftest import assert_same_results
from deepnotes.data import make_ring
from deepnotes.engine.run import RunInterrupted
from deepnotes.experiments.base import Claim, Experiment, Result
from deepnotes.experiments.runner import resume_experiment, run_experiment
from deepnotes.nn import MLP


@dataclass(frozen=True)
class Config:
    steps: int = 60
    lr: float = 1e-2


def _figure(ctx, key: str) -> None:
    fig = Figure(figsize=(3, 2))
    ax = fig.subplots()
    ax.plot(*ctx.series(key))
    ctx.figure(fig, key)


def _experiment(name: str, run) -> Experiment:
    return Experiment(name=name, sections=("8.6",), claim="a loop shape", config=Config,
                      presets={t: Config() for t in ("smoke", "quick", "full")}, run=run,
                      module=__name__, test=__file__)


def run_gan(cfg: Config, ctx) -> Result:
    points, _ = make_ring(512, generator=ctx.rng("data"))
    batches = ctx.batches(points, batch_size=64)
    ctx.manual_seed("init")
    generator, discriminator = MLP([2, 32, 2]), MLP([2, 32, 1])
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=(0.5, 0.99))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr, betas=(0.5, 0.99))
    track = {"generator": generator, "discriminator": discriminator, "opt_g": opt_g,
             "opt_d": opt_d}
    for step in ctx.steps(cfg.steps, track=track, log_every=5):
        (real,) = batches.batch(step)
        z = torch.randn(len(real), 2, generator=ctx.rng("noise", step))
        fake = generator(z)
        real_logit, fake_logit = discriminator(real), discriminator(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
                  + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        fake_logit = discriminator(fake)
        g_loss = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        ctx.log(step, d_loss=d_loss.item(), g_loss=g_loss.item())
    _figure(ctx, "d_loss")
    with torch.no_grad():
        radius = generator(torch.randn(2000, 2, generator=ctx.rng("eval"))).norm(dim=1).mean()
    return Result(metrics={"mean_radius": radius.item()},
                  claims=[Claim("radius_error", "Samples move towards the ring of radius 2.",
                                abs(radius.item() - 2.0), "<", 1.5, source="project")])


def run_dip(cfg: Config, ctx) -> Result:
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16),
                            indexing="ij")
    clean = (torch.sin(3 * xx) * torch.cos(2 * yy))[None, None]  # (1, 1, 16, 16)
    noisy = clean + 0.3 * torch.randn(clean.shape, generator=ctx.rng("noise"))
    code = torch.randn(1, 8, 16, 16, generator=ctx.rng("code"))  # fixed network input
    ctx.manual_seed("init")
    net = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(16, 1, 3, padding=1))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    for step in ctx.steps(cfg.steps, track={"net": net, "optimizer": opt}, log_every=5):
        out = net(code)
        loss = F.mse_loss(out, noisy)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if ctx.due(step):
            ctx.log(step, loss=loss.item(), mse_to_clean=F.mse_loss(out, clean).item())
    _figure(ctx, "mse_to_clean")
    final = F.mse_loss(net(code), clean).item()
    return Result(metrics={"mse_to_clean": final},
                  claims=[Claim("mse_to_clean", "The fitted image is closer to the clean one "
                                "than the noisy input (MSE ratio).",
                                final / F.mse_loss(noisy, clean).item(), "<", 1.0,
                                source="project")])


def run_tbptt(cfg: Config, ctx) -> Result:
    text = torch.tensor([0, 1, 2, 3, 2, 1] * 40)  # a periodic sequence over 4 symbols
    chunk = 12
    chunks = len(text) // (chunk + 1)
    ctx.manual_seed("init")
    rnn, head = torch.nn.RNN(4, 16, batch_first=True), torch.nn.Linear(16, 4)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=cfg.lr)
    state = {"hidden": torch.zeros(1, 1, 16)}  # carried across steps, checkpointed
    for step in ctx.steps(cfg.steps, track={"rnn": rnn, "head": head, "optimizer": opt},
                          state=state, log_every=5):
        i = step % chunks
        if i == 0:
            state["hidden"] = torch.zeros(1, 1, 16)  # start of the sequence again
        piece = text[i * chunk: i * chunk + chunk + 1]
        x = F.one_hot(piece[:-1], 4).float()[None]  # (1, T, 4)
        out, hidden = rnn(x, state["hidden"])
        loss = F.cross_entropy(head(out)[0], piece[1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        state["hidden"] = hidden.detach()  # truncate back-propagation here
        ctx.log(step, loss=loss.item())
    _figure(ctx, "loss")
    final = ctx.series("loss")[1][-1]
    return Result(metrics={"final_loss": final},
                  claims=[Claim("final_loss", "The model beats the uniform guess (nats).",
                                final, "<", math.log(4), source="project")])


GAN = _experiment("loop-gan", run_gan)
DIP = _experiment("loop-dip", run_dip)
TBPTT = _experiment("loop-tbptt", run_tbptt)


@pytest.mark.parametrize("exp", [GAN, DIP, TBPTT], ids=lambda e: e.name)
def test_loop_shape_resumes_exactly(exp, tmp_path):
    _, reference = run_experiment(exp, tier="smoke", out=tmp_path / "a")
    assert reference["claims"] and reference["metrics"]["train_seconds"] > 0
    with pytest.raises(RunInterrupted):
        run_experiment(exp, tier="smoke", out=tmp_path / "b", stop_at_step=23)
    run_dir = next((tmp_path / "b" / exp.name).iterdir())
    _, resumed = resume_experiment(run_dir)
    assert_same_results(resumed, reference)
