"""Number-word translation (Example 6.1): the task, its training recipe, its evaluation.

The task (:mod:`deepnotes.data.numbers`): 1-``max_numbers`` integers written as English word
tokens -> their German (or French) spelling, character by character; train, validation and
test are split by number. Every model of the task (the fixed-vector and attention
encoder-decoders of 6.1, the transformer of 6.3.1) trains here with one recipe: Adam with a
one-cycle schedule (warm-up, then cosine decay) to ``lr``, gradient clipping at norm 1,
teacher forcing, cross-entropy over the target characters and ``<eos>``, ``steps`` batches
drawn from the training pairs by the run's ``"batches"`` stream. The learning rate is
searched on the fixed grid :data:`LEARNING_RATES`; the rate with the best validation exact
match (ties: lower validation loss) is kept.

Evaluation: greedy decoding (and beam search) of the test sources; exact match, character
BLEU and chrF (:mod:`deepnotes.metrics.translation`), per source-length bucket; the alignment
mass: the mean attention weight that each target character puts, under teacher forcing on
the reference, on the English token it comes from (the known alignment).

The attention model is published as artifact ``nmt-<lang>`` with its vocabularies and the
held-out numbers, so a later experiment rebuilds the same splits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.attention.seq2seq import Decoded, Seq2Seq
from deepnotes.attention.transformer import Transformer
from deepnotes.data.numbers import (
    EncodedPairs,
    NumberPair,
    TargetVocab,
    TokenVocab,
    encode_pairs,
    translation_splits,
)
from deepnotes.engine.streams import stream_generator
from deepnotes.metrics.translation import by_bucket, corpus_bleu, corpus_chrf, exact_match
from deepnotes.zoo.artifacts import Artifact, load_model, save_artifact

LEARNING_RATES = (1e-3, 3e-3)  # Adam peak rates, fixed before any run
CLIP_NORM = 1.0


@dataclass(frozen=True)
class Recipe:
    lang: str = "de"
    max_numbers: int = 2  # numbers per sentence: 1..max_numbers
    n_train: int = 20000
    n_val: int = 300
    n_test: int = 600
    embed: int = 32
    hidden: int = 96
    steps: int = 400
    batch_size: int = 64
    warmup: float = 0.1  # fraction of the steps spent warming up
    log_every: int = 50
    beam_width: int = 4


class Task(NamedTuple):
    source_vocab: TokenVocab
    target_vocab: TargetVocab
    pairs: dict[str, list[NumberPair]]  # "train", "val", "test"
    encoded: dict[str, EncodedPairs]


def build_task(ctx: Any, recipe: Recipe, split_seed: int | None = None) -> Task:
    """The splits of ``recipe`` from the ``"number-split"`` stream of the run (or of the run
    seed ``split_seed``, to rebuild an artifact's task), and the vocabularies (the source
    words of the training split; the characters of every split, since a decoder must be able
    to emit every character of its language)."""
    generator = (ctx.rng("number-split") if split_seed is None
                 else stream_generator(split_seed, "number-split"))
    pairs = translation_splits(recipe.lang, max_numbers=recipe.max_numbers,
                               n_train=recipe.n_train, n_val=recipe.n_val, n_test=recipe.n_test,
                               generator=generator)
    source_vocab = TokenVocab.from_pairs(pairs["train"])
    target_vocab = TargetVocab.from_pairs(p for split in pairs.values() for p in split)
    encoded = {k: encode_pairs(v, source_vocab, target_vocab) for k, v in pairs.items()}
    return Task(source_vocab, target_vocab, pairs, encoded)


class TransformerTranslator(nn.Module):
    """The encoder-decoder transformer of 6.3.1 behind the task's interface: ``forward(source,
    source_lengths, target_in)`` -> logits and ``greedy(...)`` -> :class:`Decoded`, as
    :class:`~deepnotes.attention.seq2seq.Seq2Seq` (index 0 is padding on both sides)."""

    def __init__(self, source_vocab: int, target_vocab: int, d_model: int = 64,
                 num_heads: int = 4, num_layers: int = 2, dim_feedforward: int = 256,
                 dropout: float = 0.0, norm_first: bool = True, max_len: int = 256) -> None:
        super().__init__()
        self.architecture_kwargs = {
            "source_vocab": source_vocab, "target_vocab": target_vocab, "d_model": d_model,
            "num_heads": num_heads, "num_layers": num_layers,
            "dim_feedforward": dim_feedforward, "dropout": dropout, "norm_first": norm_first,
            "max_len": max_len}
        self.transformer = Transformer(source_vocab, target_vocab, d_model, num_heads,
                                       num_layers, dim_feedforward, dropout, norm_first,
                                       max_len=max_len)

    @property
    def architecture(self) -> dict:
        return {"class": f"{type(self).__module__}.{type(self).__name__}",
                "kwargs": dict(self.architecture_kwargs)}

    def forward(self, source: torch.Tensor, source_lengths: torch.Tensor,
                target_in: torch.Tensor) -> torch.Tensor:
        # No target padding mask: targets are right-padded, so under the causal mask a real
        # position never sees a padded one; padded positions' outputs are ignored by the loss.
        # Without a mask tensor the decoder can take the fused causal kernel.
        return self.transformer(source, target_in, source == 0, None)  # (B, T, V)

    @torch.no_grad()
    def greedy(self, source: torch.Tensor, lengths: torch.Tensor, *, bos: int, eos: int,
               max_len: int) -> Decoded:
        return Decoded(self.transformer.greedy(source, source == 0, bos=bos, eos=eos,
                                               max_len=max_len), None)


def make_model(task: Task, recipe: Recipe, attention: bool) -> Seq2Seq:
    return Seq2Seq(len(task.source_vocab), len(task.target_vocab), embed_dim=recipe.embed,
                   hidden_size=recipe.hidden, attention_dim=recipe.hidden, attention=attention)


def _trimmed(batch: EncodedPairs, index: torch.Tensor):
    """Rows ``index`` cut to their longest source and target (padding costs decoder steps)."""
    s = int(batch.source_lengths[index].max())
    t = int(batch.target_lengths[index].max())
    return (batch.source[index, :s], batch.source_lengths[index], batch.target_in[index, :t],
            batch.target_out[index, :t])


def loss_of(model: nn.Module, source, lengths, target_in, target_out) -> torch.Tensor:
    """Mean cross-entropy per target character (``<eos>`` included, padding ignored)."""
    out = model(source, lengths, target_in)
    logits = out.logits if hasattr(out, "logits") else out
    return F.cross_entropy(logits.flatten(0, 1), target_out.flatten(), ignore_index=0)


def train(ctx: Any, model: nn.Module, task: Task, recipe: Recipe, lr: float,
          phase: str) -> nn.Module:
    """``recipe.steps`` steps of teacher forcing at peak rate ``lr`` in a ``ctx.steps`` loop."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr,
                                                    total_steps=recipe.steps,
                                                    pct_start=recipe.warmup)
    data = task.encoded["train"]
    # One order for every model and rate: the runs differ in what they are, not in their data.
    batches = ctx.batches(torch.arange(len(data)), batch_size=recipe.batch_size,
                          stream="number-batches")
    track = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    model.train()
    for step in ctx.steps(recipe.steps, track=track, phase=phase, log_every=recipe.log_every):
        index = batches.indices(step)
        loss = loss_of(model, *_trimmed(data, index))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        scheduler.step()
        ctx.log(step, phase=phase, loss=loss.item(), grad_norm=norm.item())
    model.eval()
    return model


