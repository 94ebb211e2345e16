"""Step time of deepnotes.optim against torch.optim on a ~10.5M-parameter model.

Only ``optimizer.step()`` is timed (gradients are fixed random tensors), so the numbers are
the optimizers' own cost: for these memory-bound updates, passes over parameter-sized
buffers. Every variant gets its own copy of the model; rounds are interleaved (variant A,
B, C, ... then again) so that load from other processes hits all variants alike; the table
reports the median ms/step over rounds and the ratio to torch's ``foreach=True`` path.

    .venv/bin/python benchmarks/bench_optim.py [--steps 10] [--rounds 5] [--threads N]
        [--only adam]
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import typer

from deepnotes.optim import SGD, AdaGrad, Adam, AveragedSGD


def make_model(generator: torch.Generator) -> list[torch.Tensor]:
    """Parameters of a 2048-2048-2048-512-2048 MLP: 10,492,416 numbers in 8 tensors."""
    sizes = [(2048, 2048), (2048, 2048), (512, 2048), (2048, 512)]
    params = []
    for out_f, in_f in sizes:
        params.append(torch.randn(out_f, in_f, generator=generator) * in_f**-0.5)
        params.append(torch.zeros(out_f))
    for p in params:
        p.requires_grad_()
        p.grad = torch.randn(p.shape, generator=generator) * 1e-3
    return params


Factory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]

CASES: dict[str, dict[str, Factory]] = {
    "SGD momentum 0.9": {
        "deepnotes": lambda p: SGD(p, lr=1e-2, momentum=0.9),
        "deepnotes per-tensor": lambda p: SGD(p, lr=1e-2, momentum=0.9, foreach=False),
        "torch foreach": lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, foreach=True),
        "torch for-loop": lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, foreach=False),
    },
    # torch has no arithmetic-mean SGD; ASGD (averaging from t0=0, its own step-size decay)
    # does comparable work, plain SGD with momentum is the floor.
    "AveragedSGD momentum 0.9": {
        "deepnotes": lambda p: AveragedSGD(p, lr=1e-2, momentum=0.9),
        "deepnotes per-tensor": lambda p: AveragedSGD(p, lr=1e-2, momentum=0.9, foreach=False),
        "torch foreach": lambda p: torch.optim.ASGD(p, lr=1e-2, t0=0, foreach=True),
        "torch SGD mom. foreach": lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9,
                                                            foreach=True),
    },
    "AdaGrad": {
        "deepnotes": lambda p: AdaGrad(p, lr=1e-2),
        "deepnotes per-tensor": lambda p: AdaGrad(p, lr=1e-2, foreach=False),
        "torch foreach": lambda p: torch.optim.Adagrad(p, lr=1e-2, foreach=True),
        "torch for-loop": lambda p: torch.optim.Adagrad(p, lr=1e-2, foreach=False),
    },
    "Adam": {
        "deepnotes": lambda p: Adam(p, lr=1e-3),
        "deepnotes per-tensor": lambda p: Adam(p, lr=1e-3, foreach=False),
        "torch foreach": lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True),
        "torch for-loop": lambda p: torch.optim.Adam(p, lr=1e-3, foreach=False),
    },
}


def time_steps(opt: torch.optim.Optimizer, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        opt.step()
    return (time.perf_counter() - start) / steps * 1e3  # ms per step


def main(steps: int = 10, rounds: int = 5, threads: int = 0, only: str = "") -> None:
    """Print the table; ``--only`` keeps the cases whose name contains that text."""
    if threads > 0:
        torch.set_num_threads(threads)
    n = sum(p.numel() for p in make_model(torch.Generator().manual_seed(0)))
    print(f"model: {n:,} parameters (float32), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {rounds} interleaved rounds x {steps} steps")
    print(f"{'optimizer':38s} {'variant':22s} {'ms/step':>9s} {'vs torch foreach':>17s}")
    for case, variants in CASES.items():
        if only and only.lower() not in case.lower():
            continue
        opts = {}
        for name, factory in variants.items():
            opts[name] = factory(make_model(torch.Generator().manual_seed(0)))
            opts[name].step()  # create state outside the timing
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, opt in opts.items():
                times[name].append(time_steps(opt, steps))
        medians = {name: statistics.median(t) for name, t in times.items()}
        for name, ms in medians.items():
            ratio = ms / medians["torch foreach"]
            print(f"{case:38s} {name:22s} {ms:9.2f} {ratio:16.2f}x")
        del opts


if __name__ == "__main__":
    typer.run(main)
