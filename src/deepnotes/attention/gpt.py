"""A decoder-only transformer (GPT, notes 6.3.2; Radford et al. 2018) for characters.

The classes come in dependency order, as in nanoGPT, and every forward says its shapes:

* :class:`KVCache`: the keys and values one attention layer has computed so far, kept so that
  generation feeds only the newest token instead of the whole context at every step.
* :class:`CausalSelfAttention`: multi-head self-attention in which position t attends to
  positions <= t only. The training path is ``F.scaled_dot_product_attention(...,
  is_causal=True)``; ``fused=False`` computes the same function written out (scores, mask,
  softmax, weighted sum), tested equal (``tests/attention/test_gpt.py``).
* :class:`MLP`: ``GELU(x W_1 + b_1) W_2 + b_2``, four times wider inside.
* :class:`Block`: pre-norm, ``x = x + attn(LN(x)); x = x + mlp(LN(x))`` (GPT-2's order; the
  residual stream itself is never normalized, so a final layer norm follows the last block).
* :class:`GPT`: token embedding plus a learned position embedding, ``n_layer`` blocks, the
  final layer norm and the read-out ``logits = h E^T``: **weight tying**, the output head *is*
  the token-embedding matrix ``E`` (one tensor, counted and saved once; no separate head
  parameter exists, so a state dict holds it once).

Generation (:meth:`GPT.generate`): ``temperature`` divides the logits, ``temperature=0`` is
greedy (argmax; no division by zero), ``top_k`` keeps the k likeliest tokens. With
``use_cache=True`` the prompt runs once (filling one :class:`KVCache` per layer) and every
further step feeds one token; without it every step runs the whole context.

**The context policy past ``block_size``** (the model has ``block_size`` learned positions):
both paths keep the same context, the tokens from a start index on. When the context is full,
the start jumps forward by ``block_size // 2`` tokens; the cache is then rebuilt from the kept
tokens (one forward of ``block_size // 2`` tokens every ``block_size // 2`` steps). The no-cache
path feeds exactly that context at every step, so the two compute the same logits, and greedy
generation gives the same tokens with and without the cache (tested). nanoGPT instead slides
the window by one token per step, which no cache can reproduce exactly with learned
positions (the cached keys would sit at the wrong positions).

:func:`parameter_groups` splits the parameters for AdamW: weight decay on the matrices of the
linear layers only; none on biases, layer-norm gains, the position embedding or the tied token
embedding (decay would shrink the rows of rare characters, which get few gradients, toward
zero; the embedding is also the output matrix, where nanoGPT decays it: a choice, documented).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class KVCache:
    """Keys and values of one attention layer for positions ``0 .. length-1``.

    Preallocated for ``capacity`` positions; :meth:`append` writes the newest ones and returns
    views of everything so far. Shapes ``(B, n_head, capacity, head_dim)``.
    """

    def __init__(self, batch: int, n_head: int, capacity: int, head_dim: int,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        self.k = torch.empty(batch, n_head, capacity, head_dim, device=device, dtype=dtype)
        self.v = torch.empty_like(self.k)
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k, v (B, h, T, d)`` at the next T positions; all keys and values so far."""
        end = self.length + k.shape[2]
        if end > self.k.shape[2]:
            raise ValueError(f"the cache holds {self.k.shape[2]} positions, "
                             f"{self.length} used, cannot add {k.shape[2]}")
        self.k[:, :, self.length:end] = k
        self.v[:, :, self.length:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one (E, 3E) projection for queries, keys and values,
    ``n_head`` heads of ``E / n_head``, an (E, E) output projection.

    ``fused`` (a plain attribute): ``F.scaled_dot_product_attention``; False: written out.

    Under bf16 autocast the projections run in bf16 and the attention core (scores, softmax,
    weighted sum) in float32: on the calibration CPU (Intel Xeon, Sapphire Rapids, AMX) the
    bf16 flash-attention backward took 8x the fp32 one (18 ms against 2.2 ms per layer at
    batch 64 x 64, width 128), more than the bf16 matrix products saved.
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True,
                 fused: bool = True) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        self.n_head, self.head_dim = n_head, n_embd // n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.dropout = dropout
        self.resid_dropout = nn.Dropout(dropout)
        self.fused = fused

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """``x (B, T, E)`` -> ``(B, T, E)``. With a ``cache`` holding P earlier positions, x
        holds positions ``P .. P+T-1`` and attends to all ``P + T`` positions causally."""
        B, T, E = x.shape
        q, k, v = self.qkv(x).split(E, dim=2)  # 3 x (B, T, E)
        q, k, v = (t.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
                   for t in (q, k, v))  # (B, h, T, d)
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.append(k, v)  # (B, h, P + T, d)
        p = self.dropout if self.training else 0.0
        dtype = q.dtype
        if dtype in (torch.bfloat16, torch.float16):  # the attention core in float32
            q, k, v = q.float(), k.float(), v.float()
        with torch.autocast(x.device.type, enabled=False):  # (autocast would cast back)
            y = self._core(q, k, v, past, p)  # (B, h, T, d)
        y = y.to(dtype).transpose(1, 2).contiguous().view(B, T, E)  # heads side by side
        return self.resid_dropout(self.proj(y))

    def _core(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past: int,
              p: float) -> torch.Tensor:
        """softmax(q k^T / sqrt(d), causal) v: ``q (B, h, T, d)`` at positions
        ``past .. past+T-1``, ``k, v (B, h, past+T, d)`` -> ``(B, h, T, d)``."""
        T = q.shape[2]
        if self.fused:
            if past == 0:
                return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            if T == 1:  # the newest token sees every cached position: nothing to mask
                return F.scaled_dot_product_attention(q, k, v, dropout_p=p)
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p,
                                                  attn_mask=~future_mask(T, past, q.device))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, h, T, P+T)
        scores = scores.masked_fill(future_mask(T, past, q.device), float("-inf"))
        weights = F.dropout(torch.softmax(scores, dim=-1), p)
        return weights @ v


