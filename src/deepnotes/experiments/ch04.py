"""Experiments of notes chapter 4: the explicit list the registry reads.

``cnn-fashion`` comes before the experiments that load its artifact, so ``deepnotes report``
builds the CNN before it is needed.
"""

from deepnotes.experiments import (
    cnn_fashion,
    conv_arithmetic,
    convolution_theorem,
    other_invariances,
    shift_equivariance,
)
from deepnotes.experiments.base import Experiment

EXPERIMENTS: list[Experiment] = [
    convolution_theorem.EXPERIMENT,
    conv_arithmetic.EXPERIMENT,
    cnn_fashion.EXPERIMENT,
    shift_equivariance.EXPERIMENT,
    other_invariances.EXPERIMENT,
]
