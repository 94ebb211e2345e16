"""The character language model of chapter 5: build, train, score, sample, save, load.

An embedding, a recurrent layer (an LSTM by default: torch's fused ``nn.LSTM``; ``nn.GRU`` and
``nn.RNN`` for comparisons; the written-out layers of :mod:`deepnotes.recurrent` are for
teaching and parity) and a linear read-out:

    e_t = E[x_t],   (h_t, c_t) = LSTM(e_t, (h_{t-1}, c_{t-1})),
    p(x_{t+1} | x_1 .. x_t) = softmax(W h_t + b)

Training is stateful truncated back-propagation through time: the training text is cut into
``batch_size`` contiguous streams; step ``s`` reads the next ``seq_len`` characters of every
stream, starting from the state the previous step ended with, detached (gradients stop at the
chunk boundary, the state does not). At the end of the streams the state starts again from
zero. The state travels in the loop's checkpointed ``state``, so a resumed run continues it.
Gradient-norm clipping, AdamW with a cosine learning rate, bfloat16 autocast (the AMX units
of recent Intel CPUs: 3.3x the fp32 step rate measured on a Sapphire Rapids core pair).

Quality is ``val_loss`` (:func:`deepnotes.metrics.windowed_val_loss`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.data.text import CharVocab, load_corpus, split_text
from deepnotes.metrics import stateful_val_loss, windowed_val_loss
from deepnotes.zoo.artifacts import Artifact, load_model, save_artifact

NAME = "char-lm"


@dataclass(frozen=True)
class Recipe:
    """Architecture and training recipe (an experiment's config supplies them)."""

    hidden: int = 512
    embed: int = 64
    layers: int = 1
    seq_len: int = 64  # characters per truncated-BPTT chunk
    batch_size: int = 128  # parallel streams
    steps: int = 1000
    lr: float = 4e-3  # peak; cosine to 0 over ``steps``
    weight_decay: float = 0.0
    clip: float = 1.0  # gradient-norm clipping
    forget_bias: float = 1.0
    cell: str = "lstm"  # "lstm", "gru" or "rnn" (Elman, tanh)
    bf16: bool = True
    log_every: int = 25


CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class CharRNN(nn.Module):
    """Embedding -> LSTM (or GRU, or Elman RNN) -> linear next-character logits.

    Args:
        vocab_size: number of characters.
        embed, hidden, layers: embedding width, recurrent width and depth.
        forget_bias: initial LSTM forget-gate bias (``b_ih + b_hh`` of the f gate): 1 keeps
            the cell state, and with it the gradient, from decaying at the start.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
    Shapes:
        ``x (B, T)`` int64, ``state`` (LSTM: ``(h, c)``, else ``h``; each
        ``(layers, B, hidden)``) or ``None`` -> ``(logits (B, T, vocab_size), state)``.
    """

    def __init__(self, vocab_size: int, embed: int = 64, hidden: int = 512, layers: int = 1,
                 forget_bias: float = 1.0, cell: str = "lstm") -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {list(CELLS)}, got {cell!r}")
        self.architecture_kwargs = {"vocab_size": vocab_size, "embed": embed, "hidden": hidden,
                                    "layers": layers, "forget_bias": forget_bias, "cell": cell}
        self.cell = cell
        self.embedding = nn.Embedding(vocab_size, embed)
        self.rnn = CELLS[cell](embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)
        if cell == "lstm":
            with torch.no_grad():
                for name, p in self.rnn.named_parameters():
                    if name.startswith("bias"):  # gates stacked i, f, g, o; two biases add up
                        p[hidden:2 * hidden] = forget_bias / 2

    @property
    def architecture(self) -> dict:
        return {"class": f"{type(self).__module__}.{type(self).__name__}",
                "kwargs": dict(self.architecture_kwargs)}

    def forward(self, x: torch.Tensor, state=None):
        if x.dim() != 2 or x.dtype != torch.long:
            raise ValueError(f"CharRNN expects int64 ids (B, T), got {x.dtype} "
                             f"{tuple(x.shape)}")
        out, state = self.rnn(self.embedding(x), state)  # (B, T, hidden)
        return self.head(out), state

    def pack(self, state) -> list[torch.Tensor]:
        """The state as a list of tensors (LSTM: ``[h, c]``, else ``[h]``)."""
        return list(state) if self.cell == "lstm" else [state]

    def unpack(self, tensors: list[torch.Tensor]):
        return tuple(tensors) if self.cell == "lstm" else tensors[0]


def corpus_splits(corpus: str, val_chars: int = 0
                  ) -> tuple[CharVocab, torch.Tensor, torch.Tensor]:
    """The corpus (falling back to the standard library's docstrings where the plays are
    missing, and saying so), its vocabulary, and the first 90% / last 10% as ids; ``val_chars``
    > 0 keeps only that many validation characters."""
    text = load_corpus(corpus, fallback=True)
    vocab = CharVocab(text)
    train_ids, val_ids = split_text(vocab.encode(text))
    return vocab, train_ids, val_ids[:val_chars] if val_chars else val_ids


def streams(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The training ids cut into ``batch_size`` contiguous streams ``(B, L)``."""
    length = len(ids) // batch_size
    if length < 2:
        raise ValueError(f"{len(ids)} characters cannot make {batch_size} streams")
    return ids[:length * batch_size].view(batch_size, length)


def chunk(data: torch.Tensor, step: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Inputs and targets ``(B, seq_len)`` of truncated-BPTT step ``step``, and whether the
    streams start over here (then the state must start from zero)."""
    chunks = (data.shape[1] - 1) // seq_len
    if chunks < 1:
        raise ValueError(f"streams of {data.shape[1]} characters hold no chunk of {seq_len}")
    i = step % chunks
    x = data[:, i * seq_len:(i + 1) * seq_len]
    y = data[:, i * seq_len + 1:(i + 1) * seq_len + 1]
    return x, y, i == 0


def train(ctx: Any, recipe: Recipe, vocab_size: int, train_ids: torch.Tensor,
          phase: str = "train") -> CharRNN:
    """Stateful truncated BPTT per ``recipe`` in a ``ctx.steps`` loop; the plain model.

    Under data parallelism each rank carries its own share of the streams."""
    fabric = ctx.fabric
    if recipe.batch_size % fabric.world_size:
        raise ValueError(f"batch_size {recipe.batch_size} must be divisible by the "
                         f"{fabric.world_size} devices")
    data = streams(train_ids, recipe.batch_size).chunk(fabric.world_size)[fabric.global_rank]
    ctx.manual_seed(f"init-{phase}")
    plain = CharRNN(vocab_size, recipe.embed, recipe.hidden, recipe.layers,
                    recipe.forget_bias, recipe.cell)
    optimizer = torch.optim.AdamW(plain.parameters(), lr=recipe.lr,
                                  weight_decay=recipe.weight_decay, betas=(0.9, 0.99))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.steps)
    model, optimizer = fabric.setup(plain, optimizer)
    shape = (recipe.layers, len(data), recipe.hidden)
    # The carried state: checkpointed with the loop, so a resumed run continues it.
    carried = {"state": [torch.zeros(shape) for _ in range(2 if recipe.cell == "lstm" else 1)]}
    track = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    for step in ctx.steps(recipe.steps, track=track, phase=phase, state=carried,
                          log_every=recipe.log_every):
        x, y, start = chunk(data, step, recipe.seq_len)
        if start:
            carried["state"] = [torch.zeros_like(s) for s in carried["state"]]
        x, y, state = fabric.to_device((x, y, carried["state"]))
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=recipe.bf16):
            logits, state = model(x, plain.unpack(state))
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        norm = fabric.clip_gradients(model, optimizer, max_norm=recipe.clip)
        optimizer.step()
        scheduler.step()
        # Truncate here: the next chunk starts from this state, but no gradient flows back.
        carried["state"] = [s.detach().float().cpu() for s in plain.pack(state)]
        ctx.log(step, phase=phase, loss=loss.item(), grad_norm=norm.item())
    return plain


