"""The registry: an explicit dict of every experiment, in notes order.

Each chapter module lists its experiments; nothing registers itself at import time.
A duplicate name raises.
"""

from __future__ import annotations

from deepnotes.experiments import ch01, ch02, ch03, ch04, ch09, mlp_fashion
from deepnotes.experiments.base import Experiment


def _build(experiments: list[Experiment]) -> dict[str, Experiment]:
    registry: dict[str, Experiment] = {}
    for exp in experiments:
        if exp.name in registry:
            raise ValueError(f"duplicate experiment name {exp.name!r} ({exp.module})")
        registry[exp.name] = exp
    return registry


REGISTRY: dict[str, Experiment] = _build(
    [
        *ch01.EXPERIMENTS,
        *ch02.EXPERIMENTS,
        mlp_fashion.EXPERIMENT,
        *ch03.EXPERIMENTS,
        *ch04.EXPERIMENTS,
        *ch09.EXPERIMENTS,
    ]
)


def get(name: str) -> Experiment:
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}. Known: {', '.join(REGISTRY)}")
    return REGISTRY[name]
