"""Training engine: run folders, checkpoints, logging, progress, threads, random streams,
the fit helper and the classifier evaluator.

``fit`` and ``evaluate`` are imported on first use: :mod:`deepnotes.data` uses this
package's file writer and random streams, and ``fit`` uses ``deepnotes.data``.
"""

from deepnotes.engine.run import NonFiniteLoss, RunContext, RunInterrupted, unwrap

__all__ = ["RunContext", "RunInterrupted", "NonFiniteLoss", "unwrap", "fit", "evaluate"]


def __getattr__(name: str):
    if name in ("fit", "evaluate"):
        from deepnotes.engine import training as _training

        return getattr(_training, name)
    raise AttributeError(f"module 'deepnotes.engine' has no attribute {name!r}")
