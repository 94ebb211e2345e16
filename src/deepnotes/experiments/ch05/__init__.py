"""Notes chapter 5: Recurrent networks.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

from deepnotes.experiments.ch05 import char_lm

TITLE = "Recurrent networks"

EXPERIMENTS = [
    char_lm.EXPERIMENT,
]
