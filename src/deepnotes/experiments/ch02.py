"""Experiments of notes chapter 2: the explicit list the registry reads."""

from deepnotes.experiments import (
    linear_collapse,
    manual_backprop,
    minibatch_gradient,
    perceptron,
    regularization,
    standardization,
)
from deepnotes.experiments.base import Experiment

EXPERIMENTS: list[Experiment] = [
    perceptron.EXPERIMENT,
    linear_collapse.EXPERIMENT,
    manual_backprop.EXPERIMENT,
    minibatch_gradient.EXPERIMENT,
    standardization.EXPERIMENT,
    regularization.EXPERIMENT,
]
