"""Experiments of notes chapter 2: the explicit list the registry reads."""

from deepnotes.experiments.base import Experiment

EXPERIMENTS: list[Experiment] = []
