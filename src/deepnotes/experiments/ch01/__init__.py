"""Notes chapter 1: Information theory.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

from deepnotes.experiments.ch01 import (
    cross_entropy_mle,
)

TITLE = "Information theory"

EXPERIMENTS = [
    cross_entropy_mle.EXPERIMENT,
]
