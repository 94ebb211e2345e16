"""Notes chapter 6: Attention.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

from deepnotes.experiments.ch06 import nmt

TITLE = "Attention"

EXPERIMENTS = [
    nmt.EXPERIMENT,
    nmt.EXPERIMENT_FR,
]