def fit_on_grid(ctx: Any, task: Task, recipe: Recipe, build: Callable[[], nn.Module],
                name: str) -> tuple[nn.Module, float, dict[float, float]]:
    """Train ``build()`` at every rate of :data:`LEARNING_RATES` (the same initial weights,
    stream ``init-<name>``, at each) and keep the model with the best validation exact match,
    ties broken by the lower validation loss. Returns the model, its rate, and the validation
    exact match at every rate."""
    results = {}
    for lr in LEARNING_RATES:
        ctx.manual_seed(f"init-{name}")
        model = train(ctx, build(), task, recipe, lr, phase=f"{name}-lr{lr:.0e}")
        val = scores(translate(model, task, "val"), task.pairs["val"])
        results[lr] = (val["exact_match"], -evaluation_loss(model, task.encoded["val"]), model)
    best = max(LEARNING_RATES, key=lambda lr: results[lr][:2])
    return results[best][2], best, {lr: r[0] for lr, r in results.items()}


@torch.no_grad()
def evaluation_loss(model: nn.Module, batch: EncodedPairs) -> float:
    model.eval()
    return loss_of(model, *_trimmed(batch, torch.arange(len(batch)))).item()


@torch.no_grad()
def translate(model: nn.Module, task: Task, split: str, beam_width: int = 1) -> list[str]:
    """Decoded strings of a split: greedy (width 1, batched) or beam search."""
    batch = task.encoded[split]
    bos, eos = task.target_vocab.bos_id, task.target_vocab.eos_id
    max_len = int(batch.target_lengths.max()) + 10
    if beam_width == 1:
        tokens = model.greedy(batch.source, batch.source_lengths, bos=bos, eos=eos,
                              max_len=max_len).tokens
        return [task.target_vocab.decode(row) for row in tokens]
    found = model.beam_search(batch.source, batch.source_lengths, bos=bos, eos=eos,
                              max_len=max_len, width=beam_width)
    return [task.target_vocab.decode(row) for row in found]


