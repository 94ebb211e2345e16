"""Parity of deepnotes.optim with torch.optim; the Optimizer contract (state, devices, errors)."""

from __future__ import annotations

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.optim import SGD, AdaGrad, Adam, AveragedSGD

STEPS = 200
SHAPES = [(5, 3), (7,), (2, 3, 4), ()]


def _make_params(dtype=torch.float64, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype).to(device).requires_grad_() for s in SHAPES]


def _set_grads(params, step, skip_last_every=0):
    """Gradients depending on the parameters and on the step: g = 0.5 * theta + noise_t."""
    g = torch.Generator().manual_seed(1000 + step)
    for i, p in enumerate(params):
        if skip_last_every and i == len(params) - 1 and step % skip_last_every == 0:
            p.grad = None  # this parameter took no part in the loss this step
            continue
        noise = torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device)
        p.grad = 0.5 * p.detach() + noise


def _run(make_opt, params, steps, start=0, skip_last_every=0):
    opt = make_opt(params)
    for t in range(start, start + steps):
        _set_grads(params, t, skip_last_every)
        opt.step()
    return opt


# (ours, torch reference) pairs; each pair must produce the same iterates.
PAIRS = {
    "sgd": (lambda p, fe: SGD(p, lr=0.05, foreach=fe), lambda p: torch.optim.SGD(p, lr=0.05)),
    "momentum": (lambda p, fe: SGD(p, lr=0.02, momentum=0.9, foreach=fe),
                 lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9)),
    "nesterov+wd": (lambda p, fe: SGD(p, lr=0.02, momentum=0.8, nesterov=True,
                                      weight_decay=1e-2, foreach=fe),
                    lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.8, nesterov=True,
                                              weight_decay=1e-2)),
    "averaged-sgd": (lambda p, fe: AveragedSGD(p, lr=0.02, momentum=0.9, start=10, foreach=fe),
                     lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9)),
    "adagrad": (lambda p, fe: AdaGrad(p, lr=0.1, foreach=fe),
                lambda p: torch.optim.Adagrad(p, lr=0.1)),
    "adagrad+wd+init": (lambda p, fe: AdaGrad(p, lr=0.1, eps=1e-6, weight_decay=1e-2,
                                              initial_accumulator_value=0.1, foreach=fe),
                        lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-6, weight_decay=1e-2,
                                                      initial_accumulator_value=0.1)),
    "adam": (lambda p, fe: Adam(p, lr=1e-2, foreach=fe), lambda p: torch.optim.Adam(p, lr=1e-2)),
    "adam+wd+betas": (lambda p, fe: Adam(p, lr=1e-2, betas=(0.8, 0.99), eps=1e-6,
                                         weight_decay=1e-2, foreach=fe),
                      lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.99), eps=1e-6,
                                                 weight_decay=1e-2)),
}


@pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "per-tensor"])
@pytest.mark.parametrize("name", list(PAIRS))
def test_parity_with_torch_200_steps_float64(name, foreach):
    ours, reference = PAIRS[name]
    p_ours, p_ref = _make_params(), _make_params()
    _run(lambda p: ours(p, foreach), p_ours, STEPS, skip_last_every=7)
    _run(reference, p_ref, STEPS, skip_last_every=7)
    for a, b in zip(p_ours, p_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)
    # The run moved far from the start, so matching is not trivial.
    assert max((a - b).abs().max().item() for a, b in
               zip(p_ours, _make_params(), strict=True)) > 0.1


@pytest.mark.parametrize("name", ["momentum", "adagrad", "adam"])
def test_state_matches_torch_state(name):
    """Same state entries as torch (momentum buffer, sum, exp_avg, exp_avg_sq) after 50 steps."""
    ours, reference = PAIRS[name]
    p_ours, p_ref = _make_params(), _make_params()
    o = _run(lambda p: ours(p, True), p_ours, 50)
    r = _run(reference, p_ref, 50)
    for a, b in zip(p_ours, p_ref, strict=True):
        for key, value in r.state[b].items():
            if key == "step":
                assert o.state[a]["step"] == int(value.item())
            else:
                torch.testing.assert_close(o.state[a][key], value, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda p, fe: SGD(p, lr=0.05, momentum=0.9, foreach=fe),
    lambda p, fe: AveragedSGD(p, lr=0.05, momentum=0.5, foreach=fe),
    lambda p, fe: AdaGrad(p, lr=0.1, foreach=fe),
    lambda p, fe: Adam(p, lr=1e-2, weight_decay=0.1, foreach=fe),
], ids=["sgd", "averaged", "adagrad", "adam"])
def test_foreach_equals_per_tensor_with_mixed_dtypes(make):
    """The fused path splits a mixed float32/float64 group into buckets and agrees with the loop."""
    def params():
        ps = _make_params()
        ps[1] = ps[1].detach().float().requires_grad_()
        ps[3] = ps[3].detach().float().requires_grad_()
        return ps
    a, b = params(), params()
    _run(lambda p: make(p, True), a, 30)
    _run(lambda p: make(p, False), b, 30)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)


