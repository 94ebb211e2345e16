"""Notes chapter 5: Recurrent networks.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

from deepnotes.experiments.ch05 import (
    bptt_by_hand,
    char_lm,
    long_range_memory,
    one_to_many,
    rnn_comparison,
    vanishing_gradients,
)

TITLE = "Recurrent networks"

EXPERIMENTS = [
    char_lm.EXPERIMENT,
    long_range_memory.EXPERIMENT,
    bptt_by_hand.EXPERIMENT,
    vanishing_gradients.EXPERIMENT,
    one_to_many.EXPERIMENT,
    rnn_comparison.EXPERIMENT,
]
