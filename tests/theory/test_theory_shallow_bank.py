"""The bank of shallow relu nets: parity with single nets, readout, the width lower bound."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.theory import (
    ScalarReluNet,
    ShallowReluBank,
    hat,
    iterate,
    sawtooth_lower_bound_width,
)


def _single_nets(bank: ShallowReluBank) -> list[ScalarReluNet]:
    nets = []
    for j, width in enumerate(bank.widths):
        s = slice(bank.start[j], bank.start[j] + width)
        nets.append(ScalarReluNet([bank.w[s, None].tolist(), [bank.a[s].tolist()]],
                                  [bank.b[s].tolist(), [bank.c[j].item()]]))
    return nets


def test_bank_matches_separate_nets_values_and_gradients():
    widths = [3, 1, 5, 3, 2, 5]
    bank = ShallowReluBank(widths, torch.Generator().manual_seed(0), lo=-1, hi=2,
                           dtype=torch.float64)
    with torch.no_grad():
        bank.a.copy_(torch.randn(sum(widths), dtype=torch.float64))
        bank.c.copy_(torch.randn(len(widths), dtype=torch.float64))
    x = torch.linspace(-2, 3, 301, dtype=torch.float64)
    target = torch.sin(3 * x)
    out = bank(x)
    assert out.shape == (len(widths), x.shape[0])
    loss = ((out - target) ** 2).mean(1).sum()
    loss.backward()
    for j, net in enumerate(_single_nets(bank)):
        y = net(x)
        torch.testing.assert_close(out[j], y.detach())
        ((y - target) ** 2).mean().backward()
        first, last = net.layers
        s = slice(bank.start[j], bank.start[j] + widths[j])
        torch.testing.assert_close(bank.w.grad[s], first.weight.grad[:, 0])
        torch.testing.assert_close(bank.b.grad[s], first.bias.grad)
        torch.testing.assert_close(bank.a.grad[s], last.weight.grad[0])
        torch.testing.assert_close(bank.c.grad[j], last.bias.grad[0])


def test_initial_breakpoints_lie_in_the_interval():
    bank = ShallowReluBank([50, 50], torch.Generator().manual_seed(1), lo=0.25, hi=0.75)
    knots = -bank.b / bank.w
    assert bool(((knots >= 0.25) & (knots <= 0.75)).all())
    assert set(bank.w.abs().tolist()) == {1.0}


def test_fit_readout_is_least_squares_per_model():
    bank = ShallowReluBank([4, 8], torch.Generator().manual_seed(2), dtype=torch.float64)
    x = torch.linspace(0, 1, 101, dtype=torch.float64)
    y = torch.stack([x ** 2, torch.cos(4 * x)])
    bank.fit_readout(x, y)
    h = bank.hidden(x)
    for j, width in enumerate(bank.widths):
        s = slice(bank.start[j], bank.start[j] + width)
        design = torch.cat([h[s].T, torch.ones(101, 1, dtype=torch.float64)], dim=1)
        residual = y[j] - bank(x)[j].detach()
        # normal equations: the residual is orthogonal to every feature
        assert design.T.matmul(residual).abs().max().item() < 1e-8


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(0, 2 ** 16))
def test_nets_below_lower_bound_cannot_beat_one_half(T, seed):
    """Counting theorem: fewer than 2^(T-1) units -> sup error >= 1/2 against hat^T."""
    width = sawtooth_lower_bound_width(T) - 1
    if width < 1:
        return
    gen = torch.Generator().manual_seed(seed)
    bank = ShallowReluBank([width] * 4, gen, dtype=torch.float64)
    with torch.no_grad():
        bank.a.copy_(3 * torch.randn(bank.a.shape, generator=gen, dtype=torch.float64))
    x = torch.arange(2 ** T + 1, dtype=torch.float64) / 2 ** T  # the peaks and valleys
    y = iterate(hat, x, T)
    bank.fit_readout(x, y.expand(4, -1))  # also the least-squares best output layer
    err = (bank(x).detach() - y).abs().max(dim=1).values
    assert bool((err >= 0.5 - 1e-9).all())


def test_lower_bound_values():
    assert [sawtooth_lower_bound_width(T) for T in (1, 2, 3, 6)] == [1, 2, 4, 32]
