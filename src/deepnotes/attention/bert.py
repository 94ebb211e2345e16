"""BERT (notes 6.3.2; Devlin et al. 2019): a transformer encoder pretrained with a masked
language model and next-sentence prediction, fine-tuned for span question answering.

* :class:`BertEncoder`: token + learned position + segment embeddings (each N(0, 0.02^2), as
  in the paper's code), summed and layer-normalized, then ``num_layers`` of the chapter's
  :class:`~deepnotes.attention.transformer.EncoderLayer` (bidirectional: no causal mask;
  padding masked out of the keys), pre-norm with a final layer norm (stable in short CPU
  trainings). There is no sqrt(d_model) scaling of the embeddings (the paper's BERT has
  none; the layer norm after the sum puts all three at one scale).
* :class:`BertForPretraining`: the masked-LM head (dense, GELU, layer norm, then the
  decoder *tied* to the token embedding plus a bias) scores only the selected positions
  (labels != -100), and the next-sentence head is a linear map of the pooled ``[CLS]``
  vector (dense + tanh, the paper's pooler) to two logits, IsNext (0) / NotNext (1): the
  paper's binary task on one pair, not a choice between two candidate sentences (erratum
  to the notes).
* :class:`BertForQA`: a linear map of every token's final vector to a start and an end logit
  (``start_logits``, ``end_logits`` (N, L)); positions outside the context get -inf, so the
  softmax over positions (the loss) and the prediction range over the context only. The
  context tokens attend to the question (one sequence, ``[CLS] q [SEP] context [SEP]``),
  which is what lets the head find the answer to *this* question.
  :func:`best_spans` picks ``argmax_{i <= j < i + max_answer} start_i + end_j``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.attention.transformer import EncoderLayer

IGNORE_INDEX = -100


class BertEncoder(nn.Module):
    """Embeddings and a stack of bidirectional encoder layers; (N, L) ids -> (N, L, d)."""

    def __init__(self, vocab_size: int, d_model: int = 128, num_heads: int = 4,
                 num_layers: int = 2, dim_feedforward: int = 512, max_len: int = 128,
                 dropout: float = 0.1, type_vocab: int = 2, pad_id: int = 0) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(max_len, d_model)
        self.type_embedding = nn.Embedding(type_vocab, d_model)
        for table in (self.token_embedding, self.position_embedding, self.type_embedding):
            nn.init.normal_(table.weight, std=0.02)
        self.embed_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, num_heads, dim_feedforward, dropout, norm_first=True)
            for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(d_model)

    def forward(self, input_ids: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        n, length = input_ids.shape
        if length > self.position_embedding.num_embeddings:
            raise ValueError(f"sequence of {length} > max_len "
                             f"{self.position_embedding.num_embeddings}")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        pos = torch.arange(length, device=input_ids.device)
        x = (self.token_embedding(input_ids) + self.position_embedding(pos)
             + self.type_embedding(token_type_ids))
        x = self.dropout(self.embed_norm(x))
        padding = input_ids == self.pad_id
        if not bool(padding.any()):
            padding = None  # the fused attention's fast path (no mask tensor); same function
        for layer in self.layers:
            x = layer(x, key_padding_mask=padding)
        return self.final_norm(x)


class BertForPretraining(nn.Module):
    """Encoder + masked-LM head (tied decoder) + next-sentence head on ``[CLS]``."""

    def __init__(self, vocab_size: int, **encoder_kwargs) -> None:
        super().__init__()
        self.encoder = BertEncoder(vocab_size, **encoder_kwargs)
        d = self.encoder.token_embedding.embedding_dim
        self.mlm_transform = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
        self.mlm_bias = nn.Parameter(torch.zeros(vocab_size))
        self.pooler = nn.Sequential(nn.Linear(d, d), nn.Tanh())
        self.nsp_head = nn.Linear(d, 2)

    def mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., d) -> (..., vocab) through the head and the tied token embedding."""
        return F.linear(self.mlm_transform(hidden), self.encoder.token_embedding.weight,
                        self.mlm_bias)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor,
                mlm_labels: torch.Tensor, next_sentence_label: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """Losses and logits. ``mlm_logits`` (S, vocab) are for the S selected positions
        (``mlm_labels != -100``) in row-major order; the loss ignores the rest."""
        hidden = self.encoder(input_ids, token_type_ids)
        selected = mlm_labels != IGNORE_INDEX
        logits = self.mlm_logits(hidden[selected])
        targets = mlm_labels[selected]
        mlm_loss = (F.cross_entropy(logits, targets) if targets.numel()
                    else hidden.sum() * 0.0)
        nsp_logits = self.nsp_head(self.pooler(hidden[:, 0]))
        out = {"mlm_loss": mlm_loss, "mlm_logits": logits, "mlm_targets": targets,
               "nsp_logits": nsp_logits}
        if next_sentence_label is not None:
            out["nsp_loss"] = F.cross_entropy(nsp_logits, next_sentence_label)
            out["loss"] = mlm_loss + out["nsp_loss"]
        return out


class BertForQA(nn.Module):
    """Encoder + per-token start and end logits, restricted to the context."""

    def __init__(self, vocab_size: int, **encoder_kwargs) -> None:
        super().__init__()
        self.encoder = BertEncoder(vocab_size, **encoder_kwargs)
        self.qa_head = nn.Linear(self.encoder.token_embedding.embedding_dim, 2)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor,
                context_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.qa_head(self.encoder(input_ids, token_type_ids))  # (N, L, 2)
        logits = logits.masked_fill(~context_mask.unsqueeze(-1), float("-inf"))
        return logits[..., 0], logits[..., 1]


def qa_loss(start_logits: torch.Tensor, end_logits: torch.Tensor,
            start_positions: torch.Tensor, end_positions: torch.Tensor) -> torch.Tensor:
    """Mean of the start and end cross-entropies over positions (the paper's)."""
    return 0.5 * (F.cross_entropy(start_logits, start_positions)
                  + F.cross_entropy(end_logits, end_positions))


def best_spans(start_logits: torch.Tensor, end_logits: torch.Tensor,
               max_answer: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) start and end of the best span with ``start <= end < start + max_answer``."""
    length = start_logits.shape[1]
    scores = start_logits.unsqueeze(2) + end_logits.unsqueeze(1)  # (N, i, j)
    i = torch.arange(length, device=start_logits.device)
    allowed = (i.view(-1, 1) <= i.view(1, -1)) & (i.view(1, -1) < i.view(-1, 1) + max_answer)
    scores = scores.masked_fill(~allowed, float("-inf")).flatten(1)
    best = scores.argmax(1)
    return best // length, best % length
