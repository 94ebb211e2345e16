"""Encoder-decoder translation with and without attention (notes 6.1, Example 6.1).

Encoder: a bidirectional GRU over the source tokens; position ``j`` is annotated with
``h_j = [h_j^fwd, h_j^bwd]`` (Bahdanau et al., 2015), which has read the whole sentence around
``j``. Padded positions are packed away, so the backward direction starts at each sentence's
own last token, not at the padding.

Decoder (one GRU cell, teacher forcing in training). At step ``t``, with state ``s_{t-1}`` and
the previous target token ``y_{t-1}``:

    alpha_t = softmax_j( w^T tanh(W_k h_j + W_q s_{t-1}) )       (additive score, 6.2)
    c_t     = sum_j alpha_{t,j} h_j                               (soft attention)
    s_t     = GRU([emb(y_{t-1}), c_t], s_{t-1})
    p(y_t)  = softmax( W_o [s_t, c_t, emb(y_{t-1})] )

``attention=False`` is the fixed-vector model of 6.1: ``c_t = [h_S^fwd, h_1^bwd]``, the
encoder's final states, the same vector at every step; everything else is identical, so the
two models differ in the attention alone. ``s_0 = tanh(W_s [h_S^fwd, h_1^bwd])`` in both.

Decoding: :meth:`Seq2Seq.greedy` (batched) and :meth:`Seq2Seq.beam_search` (one source at a
time, its beams batched); beam width 1 returns exactly the greedy output.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from deepnotes.attention.scores import AdditiveScore, masked_softmax


class Encoded(NamedTuple):
    memory: Tensor  # (B, S, 2H): the annotations h_j
    final: Tensor  # (B, 2H): [h_S^fwd, h_1^bwd]
    projected: Tensor  # (B, S, A): W_k h_j, computed once per sentence
    padding: Tensor  # (B, S) bool, True at padding


class Seq2SeqOutput(NamedTuple):
    logits: Tensor  # (B, T, V)
    alpha: Tensor | None  # (B, T, S) attention weights; None without attention


class Decoded(NamedTuple):
    tokens: Tensor  # (B, L) emitted tokens, the <eos> included, then padding 0
    alpha: Tensor | None  # (B, L, S)


class BiGRUEncoder(nn.Module):
    """Embedding and a bidirectional GRU; ``forward(source (B, S), lengths (B,))``."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, hidden_size, batch_first=True, bidirectional=True)

    def forward(self, source: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        packed = pack_padded_sequence(self.embedding(source), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, h_n = self.gru(packed)  # h_n (2, B, H): forward at S_b, backward at 1
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=source.shape[1])
        return memory, torch.cat([h_n[0], h_n[1]], dim=-1)  # (B, S, 2H), (B, 2H)


class Seq2Seq(nn.Module):
    """Bidirectional-GRU encoder and a GRU decoder, with Bahdanau attention or a fixed context.

    Args:
        source_vocab, target_vocab: vocabulary sizes (index 0 is padding in both).
        embed_dim, hidden_size: token embedding width and GRU width ``H``.
        attention_dim: width ``A`` inside the additive score.
        attention: False gives the fixed-vector baseline of 6.1.
    """

    def __init__(self, source_vocab: int, target_vocab: int, embed_dim: int = 64,
                 hidden_size: int = 128, attention_dim: int = 128, attention: bool = True):
        super().__init__()
        self.architecture_kwargs = {"source_vocab": source_vocab, "target_vocab": target_vocab,
                                    "embed_dim": embed_dim, "hidden_size": hidden_size,
                                    "attention_dim": attention_dim, "attention": attention}
        self.attention = attention
        self.encoder = BiGRUEncoder(source_vocab, embed_dim, hidden_size)
        self.init_state = nn.Linear(2 * hidden_size, hidden_size)
        self.score = AdditiveScore(hidden_size, 2 * hidden_size, attention_dim)
        self.target_embedding = nn.Embedding(target_vocab, embed_dim, padding_idx=0)
        self.cell = nn.GRUCell(embed_dim + 2 * hidden_size, hidden_size)
        self.readout = nn.Linear(hidden_size + 2 * hidden_size + embed_dim, target_vocab)

    @property
    def architecture(self) -> dict:
        """What :func:`deepnotes.zoo.artifacts.load_model` rebuilds the model from."""
        return {"class": f"{type(self).__module__}.{type(self).__name__}",
                "kwargs": dict(self.architecture_kwargs)}

    def encode(self, source: Tensor, lengths: Tensor) -> Encoded:
        if source.dim() != 2 or lengths.shape != source.shape[:1]:
            raise ValueError(f"source must be (B, S) token ids with lengths (B,); got "
                             f"{tuple(source.shape)} and {tuple(lengths.shape)}")
        memory, final = self.encoder(source, lengths)
        padding = torch.arange(source.shape[1], device=source.device) >= lengths[:, None]
        return Encoded(memory, final, self.score.key_proj(memory), padding)

    def start(self, enc: Encoded) -> Tensor:
        return torch.tanh(self.init_state(enc.final))  # s_0 (B, H)

    def step(self, token: Tensor, state: Tensor, enc: Encoded):
        """One decoder step: ``(y_{t-1} (B,), s_{t-1} (B, H))`` -> logits (B, V), s_t, alpha_t."""
        embedded = self.target_embedding(token)  # (B, E)
        state, context, alpha = self._advance(embedded, state, enc)
        logits = self.readout(torch.cat([state, context, embedded], dim=-1))
        return logits, state, alpha

    def _advance(self, embedded: Tensor, state: Tensor, enc: Encoded):
        """``s_{t-1}`` -> ``(s_t, c_t, alpha_t)``: attend with the previous state, then step."""
        if self.attention:
            scores = self.score.from_projected(state.unsqueeze(1), enc.projected)  # (B, 1, S)
            alpha = masked_softmax(scores, enc.padding).squeeze(1)  # (B, S)
            context = (alpha.unsqueeze(1) @ enc.memory).squeeze(1)  # (B, 2H)
        else:
            alpha, context = None, enc.final
        state = self.cell(torch.cat([embedded, context], dim=-1), state)
        return state, context, alpha

    def forward(self, source: Tensor, source_lengths: Tensor, target_in: Tensor) -> Seq2SeqOutput:
        """Teacher forcing: ``target_in`` (B, T) starts with <bos>; logits predict target_out.

        The same computation as :meth:`step` at every position; the embedding and the
        read-out, which do not feed the recurrence, run once over all T positions.
        """
        enc = self.encode(source, source_lengths)
        state = self.start(enc)
        embedded = self.target_embedding(target_in)  # (B, T, E)
        states, contexts, alphas = [], [], []
        for t in range(target_in.shape[1]):
            state, context, alpha = self._advance(embedded[:, t], state, enc)
            states.append(state)
            contexts.append(context)
            alphas.append(alpha)
        features = torch.cat([torch.stack(states, 1), torch.stack(contexts, 1), embedded], -1)
        alpha = torch.stack(alphas, dim=1) if self.attention else None
        return Seq2SeqOutput(self.readout(features), alpha)  # (B, T, V)

    @torch.no_grad()
    def greedy(self, source: Tensor, lengths: Tensor, *, bos: int, eos: int,
               max_len: int) -> Decoded:
        """Emit the most likely token at every step until <eos> (or ``max_len`` tokens)."""
        enc = self.encode(source, lengths)
        state = self.start(enc)
        token = torch.full((source.shape[0],), bos, dtype=torch.long, device=source.device)
        done = torch.zeros_like(token, dtype=torch.bool)
        tokens, alphas = [], []
        for _ in range(max_len):
            logits, state, alpha = self.step(token, state, enc)
            token = logits.argmax(-1).masked_fill(done, 0)
            tokens.append(token)
            alphas.append(alpha)
            done |= token == eos
            if done.all():
                break
        alpha = torch.stack(alphas, dim=1) if self.attention else None
        return Decoded(torch.stack(tokens, dim=1), alpha)

    @torch.no_grad()
    def beam_search(self, source: Tensor, lengths: Tensor, *, bos: int, eos: int, max_len: int,
                    width: int) -> list[list[int]]:
        """The most probable output a beam of ``width`` finds (sum of log-probabilities, no
        length normalization): one token list per source row, <eos> included where reached.

        Each step extends the live beams by every token and keeps the ``width`` best
        candidates overall; a candidate that ends in <eos> is finished and leaves the beam,
        which then runs narrower (Sutskever et al., 2014). The search ends when no beam is
        live, or when the best finished hypothesis beats every live one (log-probabilities only
        fall as a hypothesis grows). Width 1 keeps the single best token each step: greedy.
        """
        if width < 1:
            raise ValueError(f"beam width must be >= 1; got {width}")
        results = []
        for b in range(source.shape[0]):
            enc = self.encode(source[b:b + 1], lengths[b:b + 1])
            state = self.start(enc)  # (K, H): K live beams, 1 at the start
            prefixes: list[list[int]] = [[]]
            scores = torch.zeros(1, device=source.device)
            token = source.new_full((1,), bos)
            finished: list[tuple[float, list[int]]] = []
            for _ in range(max_len):
                k = len(prefixes)
                wide = Encoded(*(x.expand(k, *x.shape[1:]) for x in enc))
                logits, state, _ = self.step(token, state, wide)
                total = scores[:, None] + torch.log_softmax(logits.float(), -1)  # (K, V)
                top, flat = total.flatten().topk(min(width - len(finished), total.numel()))
                live = []
                for value, index in zip(top.tolist(), flat.tolist(), strict=True):
                    beam, tok = divmod(index, total.shape[1])
                    if tok == eos:
                        finished.append((value, prefixes[beam] + [tok]))
                    else:
                        live.append((value, beam, tok))
                best_done = max((v for v, _ in finished), default=float("-inf"))
                if not live or best_done >= live[0][0]:
                    prefixes, scores = [], scores[:0]  # nothing live is worth keeping
                    break
                scores = scores.new_tensor([v for v, _, _ in live])
                state = state[[beam for _, beam, _ in live]]
                token = source.new_tensor([tok for _, _, tok in live])
                prefixes = [prefixes[beam] + [tok] for _, beam, tok in live]
            candidates = finished + [(float(v), p) for v, p in zip(scores.tolist(), prefixes,
                                                                  strict=True)]
            results.append(max(candidates, key=lambda c: c[0])[1])
        return results
