"""Image captioning with attention (notes 6.2.1; Show, Attend and Tell, Xu et al. 2015).

A small CNN turns a 64x64 image into an 8x8 grid of feature vectors ``y_i`` (64 cells of
``channels`` numbers); every ``y_i`` is both key and value. An LSTM decoder (one
``nn.LSTMCell``) writes the caption one word at a time; its hidden state ``h`` is the query.
At step ``t`` the notes' additive attention scores every cell from the previous state,
``m_i = w^T tanh(y_i W_y + h_{t-1} W_c)`` (:class:`deepnotes.attention.scores.AdditiveScore`),
``s = softmax(m)`` (``alpha_t``) and the context is ``z_t = sum_i s_i y_i``. The LSTM reads
``[embedding(w_{t-1}), z_t]`` and the word ``w_t`` is read from ``[h_t, z_t]``, so
``alpha_t`` is the attention *of* word ``w_t``. ``h_0, c_0`` come from the mean feature, as
in Show, Attend and Tell.

Three variants share the encoder and decoder (:data:`MODES`):

* ``"soft"``: ``z_t`` is the expectation above (differentiable; trained by back-prop);
* ``"hard"``: ``z_t = y_k`` for one cell ``k`` sampled from ``alpha_t``
  (:func:`deepnotes.attention.scores.hard_attention`); the sampling is not differentiable,
  so the attention is trained with REINFORCE (:func:`reinforce_surrogate`) and greedy
  decoding takes the mode ``argmax_i alpha_{t,i}``;
* ``"none"``: no attention, ``z_t`` is the mean-pooled feature at every step (the
  fixed-vector encoder-decoder of 6.1).

:func:`doubly_stochastic_penalty` is Show, Attend and Tell's
``lambda * sum_i (1 - sum_t alpha_{t,i})^2`` (eq. 14).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from deepnotes.attention.scores import AdditiveScore, hard_attention, masked_softmax

MODES = ("soft", "hard", "none")


class CaptionOutput(NamedTuple):
    """Per step ``t`` of a caption.

    Attributes:
        logits: ``(B, T, V)`` scores of word ``t``.
        alpha: ``(B, T, N)`` attention over the ``N`` cells for word ``t``
            (``None`` for ``"none"``).
        log_prob: ``(B, T)`` log-probability of the cell sampled at step ``t`` (``"hard"``
            only, else ``None``).
        index: ``(B, T)`` the cell attended at step ``t`` (``"hard"``: sampled or the mode;
            ``"soft"``: the peak of ``alpha``; ``None`` for ``"none"``).
    """

    logits: torch.Tensor
    alpha: torch.Tensor | None
    log_prob: torch.Tensor | None
    index: torch.Tensor | None


class GridEncoder(nn.Module):
    """64x64x1 image -> ``(B, 64, channels)``: an 8x8 grid of feature vectors, row-major
    (cell ``r * 8 + c`` covers pixels ``[8r, 8r + 8) x [8c, 8c + 8)``), plus a learned
    embedding of each cell's position (so a query can ask for a place, not only a look).

    Three stride-2 convolutions (kernel 4, padding 1: output ``i`` is centred on inputs
    ``2i, 2i + 1``, so cell ``(r, c)`` is centred on its own 8x8 block of pixels, not half a
    cell up and left as with odd kernels) and a 1x1 convolution. The receptive field of a
    cell is 22 pixels: less than an item, so what a cell knows of an item it mostly sees
    itself, and attention has to go where the item is.
    """

    def __init__(self, channels: int = 64, norm: bool = True) -> None:
        super().__init__()
        c = channels

        def block(cin: int, cout: int, k: int, stride: int) -> list[nn.Module]:
            pad = (k - 1) // 2 if stride == 1 else (k - stride) // 2
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride=stride, padding=pad)]
            if norm:
                layers.append(nn.BatchNorm2d(cout))
            return [*layers, nn.ReLU()]

        self.net = nn.Sequential(
            *block(1, c // 2, 4, 2),  # 32x32
            *block(c // 2, c, 4, 2),  # 16x16
            *block(c, c, 4, 2),  # 8x8
            nn.Conv2d(c, c, 1),  # 8x8
        )
        self.position = nn.Parameter(torch.zeros(64, c))
        nn.init.normal_(self.position, std=0.1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        grid = self.net(images).flatten(2).transpose(1, 2)  # (B, 64, C)
        return torch.relu(grid.float() + self.position)


class Captioner(nn.Module):
    """CNN grid encoder + LSTM decoder with soft, hard or no attention (module docstring).

    Args:
        vocab_size: number of words (index 1 is ``<bos>``, see :mod:`deepnotes.data.scenes`).
        mode: ``"soft"``, ``"hard"`` or ``"none"``.
        channels: feature size of a grid cell (keys and values).
        hidden: LSTM state size (the query).
        embed: word embedding size.
        attention_dim: hidden size of the additive score.
        bos: index of the start word.
    """

    def __init__(self, vocab_size: int, mode: str = "soft", channels: int = 64,
                 hidden: int = 128, embed: int = 32, attention_dim: int = 64,
                 bos: int = 1) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        self.mode = mode
        self.bos = bos
        self.encoder = GridEncoder(channels)
        self.embed = nn.Embedding(vocab_size, embed)
        self.init_h = nn.Linear(channels, hidden)
        self.init_c = nn.Linear(channels, hidden)
        self.score = AdditiveScore(hidden, channels, attention_dim) if mode != "none" else None
        self.cell = nn.LSTMCell(embed + channels, hidden)
        self.out = nn.Linear(hidden + channels, vocab_size)

    def start(self, images: torch.Tensor):
        """Features ``(B, N, C)``, their key projections ``W_y y_i`` (computed once per
        image, ``None`` without attention) and the initial ``(h, c)`` from their mean."""
        feats = self.encoder(images)
        mean = feats.mean(dim=1)
        keys = self.score.key_proj(feats) if self.score is not None else None
        return feats, keys, torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))

    def attend(self, h: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """``alpha (B, N)``: softmax over the cells of ``w^T tanh(W_y y_i + W_c h)``."""
        return masked_softmax(self.score.from_projected(h.unsqueeze(1), keys).squeeze(1))

    def step(self, feats: torch.Tensor, keys: torch.Tensor | None, word: torch.Tensor,
             h: torch.Tensor, c: torch.Tensor, sample: bool,
             generator: torch.Generator | None = None, soft_rows: torch.Tensor | None = None):
        """One decoder step: ``(logits, h, c, alpha, log_prob, index)``; ``soft_rows``
        ``(B,)`` bool: hard attention reads these rows' expectation instead of a sample."""
        alpha = log_prob = index = None
        if self.score is None:
            z = feats.mean(dim=1)
        else:
            alpha = self.attend(h, keys)
            if self.mode == "soft":
                z = (alpha.unsqueeze(1) @ feats).squeeze(1)  # sum_i alpha_i y_i
                index = alpha.argmax(dim=-1)
            elif sample:
                hard = hard_attention(alpha, feats, generator=generator)
                z, index, log_prob = hard.output, hard.index, hard.log_prob
                if soft_rows is not None:
                    expected = (alpha.unsqueeze(1) @ feats).squeeze(1)
                    z = torch.where(soft_rows.unsqueeze(1), expected, z)
                    log_prob = log_prob.masked_fill(soft_rows, 0.0)
            else:  # greedy decoding with hard attention: the mode of alpha
                index = alpha.argmax(dim=-1)
                z = feats[torch.arange(feats.shape[0]), index]
        h, c = self.cell(torch.cat([self.embed(word), z], dim=-1), (h, c))
        logits = self.out(torch.cat([h, z], dim=-1))
        return logits, h, c, alpha, log_prob, index

    def forward(self, images: torch.Tensor, tokens: torch.Tensor,
                generator: torch.Generator | None = None,
                soft_fraction: float = 0.0) -> CaptionOutput:
        """Teacher forcing: word ``t`` is predicted from the true words before it.

        Args:
            images: float ``(B, 1, 64, 64)``.
            tokens: ``(B, T)`` the target words (ending in ``<eos>``, then ``<pad>``).
            generator: draws hard attention's cells (``"hard"`` samples in ``forward``).
            soft_fraction: hard attention only: each image, with this probability, reads
                the expectation ``sum_i alpha_i y_i`` at every step instead of samples (Show,
                Attend and Tell sec. 4.1 use 0.5); its ``log_prob`` entries are 0.
        """
        feats, keys, h, c = self.start(images)
        soft_rows = None
        if self.mode == "hard" and soft_fraction > 0:
            soft_rows = torch.rand(images.shape[0], generator=generator) < soft_fraction
        previous = torch.cat([torch.full_like(tokens[:, :1], self.bos), tokens[:, :-1]], 1)
        steps = []
        for t in range(tokens.shape[1]):
            logits, h, c, alpha, log_prob, index = self.step(
                feats, keys, previous[:, t], h, c, sample=True, generator=generator,
                soft_rows=soft_rows)
            steps.append((logits, alpha, log_prob, index))
        return _stack(steps)

    @torch.no_grad()
    def greedy(self, images: torch.Tensor, length: int) -> tuple[torch.Tensor, CaptionOutput]:
        """Greedy decoding of ``length`` words: ``(tokens (B, length), per-step outputs)``;
        hard attention takes the mode of ``alpha`` (no sampling)."""
        feats, keys, h, c = self.start(images)
        word = torch.full((images.shape[0],), self.bos, dtype=torch.long)
        words, steps = [], []
        for _ in range(length):
            logits, h, c, alpha, log_prob, index = self.step(feats, keys, word, h, c, sample=False)
            word = logits.argmax(dim=-1)
            words.append(word)
            steps.append((logits, alpha, log_prob, index))
        return torch.stack(words, dim=1), _stack(steps)


