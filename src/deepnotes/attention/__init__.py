"""Attention (notes ch. 6): score functions, masking, soft and hard attention, and the models
built on them."""

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

__all__ = [
    "AdditiveScore", "Attention", "AttentionOutput", "BilinearScore", "DotProductScore",
    "HardAttentionOutput", "ScaledDotProductScore", "hard_attention", "masked_softmax",
]
