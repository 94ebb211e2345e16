"""Notes chapter 6: Attention.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

from deepnotes.experiments.ch06 import (
    attention_complexity,
    bert_qa,
    captioning,
    gpt_shakespeare,
    nmt,
    self_attention,
    transformer_nmt,
)

TITLE = "Attention"

EXPERIMENTS = [
    nmt.EXPERIMENT,
    nmt.EXPERIMENT_FR,
    captioning.EXPERIMENT,
    self_attention.EXPERIMENT,
    transformer_nmt.EXPERIMENT,
    attention_complexity.EXPERIMENT,
    gpt_shakespeare.EXPERIMENT,
    bert_qa.EXPERIMENT,
]