ALL = {
    "sgd": lambda p: SGD(p, lr=0.1, momentum=0.9),
    "averaged": lambda p: AveragedSGD(p, lr=0.1, start=2),
    "adagrad": lambda p: AdaGrad(p, lr=0.1),
    "adagrad-window": lambda p: AdaGrad(p, lr=0.1, window=3),
    "adam": lambda p: Adam(p, lr=0.1),
}


@pytest.mark.parametrize("name", list(ALL))
def test_sparse_gradient_rejected(name):
    emb = torch.nn.Embedding(10, 3, sparse=True)
    emb(torch.tensor([1, 2])).sum().backward()
    opt = ALL[name](emb.parameters())
    with pytest.raises(ValueError, match="sparse"):
        opt.step()


@pytest.mark.parametrize("name", list(ALL))
def test_parameter_without_gradient_is_skipped(name):
    used = torch.randn(4, requires_grad=True)
    unused = torch.randn(3, requires_grad=True)
    before = unused.detach().clone()
    opt = ALL[name]([used, unused])
    for _ in range(5):
        opt.zero_grad()
        (used**2).sum().backward()
        opt.step()
    assert torch.equal(unused, before)
    assert len(opt.state[unused]) == 0
    assert len(opt.state[used]) > 0


@pytest.mark.parametrize("make", [
    lambda p: SGD(p, lr=-0.1),
    lambda p: SGD(p, lr=0.1, momentum=1.0),
    lambda p: SGD(p, lr=0.1, nesterov=True),
    lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True, notes_velocity=True),
    lambda p: SGD(p, lr=float("nan")),
    lambda p: AveragedSGD(p, lr=0.1, start=-1),
    lambda p: AdaGrad(p, lr=0.1, eps=-1.0),
    lambda p: AdaGrad(p, lr=0.1, window=0),
    lambda p: Adam(p, lr=1e-3, betas=(0.9, 1.0)),
    lambda p: Adam(p, lr=1e-3, betas=(0.9,)),
    lambda p: Adam(p, lr=1e-3, weight_decay=-1e-4),
])
def test_invalid_hyperparameters_raise(make):
    with pytest.raises(ValueError):
        make([torch.zeros(2, requires_grad=True)])


@pytest.mark.parametrize("name", list(ALL))
def test_state_dict_round_trip_continues_identically(name):
    """Save mid-run (torch.save, weights_only load), continue: bit-identical to no interruption."""
    reference = _make_params(dtype=torch.float32)
    opt = _run(ALL[name], reference, 20)
    resumed = _make_params(dtype=torch.float32)
    first = _run(ALL[name], resumed, 8)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    saved_values = [p.detach().clone() for p in resumed]
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    fresh = [v.clone().requires_grad_() for v in saved_values]
    second = ALL[name](fresh)
    second.load_state_dict(state)
    for t in range(8, 20):
        _set_grads(fresh, t)
        second.step()
    for a, b in zip(reference, fresh, strict=True):
        assert torch.equal(a, b)
    if isinstance(opt, AveragedSGD):
        for a, b in zip(reference, fresh, strict=True):
            assert torch.equal(opt.state[a]["average"], second.state[b]["average"])


