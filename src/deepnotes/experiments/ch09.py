"""Experiments of notes chapter 9: the explicit list the registry reads."""

from deepnotes.experiments.base import Experiment

EXPERIMENTS: list[Experiment] = []
