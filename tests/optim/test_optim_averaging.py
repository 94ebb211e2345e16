"""AveragedSGD: the running mean is the arithmetic mean of the iterates; swaps are exact."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.optim import AveragedSGD


def _train(steps, start, momentum=0.0, foreach=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    theta = [torch.randn(4, 3, generator=g, dtype=torch.float64).requires_grad_(),
             torch.randn(5, generator=g, dtype=torch.float64).requires_grad_()]
    opt = AveragedSGD(theta, lr=0.1, momentum=momentum, start=start, foreach=foreach)
    iterates = []
    for _ in range(steps):
        for p in theta:
            p.grad = p.detach() ** 3 + torch.randn(p.shape, generator=g, dtype=p.dtype)
        opt.step()
        iterates.append([p.detach().clone() for p in theta])
    return theta, opt, iterates


@settings(max_examples=25, deadline=None)
@given(steps=st.integers(1, 60), start=st.integers(0, 30), momentum=st.sampled_from([0.0, 0.9]),
       foreach=st.booleans())
def test_average_is_arithmetic_mean_of_iterates(steps, start, momentum, foreach):
    theta, opt, iterates = _train(steps, start, momentum, foreach)
    kept = iterates[start:]
    if not kept:
        assert all("average" not in opt.state[p] for p in theta)
        with pytest.raises(RuntimeError, match="no averaged iterate"):
            opt.swap_average()
        return
    for i, p in enumerate(theta):
        mean = torch.stack([it[i] for it in kept]).mean(0)
        torch.testing.assert_close(opt.state[p]["average"], mean, rtol=1e-12, atol=1e-12)
        assert opt.state[p]["n_averaged"] == len(kept)


def test_swap_is_exact_and_context_manager_restores():
    theta, opt, iterates = _train(40, 10)
    last = [p.detach().clone() for p in theta]
    average = [opt.state[p]["average"].clone() for p in theta]
    with opt.averaged():
        assert opt.is_swapped
        for p, a in zip(theta, average, strict=True):
            assert torch.equal(p, a)
    assert not opt.is_swapped
    for p, x, a in zip(theta, last, average, strict=True):
        assert torch.equal(p, x)
        assert torch.equal(opt.state[p]["average"], a)


def test_context_manager_swaps_back_on_error():
    theta, opt, _ = _train(5, 0)
    last = [p.detach().clone() for p in theta]
    with pytest.raises(KeyError), opt.averaged():
        raise KeyError("evaluation failed")
    assert not opt.is_swapped
    assert all(torch.equal(p, x) for p, x in zip(theta, last, strict=True))


def test_step_and_state_dict_refused_while_swapped():
    theta, opt, _ = _train(5, 0)
    opt.swap_average()
    with pytest.raises(RuntimeError, match="swapped"):
        opt.step()
    with pytest.raises(RuntimeError, match="swap back"):
        opt.state_dict()
    opt.swap_average()
    assert "state" in opt.state_dict()


def test_average_has_lower_variance_than_iterates_on_noisy_quadratic():
    """Polyak-Ruppert: on a noisy quadratic the mean of late iterates sits nearer the optimum."""
    torch.manual_seed(0)
    chains = torch.zeros(2000, dtype=torch.float64, requires_grad=True)  # 2000 independent runs
    opt = AveragedSGD([chains], lr=0.1, start=200)
    for _ in range(1200):
        chains.grad = chains.detach() + torch.randn(2000, dtype=torch.float64)  # grad of x^2/2
        opt.step()
    var_last = chains.detach().var().item()  # stationary: lr / (2 - lr) = 0.0526
    var_avg = opt.state[chains]["average"].var().item()  # ~ 1/1000 for 1000 averaged steps
    assert var_last == pytest.approx(0.1 / 1.9, rel=0.1)
    assert var_avg < var_last / 20


def test_param_groups_added_later_are_averaged_with_their_own_start():
    a = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = AveragedSGD([a], lr=1.0, start=1)
    opt.add_param_group({"params": [b], "start": 0})
    iterates = []
    for t in range(3):
        for p in (a, b):
            p.grad = torch.full((2,), -float(t + 1), dtype=torch.float64)
        opt.step()
        iterates.append(b.detach().clone())
    assert opt.state[a]["n_averaged"] == 2 and opt.state[b]["n_averaged"] == 3
    torch.testing.assert_close(opt.state[b]["average"], torch.stack(iterates).mean(0))