def _stepper(model: CharRNN, bf16: bool):
    device = next(model.parameters()).device

    def step(x, state):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits, state = model(x.to(device), state)
        return logits.float().cpu(), state

    return step


def val_loss(model: CharRNN, val_ids: torch.Tensor, bf16: bool = True) -> float:
    """``val_loss``: nats per character, 64-character windows from a fresh state."""
    model.eval()
    step = _stepper(model, bf16)
    return windowed_val_loss(lambda x: step(x, None)[0], val_ids)


def score(model: CharRNN, val_ids: torch.Tensor, bf16: bool = True) -> dict[str, float]:
    """``val_loss`` and ``val_loss_stateful`` (the state carried through the split)."""
    model.eval()
    return {"val_loss": val_loss(model, val_ids, bf16),
            "val_loss_stateful": stateful_val_loss(_stepper(model, bf16), val_ids)}


@torch.no_grad()
def check_sampling(prompt: str, length: int, temperature: float, top_k: int | None) -> None:
    """Refuse what no sampler can do: an empty prompt, a negative length or temperature, a
    ``top_k`` below 1 (every zoo language model's ``sample`` calls this first)."""
    if not prompt:
        raise ValueError("the prompt must hold at least one character")
    if temperature < 0 or length < 0:
        raise ValueError(f"temperature and length must be >= 0, got {temperature}, {length}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")


