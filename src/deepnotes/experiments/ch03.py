"""Experiments of notes chapter 3: the explicit list the registry reads."""

from deepnotes.experiments import (
    depth_separation,
    sawtooth_pieces,
    three_neuron_training,
    universal_approximation,
)
from deepnotes.experiments.base import Experiment

EXPERIMENTS: list[Experiment] = [
    universal_approximation.EXPERIMENT,
    sawtooth_pieces.EXPERIMENT,
    depth_separation.EXPERIMENT,
    three_neuron_training.EXPERIMENT,
]
