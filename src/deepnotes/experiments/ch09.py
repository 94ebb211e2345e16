"""Experiments of notes chapter 9: the explicit list the registry reads."""

from deepnotes.experiments import (
    iterate_averaging,
    langevin_double_well,
    optimizer_race,
    sgd_temperature,
    sharp_flat_minima,
)
from deepnotes.experiments.base import Experiment

EXPERIMENTS: list[Experiment] = [
    langevin_double_well.EXPERIMENT,
    sgd_temperature.EXPERIMENT,
    sharp_flat_minima.EXPERIMENT,
    optimizer_race.EXPERIMENT,
    iterate_averaging.EXPERIMENT,
]