def _stack(steps) -> CaptionOutput:
    columns = list(zip(*steps, strict=True))
    return CaptionOutput(*[None if col[0] is None else torch.stack(col, dim=1)
                           for col in columns])


def doubly_stochastic_penalty(alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Show, Attend and Tell's ``sum_i (1 - sum_t alpha_{t,i})^2``, averaged over the batch.

    Args:
        alpha: ``(B, T, N)`` attention per step.
        mask: ``(B, T)`` bool, True at the steps that belong to the caption (not padding).
    """
    total = (alpha * mask.unsqueeze(-1).to(alpha.dtype)).sum(dim=1)  # (B, N)
    return ((1.0 - total) ** 2).sum(dim=-1).mean()


def reinforce_surrogate(log_prob: torch.Tensor, reward: torch.Tensor,
                        baseline: float | torch.Tensor) -> torch.Tensor:
    """A loss whose gradient is REINFORCE's estimate of ``-grad E[reward]``:
    ``-mean((reward - baseline) * log_prob)`` with the reward and baseline held constant.

    Args:
        log_prob: ``(B,)`` log-probability of what was sampled (summed over steps),
            differentiable.
        reward: ``(B,)`` its reward (Show, Attend and Tell: ``log p(caption | cells)``).
        baseline: a number subtracted from the reward to reduce the variance (their moving
            average of past rewards).
    """
    advantage = (reward - baseline).detach()
    return -(advantage * log_prob).mean()


def attention_entropy(alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the attention distributions at the caption's steps."""
    h = -(alpha * alpha.clamp_min(1e-12).log()).sum(dim=-1)  # (B, T)
    m = mask.to(alpha.dtype)
    return (h * m).sum() / m.sum().clamp_min(1.0)