def sample(model: CharRNN, vocab: CharVocab, prompt: str, length: int,
           temperature: float = 1.0, top_k: int | None = None,
           generator: torch.Generator | None = None) -> str:
    """``prompt`` followed by ``length`` sampled characters.

    Args:
        temperature: divides the logits; 0 means greedy (the most likely character).
        top_k: sample among the ``top_k`` most likely characters only.
        generator: the random stream (the same generator state gives the same text).
    Raises:
        ValueError: an empty prompt, a prompt character outside the vocabulary (named),
            a negative temperature or length, a top_k < 1.
    """
    check_sampling(prompt, length, temperature, top_k)
    model.eval()
    ids = vocab.encode(prompt)[None]  # (1, P); raises naming an unknown character
    device = next(model.parameters()).device
    logits, state = model(ids.to(device))
    out = []
    for _ in range(length):
        last = logits[0, -1].float().cpu()  # (V,): drawn with the (CPU) generator
        if temperature == 0:
            nxt = int(last.argmax())
        else:
            last = last / temperature
            if top_k is not None and top_k < len(last):
                cut = torch.topk(last, top_k).values[-1]
                last = last.masked_fill(last < cut, -math.inf)
            nxt = int(torch.multinomial(torch.softmax(last, -1), 1, generator=generator))
        out.append(nxt)
        logits, state = model(torch.tensor([[nxt]], device=device), state)
    return prompt + vocab.decode(out)


def parameter_count(cell: str, vocab_size: int, embed: int, hidden: int) -> int:
    """Parameters of a one-layer :class:`CharRNN` (embedding, recurrence, read-out)."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    return (vocab_size * embed + gates * (hidden * (embed + hidden) + 2 * hidden)
            + hidden * vocab_size + vocab_size)


def hidden_for(cell: str, parameters: int, vocab_size: int, embed: int) -> int:
    """The hidden width whose one-layer :class:`CharRNN` comes closest to ``parameters``."""
    return min(range(1, 4096), key=lambda h: abs(parameter_count(cell, vocab_size, embed, h)
                                                  - parameters))


def save_character_model(ctx: Any, name: str, model: torch.nn.Module, vocab: CharVocab,
                         metrics: dict[str, float], corpus: str) -> None:
    """Publish a character model as artifact ``(name, ctx.tier)`` with its vocabulary and
    corpus (the char LSTM here, the GPT of chapter 6)."""
    save_artifact(ctx, name, model, architecture=model.architecture, metrics=metrics,
                  extra={"vocab": vocab.chars, "corpus": corpus})


def load_character_model(name: str, tier: str) -> tuple[torch.nn.Module, CharVocab, Artifact]:
    """A published character model (eval mode), its vocabulary and its artifact."""
    model, artifact = load_model(name, tier)
    return model, CharVocab(artifact.extra["vocab"]), artifact


def save(ctx: Any, model: CharRNN, vocab: CharVocab, metrics: dict[str, float],
         corpus: str) -> None:
    """Publish ``model`` as artifact ``(NAME, ctx.tier)`` with its vocabulary."""
    save_character_model(ctx, NAME, model, vocab, metrics, corpus)


def load(tier: str) -> tuple[CharRNN, CharVocab, Artifact]:
    """The trained char LM of ``tier`` (eval mode), its vocabulary and its artifact."""
    return load_character_model(NAME, tier)
