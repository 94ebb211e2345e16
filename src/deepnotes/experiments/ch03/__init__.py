"""Notes chapter 3: Deep neural network theory.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

from deepnotes.experiments.ch03 import (
    depth_separation,
    sawtooth_pieces,
    three_neuron_training,
    universal_approximation,
)

TITLE = "Deep neural network theory"

EXPERIMENTS = [
    universal_approximation.EXPERIMENT,
    sawtooth_pieces.EXPERIMENT,
    depth_separation.EXPERIMENT,
    three_neuron_training.EXPERIMENT,
]