def scores(hypotheses: list[str], pairs: list[NumberPair]) -> dict[str, Any]:
    """Exact match, character BLEU and chrF (0-100), and the same per number of numbers."""
    references = [p.target for p in pairs]
    return {"exact_match": exact_match(hypotheses, references),
            "bleu": corpus_bleu(hypotheses, references, tokenize="char"),
            "chrf": corpus_chrf(hypotheses, references),
            "by_length": by_bucket([len(p.numbers) for p in pairs], hypotheses, references)}


@torch.no_grad()
def alignments(model: Seq2Seq, task: Task, split: str) -> torch.Tensor:
    """Attention weights ``(B, T, S)`` under teacher forcing on the reference targets."""
    batch = task.encoded[split]
    return model(batch.source, batch.source_lengths, batch.target_in).alpha


def alignment_mass(alpha: torch.Tensor, batch: EncodedPairs) -> dict[str, float]:
    """The weight target characters put on their own source token (the known alignment).

    ``mass``: the mean over aligned target characters; ``mass_at_starts``: the same over the
    first character of each run of characters from one source token (where a morpheme
    begins); ``chance``: what uniform attention over the real source tokens would score.
    """
    align = batch.alignment[:, :alpha.shape[1]]  # (B, T)
    aligned = align >= 0
    mass = alpha.gather(-1, align.clamp_min(0).unsqueeze(-1)).squeeze(-1)  # (B, T)
    previous = torch.cat([torch.full_like(align[:, :1], -2), align[:, :-1]], dim=1)
    starts = aligned & (align != previous)
    uniform = (1.0 / batch.source_lengths.float())[:, None].expand_as(mass)
    return {"mass": mass[aligned].mean().item(), "mass_at_starts": mass[starts].mean().item(),
            "chance": uniform[aligned].mean().item()}


def save(ctx: Any, model: Seq2Seq, task: Task, recipe: Recipe, metrics: dict) -> None:
    """Publish the attention model as ``nmt-<lang>`` with what rebuilds its task."""
    held = {split: sorted({n for p in task.pairs[split] for n in p.numbers})
            for split in ("val", "test")}
    save_artifact(ctx, f"nmt-{recipe.lang}", model, architecture=model.architecture,
                  metrics=metrics,
                  extra={"source_tokens": task.source_vocab.tokens,
                         "target_chars": task.target_vocab.chars,
                         "held_out_numbers": held, "split_seed": ctx.seed,
                         "recipe": dataclasses.asdict(recipe)})


def load(lang: str, tier: str) -> tuple[Seq2Seq, Artifact]:
    """The published attention model of ``lang`` and ``tier`` (eval mode) and its artifact."""
    return load_model(f"nmt-{lang}", tier)
