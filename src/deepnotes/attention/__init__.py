"""Attention (notes ch. 6).

``scores`` (6.2: dot, scaled, additive, bilinear scores; masks; soft and hard read-out),
``seq2seq`` (6.1, Example 6.1: bi-GRU encoder, Bahdanau decoder or the fixed vector, greedy
and beam decoding), ``captioning`` (6.2.1: Show, Attend and Tell), ``multihead`` (6.2.2-6.2.3:
torch's ``MultiheadAttention`` interface), ``positional`` and ``transformer`` (6.3-6.3.1),
``complexity`` (the table of 6.3, counted), ``bert`` and ``gpt`` (6.3.2: masked-LM and
next-sentence pretraining, span QA; a decoder-only character model).
"""

from deepnotes.attention.bert import (
    BertEncoder,
    BertForPretraining,
    BertForQA,
    best_spans,
    qa_loss,
)
from deepnotes.attention.captioning import (
    MODES,
    Captioner,
    CaptionOutput,
    GridEncoder,
    attention_entropy,
    doubly_stochastic_penalty,
    reinforce_surrogate,
)
from deepnotes.attention.complexity import (
    count_flops,
    count_saved,
    layer_cost,
    loglog_slope,
    max_path_length,
    sequential_operations,
)
from deepnotes.attention.gpt import (
    GPT,
    Block,
    CausalSelfAttention,
    KVCache,
    next_token,
    parameter_groups,
)
from deepnotes.attention.multihead import MultiheadAttention, softmax_with_empty_rows
from deepnotes.attention.positional import (
    SinusoidalPositionalEncoding,
    shift_matrix,
    sinusoidal_encoding,
)
from deepnotes.attention.scores import (
    AdditiveScore,
    Attention,
    AttentionOutput,
    BilinearScore,
    DotProductScore,
    HardAttentionOutput,
    ScaledDotProductScore,
    hard_attention,
    masked_softmax,
)
from deepnotes.attention.transformer import (
    DecoderLayer,
    EncoderLayer,
    PositionwiseFFN,
    Transformer,
    causal_mask,
)

__all__ = [
    "AdditiveScore", "Attention", "AttentionOutput", "BilinearScore", "DotProductScore",
    "HardAttentionOutput", "ScaledDotProductScore", "hard_attention", "masked_softmax",
    "MODES", "CaptionOutput", "Captioner", "GridEncoder", "attention_entropy",
    "doubly_stochastic_penalty", "reinforce_surrogate", "count_flops", "count_saved",
    "layer_cost", "loglog_slope", "max_path_length", "sequential_operations",
    "MultiheadAttention", "softmax_with_empty_rows", "SinusoidalPositionalEncoding",
    "shift_matrix", "sinusoidal_encoding", "Transformer", "EncoderLayer", "DecoderLayer",
    "PositionwiseFFN", "causal_mask", "GPT", "Block", "CausalSelfAttention", "KVCache",
    "next_token", "parameter_groups", "BertEncoder", "BertForPretraining", "BertForQA",
    "best_spans", "qa_loss",
]
