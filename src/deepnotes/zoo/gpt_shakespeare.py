"""The character GPT of chapter 6: build, train, score, sample, save, load (``gpt-shakespeare``).

The model is :class:`deepnotes.attention.gpt.GPT` (pre-norm decoder-only transformer, causal
self-attention, tied token embedding and output head). Training, per :class:`Recipe`:

* batches of ``batch_size`` windows of ``block_size + 1`` characters at random offsets of the
  training split (nanoGPT's sampler), drawn from the run's stream ``batches-<phase>`` at
  index ``step``, so a resumed run draws the same batches;
* AdamW (betas 0.9, ``beta2``) with weight decay on the matrices of the linear layers only
  (:func:`deepnotes.attention.gpt.parameter_groups`: not on biases, layer norms, the position
  embedding or the tied token embedding);
* the learning rate rises linearly over ``warmup`` steps to ``lr``, then follows a cosine to
  ``min_lr_fraction * lr`` at the last step (:func:`learning_rate`), set on every step (no
  scheduler object: the step number is the whole state, so resume is exact);
* gradient-norm clipping at ``clip``;
* bfloat16 autocast, because it measured faster, with the attention core kept in float32
  (:class:`deepnotes.attention.gpt.CausalSelfAttention`). On the calibration machine (Intel
  Xeon, Sapphire Rapids class, AMX, 2 threads), ms per training step, fp32 against bf16:

  =========================  ==========  ===========================  =====================
  4 layers, batch x block    fp32        bf16, attention in bf16      bf16, attention fp32
  =========================  ==========  ===========================  =====================
  width 128, 12 x 64         23.1        31.3 (0.77x)                 17.9 (1.29x)
  width 128, 64 x 64         111.0       131.6 (0.86x)                67.0 (1.66x)
  width 256, 32 x 64         162.2       109.6 (1.48x)                82.3 (1.97x)
  =========================  ==========  ===========================  =====================

  With everything under autocast bf16 was *slower* than fp32 at width 128 (the issue's
  observation): the profile put 55% of the bf16 step in the bf16 flash-attention backward
  (8x its fp32 time). The matrix products alone run 2.7x faster in bf16 (AMX). Weights,
  optimizer state and the loss stay fp32; ``bf16=False`` trains in fp32 throughout.

Quality is ``val_loss`` (:func:`deepnotes.metrics.windowed_val_loss`: 64-character windows over
the whole validation split, each from an empty context), the same function as chapter 5's
char LSTM, so the figures compare whatever ``block_size`` the model trains with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from deepnotes.attention.gpt import GPT, parameter_groups
from deepnotes.data.text import CharVocab
from deepnotes.metrics import windowed_val_loss
from deepnotes.zoo.artifacts import Artifact
from deepnotes.zoo.char_lm import (
    check_sampling,
    corpus_splits,
    load_character_model,
    save_character_model,
)

NAME = "gpt-shakespeare"
VAL_WINDOW = 64  # characters per val_loss window (chapter 5's measure)

__all__ = ["NAME", "Recipe", "batch", "build", "corpus_splits", "learning_rate", "load", "sample",
           "save", "score", "train", "val_loss"]


@dataclass(frozen=True)
class Recipe:
    """Architecture and training recipe (an experiment's config supplies them)."""

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64  # characters of context (learned positions); >= 64 for val_loss
    dropout: float = 0.0
    batch_size: int = 64  # windows per step
    steps: int = 1400
    lr: float = 3e-3  # peak, after the warm-up
    min_lr_fraction: float = 0.1  # the cosine ends at lr * min_lr_fraction
    warmup: int = 100  # steps of linear warm-up
    weight_decay: float = 0.1  # on the linear layers' matrices only
    beta2: float = 0.99
    clip: float = 1.0  # gradient-norm clipping
    bf16: bool = True  # bfloat16 autocast, attention core in fp32 (module docstring)
    log_every: int = 25


def learning_rate(step: int, recipe: Recipe) -> float:
    """Linear warm-up to ``lr`` over ``warmup`` steps (step 0 gets ``lr / warmup``), then a
    cosine from ``lr`` down to ``min_lr_fraction * lr`` at step ``steps - 1``."""
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    span = max(1, recipe.steps - 1 - recipe.warmup)
    progress = min(1.0, (step - recipe.warmup) / span)
    low = recipe.lr * recipe.min_lr_fraction
    return low + (recipe.lr - low) * 0.5 * (1.0 + math.cos(math.pi * progress))


def batch(ids: torch.Tensor, batch_size: int, block_size: int,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` windows at random offsets: inputs and next-character targets
    ``(B, block_size)`` each (targets are the inputs shifted by one)."""
    if len(ids) < block_size + 2:
        raise ValueError(f"{len(ids)} characters hold no window of {block_size + 1}")
    offsets = torch.randint(len(ids) - block_size - 1, (batch_size,), generator=generator)
    windows = ids[offsets[:, None] + torch.arange(block_size + 1)]  # (B, block_size + 1)
    return windows[:, :-1], windows[:, 1:]


def build(recipe: Recipe, vocab_size: int) -> GPT:
    """The untrained :class:`GPT` of ``recipe`` (initialized from torch's global generator)."""
    return GPT(vocab_size, recipe.block_size, recipe.n_layer, recipe.n_head, recipe.n_embd,
               recipe.dropout)


def train(ctx: Any, recipe: Recipe, vocab_size: int, train_ids: torch.Tensor,
          phase: str = "train") -> GPT:
    """Train per ``recipe`` (module docstring) in a ``ctx.steps`` loop; the plain model.

    Under data parallelism every rank draws the same global batch and trains on its share."""
    fabric = ctx.fabric
    if recipe.batch_size % fabric.world_size:
        raise ValueError(f"batch_size {recipe.batch_size} must be divisible by the "
                         f"{fabric.world_size} devices")
    ctx.manual_seed(f"init-{phase}")
    plain = build(recipe, vocab_size)
    optimizer = torch.optim.AdamW(parameter_groups(plain, recipe.weight_decay), lr=recipe.lr,
                                  betas=(0.9, recipe.beta2))
    model, optimizer = fabric.setup(plain, optimizer)
    track = {"model": model, "optimizer": optimizer}
    for step in ctx.steps(recipe.steps, track=track, phase=phase, log_every=recipe.log_every):
        lr = learning_rate(step, recipe)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = batch(train_ids, recipe.batch_size, recipe.block_size,
                     ctx.rng(f"batches-{phase}", step))
        share = slice(fabric.global_rank * len(x) // fabric.world_size,
                      (fabric.global_rank + 1) * len(x) // fabric.world_size)
        x, y = fabric.to_device((x[share], y[share]))
        model.train()
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=recipe.bf16):
            logits = model(x)  # (B, T, V)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        norm = fabric.clip_gradients(model, optimizer, max_norm=recipe.clip)
        optimizer.step()
        ctx.log(step, phase=phase, loss=loss.item(), grad_norm=norm.item(), lr=lr)
    plain.eval()
    return plain


def val_loss(model: GPT, val_ids: torch.Tensor) -> float:
    """``val_loss``: nats per character, 64-character windows, each from an empty context
    (fp32; the model's forward is the ``logits_fn``). The model needs ``block_size >= 64``."""
    if model.block_size < VAL_WINDOW:
        raise ValueError(f"val_loss reads {VAL_WINDOW}-character windows; a model with "
                         f"block_size {model.block_size} cannot score them")
    model.eval()
    device = next(model.parameters()).device
    return windowed_val_loss(lambda x: model(x.to(device)).cpu(), val_ids, window=VAL_WINDOW)


def score(model: GPT, val_ids: torch.Tensor) -> dict[str, float]:
    """``{"val_loss": ...}`` (:func:`val_loss`)."""
    return {"val_loss": val_loss(model, val_ids)}


@torch.no_grad()
def sample(model: GPT, vocab: CharVocab, prompt: str, length: int,
           temperature: float = 1.0, top_k: int | None = None,
           generator: torch.Generator | None = None, use_cache: bool = True) -> str:
    """``prompt`` followed by ``length`` sampled characters (:meth:`GPT.generate`).

    Args:
        temperature: divides the logits; 0 means greedy (the most likely character).
        top_k: sample among the ``top_k`` most likely characters only.
        generator: the random stream (the same generator state gives the same text).
        use_cache: generate through the KV cache (the same text as without it).
    Raises:
        ValueError: an empty prompt, a prompt character outside the vocabulary (named),
            a negative temperature or length, a top_k < 1.
    """
    check_sampling(prompt, length, temperature, top_k)
    model.eval()
    ids = vocab.encode(prompt)[None]  # (1, P); raises naming an unknown character
    device = next(model.parameters()).device
    out = model.generate(ids.to(device), length, temperature=temperature, top_k=top_k,
                         use_cache=use_cache, generator=generator)
    return prompt + vocab.decode(out[0, ids.shape[1]:].tolist())


def save(ctx: Any, model: GPT, vocab: CharVocab, metrics: dict[str, float],
         corpus: str) -> None:
    """Publish ``model`` as artifact ``(NAME, ctx.tier)`` with its vocabulary."""
    save_character_model(ctx, NAME, model, vocab, metrics, corpus)


def load(tier: str) -> tuple[GPT, CharVocab, Artifact]:
    """The trained character GPT of ``tier`` (eval mode), its vocabulary and its artifact."""
    return load_character_model(NAME, tier)
