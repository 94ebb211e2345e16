"""Notes chapter 4: Translation invariance and convolution.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

from deepnotes.experiments.ch04 import (
    cnn_fashion,
    conv_arithmetic,
    convolution_theorem,
    other_invariances,
    shift_equivariance,
)

TITLE = "Translation invariance and convolution"

EXPERIMENTS = [
    convolution_theorem.EXPERIMENT,
    conv_arithmetic.EXPERIMENT,
    cnn_fashion.EXPERIMENT,
    shift_equivariance.EXPERIMENT,
    other_invariances.EXPERIMENT,
]
