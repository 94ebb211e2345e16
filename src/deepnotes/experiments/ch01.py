"""Experiments of notes chapter 1: the explicit list the registry reads."""

from deepnotes.experiments import cross_entropy_mle
from deepnotes.experiments.base import Experiment

EXPERIMENTS: list[Experiment] = [
    cross_entropy_mle.EXPERIMENT,
]