def test_checkpoint_through_run_context_resumes_exactly(tmp_path):
    """ctx.steps(track={"optimizer": opt}) under Fabric: interrupt at step 7, resume, same end."""
    from lightning.fabric import Fabric

    from deepnotes.engine import RunContext, RunInterrupted

    def train(run_dir, resume, stop_at_step):
        fabric = Fabric(accelerator="cpu", devices=1)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        opt = AveragedSGD(model.parameters(), lr=0.05, momentum=0.9, start=3)
        model, opt = fabric.setup(model, opt)
        ctx = RunContext(run_dir, fabric, seed=0, tier="smoke", resume=resume,
                         stop_at_step=stop_at_step)
        x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
        y = x.sum(1, keepdim=True).sin()
        try:
            for step in ctx.steps(15, track={"model": model, "optimizer": opt}):
                noise = 0.1 * torch.randn(32, 1)  # global RNG: restored on resume
                loss = ((model(x) - y - noise) ** 2).mean()
                opt.zero_grad()
                fabric.backward(loss)
                opt.step()
                ctx.log(step, loss=loss.item())
        finally:
            ctx.close()
        with opt.averaged():
            averaged = [p.detach().clone() for p in model.parameters()]
        return [p.detach().clone() for p in model.parameters()], averaged

    straight, straight_avg = train(tmp_path / "a", False, None)
    (tmp_path / "b").mkdir()
    with pytest.raises(RunInterrupted):
        train(tmp_path / "b", False, 7)
    resumed, resumed_avg = train(tmp_path / "b", True, None)
    for a, b in zip(straight + straight_avg, resumed + resumed_avg, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", list(ALL))
def test_fabric_wrapped_optimizer_equals_plain(name):
    from lightning.fabric import Fabric

    def train(wrap):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        opt = ALL[name](model.parameters())
        if wrap:
            model, opt = Fabric(accelerator="cpu", devices=1).setup(model, opt)
        x = torch.randn(16, 3, generator=torch.Generator().manual_seed(2))
        for _ in range(6):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        return [p.detach().clone() for p in model.parameters()], opt.state_dict()

    (plain, plain_state), (wrapped, wrapped_state) = train(False), train(True)
    for a, b in zip(plain, wrapped, strict=True):
        assert torch.equal(a, b)
    assert plain_state["param_groups"] == wrapped_state["param_groups"]


def test_averaged_swap_through_fabric_wrapper():
    """The wrapper keeps its own __dict__: the swap flag must still be shared with the original."""
    from lightning.fabric import Fabric

    model = torch.nn.Linear(2, 1)
    opt = AveragedSGD(model.parameters(), lr=0.1)
    model, wrapped = Fabric(accelerator="cpu", devices=1).setup(model, opt)
    for _ in range(3):
        wrapped.zero_grad()
        model(torch.ones(1, 2)).sum().backward()
        wrapped.step()
    wrapped.swap_average()
    assert opt.is_swapped and wrapped.is_swapped
    with pytest.raises(RuntimeError, match="swapped"):
        opt.step()
    wrapped.swap_average()
    assert not opt.is_swapped


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["momentum", "averaged-sgd", "adagrad", "adam"])
@pytest.mark.parametrize("foreach", [True, False])
def test_cuda_matches_torch_on_cuda(name, foreach):
    ours, reference = PAIRS[name]
    p_ours, p_ref = _make_params(device="cuda"), _make_params(device="cuda")
    _run(lambda p: ours(p, foreach), p_ours, STEPS)
    _run(reference, p_ref, STEPS)
    for a, b in zip(p_ours, p_ref, strict=True):
        assert a.device.type == "cuda"
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(shapes=st.lists(st.lists(st.integers(1, 4), max_size=3), min_size=1, max_size=5),
       kind=st.sampled_from(["sgd", "nesterov", "averaged", "adagrad", "adam"]),
       weight_decay=st.sampled_from([0.0, 0.1]), seed=st.integers(0, 1000))
def test_foreach_and_per_tensor_paths_agree_on_any_parameter_list(shapes, kind, weight_decay,
                                                                 seed):
    """Property: the fused path is the per-tensor path, whatever the tensors' shapes."""
    make = {
        "sgd": lambda p, fe: SGD(p, lr=0.1, weight_decay=weight_decay, foreach=fe),
        "nesterov": lambda p, fe: SGD(p, lr=0.1, momentum=0.9, nesterov=True,
                                      weight_decay=weight_decay, foreach=fe),
        "averaged": lambda p, fe: AveragedSGD(p, lr=0.1, momentum=0.5, start=1,
                                              weight_decay=weight_decay, foreach=fe),
        "adagrad": lambda p, fe: AdaGrad(p, lr=0.1, weight_decay=weight_decay, foreach=fe),
        "adam": lambda p, fe: Adam(p, lr=0.1, weight_decay=weight_decay, foreach=fe),
    }[kind]
    g = torch.Generator().manual_seed(seed)
    start = [torch.randn(tuple(s), generator=g, dtype=torch.float64) for s in shapes]
    results = []
    for fe in (True, False):
        params = [x.clone().requires_grad_() for x in start]
        opt = make(params, fe)
        grads = torch.Generator().manual_seed(seed + 1)
        for _ in range(4):
            for p in params:
                p.grad = torch.randn(p.shape, generator=grads, dtype=torch.float64)
            opt.step()
        results.append(params)
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
