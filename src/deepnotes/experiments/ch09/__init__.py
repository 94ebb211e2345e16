"""Notes chapter 9: Optimization.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

from deepnotes.experiments.ch09 import (
    iterate_averaging,
    langevin_double_well,
    optimizer_race,
    sgd_temperature,
    sharp_flat_minima,
)

TITLE = "Optimization"

EXPERIMENTS = [
    langevin_double_well.EXPERIMENT,
    sgd_temperature.EXPERIMENT,
    sharp_flat_minima.EXPERIMENT,
    optimizer_race.EXPERIMENT,
    iterate_averaging.EXPERIMENT,
]
