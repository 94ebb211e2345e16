"""Training engine: run folders, checkpoints, progress, the fit helper."""

from deepnotes.engine.fit import evaluate, fit
from deepnotes.engine.run import NonFiniteLoss, RunContext, RunInterrupted

__all__ = ["RunContext", "RunInterrupted", "NonFiniteLoss", "fit", "evaluate"]