def future_mask(T: int, past: int = 0, device: torch.device | str | None = None
                ) -> torch.Tensor:
    """``(T, past + T)`` boolean, True where query ``past + i`` would see a later key ``j``
    (``j > past + i``): the positions causal attention masks out."""
    i = torch.arange(T, device=device)[:, None] + past
    j = torch.arange(past + T, device=device)[None, :]
    return j > i


class MLP(nn.Module):
    """The position-wise feed-forward layer: E -> 4E -> GELU -> E."""

    def __init__(self, n_embd: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, E) -> (B, T, E)
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(LN(x))``, then ``x + mlp(LN(x))``."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True,
                 fused: bool = True) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias, fused)
        self.ln2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, dropout, bias)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache)  # (B, T, E)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Decoder-only transformer language model with tied input and output embeddings.

    Args:
        vocab_size: number of tokens (characters).
        block_size: the longest context (learned positions ``0 .. block_size-1``).
        n_layer, n_head, n_embd: depth, heads per attention layer, width.
        dropout: on attention weights, sub-layer outputs and embeddings (training only).
        bias: biases in the linear layers and layer norms.
        fused: attention through ``F.scaled_dot_product_attention`` (False: written out).
    Shapes:
        ``idx (B, T)`` int64, ``T <= block_size`` -> logits ``(B, T, vocab_size)``.

    Initialization as GPT-2's: weights N(0, 0.02), the residual output projections N(0,
    0.02 / sqrt(2 n_layer)) (each block adds two terms to the stream), biases zero.
    """

    def __init__(self, vocab_size: int, block_size: int = 64, n_layer: int = 4,
                 n_head: int = 4, n_embd: int = 128, dropout: float = 0.0, bias: bool = True,
                 fused: bool = True) -> None:
        super().__init__()
        self.architecture_kwargs = {"vocab_size": vocab_size, "block_size": block_size,
                                    "n_layer": n_layer, "n_head": n_head, "n_embd": n_embd,
                                    "dropout": dropout, "bias": bias}
        self.vocab_size, self.block_size = vocab_size, block_size
        self.n_head, self.head_dim = n_head, n_embd // n_head
        self.token_embedding = nn.Embedding(vocab_size, n_embd)  # also the output head
        self.position_embedding = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout, bias, fused)
                                    for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # attn.proj and mlp.proj write to the stream
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    @property
    def architecture(self) -> dict:
        return {"class": f"{type(self).__module__}.{type(self).__name__}",
                "kwargs": dict(self.architecture_kwargs)}

    @property
    def head_weight(self) -> torch.Tensor:
        """The output head's (vocab_size, n_embd) matrix: the token embedding itself."""
        return self.token_embedding.weight

    @property
    def fused(self) -> bool:
        return all(b.attn.fused for b in self.blocks)

    @fused.setter
    def fused(self, value: bool) -> None:
        for b in self.blocks:
            b.attn.fused = value

    def forward(self, idx: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        """``idx (B, T)`` -> next-token logits ``(B, T, vocab_size)``.

        With ``caches`` (one per block, all holding P positions), idx holds positions
        ``P .. P+T-1`` and the caches grow by T."""
        if idx.dim() != 2 or idx.dtype != torch.long:
            raise ValueError(f"GPT expects int64 ids (B, T), got {idx.dtype} "
                             f"{tuple(idx.shape)}")
        past = caches[0].length if caches else 0
        T = idx.shape[1]
        if past + T > self.block_size:
            raise ValueError(f"{past + T} positions exceed block_size {self.block_size}")
        pos = torch.arange(past, past + T, device=idx.device)  # (T,)
        x = self.drop(self.token_embedding(idx) + self.position_embedding(pos))  # (B, T, E)
        for i, block in enumerate(self.blocks):
            x = block(x, caches[i] if caches else None)
        return F.linear(self.ln_f(x), self.head_weight)  # (B, T, V): tied weights

    def new_caches(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> list[KVCache]:
        """One empty :class:`KVCache` of ``block_size`` positions per block."""
        dtype = dtype or self.token_embedding.weight.dtype
        return [KVCache(batch, self.n_head, self.block_size, self.head_dim, device, dtype)
                for _ in self.blocks]

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, use_cache: bool = True,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``idx (B, P)`` followed by ``max_new_tokens`` generated tokens, ``(B, P + n)``.

        Args:
            temperature: divides the logits; 0 is greedy (the argmax, never a division).
            top_k: sample among the ``top_k`` likeliest tokens only.
            use_cache: feed one token per step through a :class:`KVCache` per layer
                (the same tokens as without it; module docstring for the context policy).
            generator: the random stream (the same generator state gives the same tokens).
        Callers switch the model to ``eval()`` (dropout).
        """
        if temperature < 0 or max_new_tokens < 0:
            raise ValueError(f"temperature and max_new_tokens must be >= 0, got "
                             f"{temperature}, {max_new_tokens}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if idx.shape[1] < 1:
            raise ValueError("the prompt must hold at least one token")
        keep = max(1, self.block_size // 2)  # tokens kept when the context is full
        start = max(0, idx.shape[1] - self.block_size)  # the context is idx[:, start:]
        caches, logits = None, None
        for _ in range(max_new_tokens):
            if idx.shape[1] - start > self.block_size:  # full: jump forward, keep `keep`
                start = idx.shape[1] - keep
                caches = None
            if not use_cache:
                logits = self(idx[:, start:])[:, -1]  # (B, V)
            elif caches is None:  # (re)fill the caches with the whole context
                caches = self.new_caches(idx.shape[0], idx.device)
                logits = self(idx[:, start:], caches)[:, -1]
            else:  # only the newest token
                logits = self(idx[:, -1:], caches)[:, -1]
            nxt = next_token(logits.float(), temperature, top_k, generator)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx


def next_token(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token per row of ``logits (B, V)``: ``(B, 1)`` int64.

    ``temperature == 0``: the argmax. Else softmax(logits / temperature), restricted to the
    ``top_k`` largest logits when given (ties at the cut stay in)."""
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        cut = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < cut, -math.inf)
    probs = torch.softmax(logits, dim=-1)
    if generator is not None and generator.device != probs.device:
        # A run's named streams are CPU generators: draw there (the same text on every device).
        return torch.multinomial(probs.cpu(), 1, generator=generator).to(probs.device)
    return torch.multinomial(probs, 1, generator=generator)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's two groups: the weights of ``nn.Linear`` layers (decayed) and everything else
    (biases, layer norms, embeddings including the tied head; not decayed)."""
    decay = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": rest, "weight_decay": 0.0}]


def parameter_count(vocab_size: int, block_size: int, n_layer: int, n_embd: int,
                    bias: bool = True) -> int:
    """Parameters of :class:`GPT` (the tied head counted once, as it is stored)."""
    b = 1 if bias else 0
    per_block = (2 * (n_embd + b * n_embd)  # two layer norms
                 + 3 * n_embd * n_embd + b * 3 * n_embd  # qkv
                 + n_embd * n_embd + b * n_embd  # attention output projection
                 + 4 * n_embd * n_embd + b * 4 * n_embd  # mlp in
                 + 4 * n_embd * n_embd + b * n_embd)  # mlp out
    return (vocab_size * n_embd + block_size * n_embd + n_layer * per_block
            + n_embd + b * n_embd)


def training_flops_per_token(n_layer: int, n_embd: int, block_size: int,
                             vocab_size: int) -> int:
    """Matrix-multiply FLOPs of one training token (forward + backward = 3 x forward):
    ``6 N_matmul + 6 n_layer T E`` (the attention scores and weighted sum at context
    ``T``, averaged over the causal triangle: ``2 * 2 * T/2 * E`` forward per layer)."""
    matmul = n_layer * 12 * n_embd * n_embd + vocab_size * n_embd
    return 6 * matmul + 6 * n_layer * block_size * n_embd
