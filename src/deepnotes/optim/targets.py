"""Steps to a target: how optimizers are compared by speed (notes 9.3)."""

from __future__ import annotations

from collections.abc import Sequence


def steps_to_target(steps: Sequence[int], values: Sequence[float], target: float, budget: int
                    ) -> tuple[int, bool]:
    """First recorded step (counted from 1) whose value is <= ``target``.

    Args:
        steps: step numbers counted from 0 (the step after which each value was measured).
        values: the measured values (a loss), one per step.
        target: the level to reach.
        budget: returned when no value reaches ``target``.
    Returns:
        ``(steps_needed, reached)``; ``(budget, False)`` if the target is never reached. Using
        the budget then makes a "fewer steps than" comparison conservative for the method
        that did reach it.
    """
    if len(steps) != len(values):
        raise ValueError(f"steps and values differ in length: {len(steps)} != {len(values)}")
    for step, value in zip(steps, values, strict=True):
        if value <= target:
            return step + 1, True
    return budget, False


__all__ = ["steps_to_target"]
