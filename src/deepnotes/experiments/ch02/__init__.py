"""Notes chapter 2: Neural network model.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

from deepnotes.experiments.ch02 import (
    linear_collapse,
    manual_backprop,
    minibatch_gradient,
    mlp_fashion,
    perceptron,
    regularization,
    standardization,
)

TITLE = "Neural network model"

EXPERIMENTS = [
    perceptron.EXPERIMENT,
    linear_collapse.EXPERIMENT,
    manual_backprop.EXPERIMENT,
    minibatch_gradient.EXPERIMENT,
    standardization.EXPERIMENT,
    regularization.EXPERIMENT,
    mlp_fashion.EXPERIMENT,
]
