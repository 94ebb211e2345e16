"""Experiments of notes chapter 4: the explicit list the registry reads."""

from deepnotes.experiments.base import Experiment

EXPERIMENTS: list[Experiment] = []
