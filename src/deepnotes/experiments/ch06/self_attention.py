"""Multi-head and self-attention: permutation equivariance, positional encoding, parity with
torch (notes 6.2.2, 6.2.3, 6.3, 6.3.1).

Everything is float64 and untrained (random weights, random inputs from named streams): the
claims are exact properties, so each threshold is a round-off bound or a clear margin, fixed
before the run.

1. Self-attention y = MHA(x, x, x) without positional encoding is permutation-
   **equivariant**: for every permutation P of the positions, SA(P x) = P SA(x), to round-off
   (:data:`ROUNDOFF`, relative). It is not *invariant* (6.3 says "invariant"; erratum): SA(P x)
   differs from SA(x) by far more than round-off (relative difference at least
   :data:`CLEAR`) for every permutation tried.
2. Adding the sinusoidal positional encoding (base 10000) before the layer breaks the
   equivariance (relative defect at least :data:`CLEAR` for every permutation), which is
   why the transformer adds it (6.3.2: "it can though, if we add positional encoding").
   PE(pos + k) is one fixed block rotation of PE(pos) (residual below :data:`ROUNDOFF`).
3. The heads of 6.2.2 are independent, with their own parameters: their attention maps
   differ (mean absolute difference between two heads' weights at least :data:`HEADS_DIFFER`).
4. Project checks of ``deepnotes.attention.MultiheadAttention``: outputs, per-head weights and
   gradients equal ``torch.nn.MultiheadAttention``'s after ``load_state_dict`` with padding
   and causal masks; the fused path (SDPA) equals the written-out path; a fully masked query
   row gets weights 0 and no NaN anywhere (torch's output there is NaN, recorded as the
   metric ``torch_nan_in_masked_row``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from deepnotes.attention.multihead import MultiheadAttention
from deepnotes.attention.positional import shift_matrix, sinusoidal_encoding
from deepnotes.experiments.base import Claim, Result, experiment

ROUNDOFF = 1e-10  # relative error of float64 quantities that are equal in exact arithmetic
CLEAR = 0.05  # a relative difference this large is no round-off
HEADS_DIFFER = 1e-3  # mean |w_head_i - w_head_j| of two heads' attention weights
F64 = torch.float64


@dataclass(frozen=True)
class Config:
    embed_dim: int = 32
    num_heads: int = 4
    length: int = 10  # positions n
    batch_size: int = 4
    permutations: int = 20  # random permutations tried (plus the reversal)
    shifts: tuple[int, ...] = (1, 2, 5, 13)  # offsets k of the PE shift check


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _permutations(ctx, cfg: Config) -> list[torch.Tensor]:
    g = ctx.rng("permutations")
    perms = [torch.arange(cfg.length - 1, -1, -1)]
    for _ in range(cfg.permutations):
        p = torch.randperm(cfg.length, generator=g)
        while torch.equal(p, torch.arange(cfg.length)):
            p = torch.randperm(cfg.length, generator=g)
        perms.append(p)
    return perms


def symmetry(ctx, cfg: Config, mha: MultiheadAttention) -> dict[str, float]:
    x = torch.randn(cfg.batch_size, cfg.length, cfg.embed_dim, generator=ctx.rng("inputs"),
                    dtype=F64)
    pe = sinusoidal_encoding(cfg.length, cfg.embed_dim, dtype=F64)

    def sa(z):
        return mha(z, z, z, need_weights=False)[0]

    y, y_pe = sa(x), sa(x + pe)
    equivariance, change, pe_defect = [], [], []
    for p in _permutations(ctx, cfg):
        yp = sa(x[:, p])
        equivariance.append(_relative(yp, y[:, p]))
        change.append(_relative(yp, y))
        pe_defect.append(_relative(sa(x[:, p] + pe), y_pe[:, p]))
    long = sinusoidal_encoding(4 * cfg.length + max(cfg.shifts), cfg.embed_dim, dtype=F64)
    shift_error = max(
        ((long[:-k] @ shift_matrix(k, cfg.embed_dim).T - long[k:]).abs().max()).item()
        for k in cfg.shifts)
    return {"equivariance_error": max(equivariance), "permutation_change_min": min(change),
            "pe_equivariance_defect_min": min(pe_defect), "pe_shift_error": shift_error}


def _masks(cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    padding = torch.zeros(cfg.batch_size, cfg.length, dtype=torch.bool)
    padding[1, cfg.length // 2:] = True  # a shorter sequence
    padding[-1, -1] = True
    causal = torch.ones(cfg.length, cfg.length, dtype=torch.bool).triu(1)
    return padding, causal


def parity(ctx, cfg: Config) -> tuple[dict[str, float], torch.Tensor]:
    ctx.manual_seed("init-mha")
    theirs = torch.nn.MultiheadAttention(cfg.embed_dim, cfg.num_heads, batch_first=True,
                                         dtype=F64)
    with torch.no_grad():  # nonzero biases, so that the comparison sees them
        theirs.in_proj_bias.normal_(generator=ctx.rng("biases"))
        theirs.out_proj.bias.normal_(generator=ctx.rng("biases", 1))
    ours = MultiheadAttention(cfg.embed_dim, cfg.num_heads, batch_first=True, dtype=F64)
    ours.load_state_dict(theirs.state_dict())
    padding, causal = _masks(cfg)
    x0 = torch.randn(cfg.batch_size, cfg.length, cfg.embed_dim, generator=ctx.rng("queries"),
                     dtype=F64)
    found = []
    for module in (ours, theirs):
        x = x0.clone().requires_grad_()
        out, w = module(x, x, x, key_padding_mask=padding, attn_mask=causal,
                        average_attn_weights=False)
        (out.sin().sum() + w.square().sum()).backward()
        grads = [x.grad] + [p.grad for p in module.parameters()]
        found.append((out.detach(), w.detach(), grads))
    (o1, w1, g1), (o2, w2, g2) = found
    metrics = {
        "torch_output_max_diff": (o1 - o2).abs().max().item(),
        "torch_weights_max_diff": (w1 - w2).abs().max().item(),
        "torch_grad_max_diff": max((a - b).abs().max().item()
                                   for a, b in zip(g1, g2, strict=True)),
    }
    # fused (SDPA) against written-out, with need_weights=False
    outs = []
    for fused in (False, True):
        ours.fused = fused
        outs.append(ours(x0, x0, x0, key_padding_mask=padding, attn_mask=causal,
                         need_weights=False)[0].detach())
    ours.fused = False
    metrics["fused_max_diff"] = (outs[0] - outs[1]).abs().max().item()
    # a fully masked row: the second sequence entirely padding
    empty = padding.clone()
    empty[1] = True
    x = x0.clone().requires_grad_()
    out, w = ours(x, x, x, key_padding_mask=empty, average_attn_weights=False)
    out.square().sum().backward()
    ref, _ = theirs(x0, x0, x0, key_padding_mask=empty)
    metrics["masked_row_max_weight"] = w[1].abs().max().item()
    metrics["nan_count"] = float(torch.isnan(out).sum() + torch.isnan(x.grad).sum())
    metrics["torch_nan_in_masked_row"] = float(torch.isnan(ref[1]).all())
    # heads: independent parameters, different maps (no mask)
    _, heads = ours(x0, x0, x0, average_attn_weights=False)  # (N, h, L, S)
    h = heads.shape[1]
    metrics["heads_min_pair_difference"] = min(
        (heads[:, i] - heads[:, j]).abs().mean().item()
        for i in range(h) for j in range(i + 1, h))
    return metrics, w1[1].detach()


def plot(weights: torch.Tensor, cfg: Config) -> Figure:
    """Per-head weights of the second sequence (padded half) under the causal mask."""
    h = weights.shape[0]
    fig = Figure(figsize=(2.4 * h, 2.7))
    axes = fig.subplots(1, h)
    for i, ax in enumerate(axes):
        ax.imshow(weights[i].numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set(title=f"head {i + 1}", xlabel="key position", ylabel="query" if i == 0 else "")
    fig.suptitle(f"causal + padding mask (keys >= {cfg.length // 2} are padding)",
                 fontsize=9)
    return fig


def plot_symmetry(metrics: dict[str, float], cfg: Config) -> Figure:
    fig = Figure(figsize=(8, 3.2))
    ax1, ax2 = fig.subplots(1, 2)
    pe = sinusoidal_encoding(64, cfg.embed_dim)
    ax1.imshow(pe.T.numpy(), aspect="auto", cmap="RdBu")
    ax1.set(xlabel="position", ylabel="dimension", title="sinusoidal PE, base 10000")
    names = ["SA(Px) vs P SA(x)\n(no PE)", "SA(Px) vs SA(x)\n(no PE)",
             "SA(Px+PE) vs\nP SA(x+PE)"]
    values = [metrics["equivariance_error"], metrics["permutation_change_min"],
              metrics["pe_equivariance_defect_min"]]
    ax2.bar(range(3), [max(v, 1e-17) for v in values], color=["C2", "C1", "C1"])
    ax2.axhline(ROUNDOFF, color="k", ls=":", lw=1, label="round-off bound")
    ax2.axhline(CLEAR, color="gray", ls="--", lw=1, label="clear difference")
    ax2.set(xticks=range(3), yscale="log", ylabel="relative difference",
            title="equivariant (max), not invariant (min)")
    ax2.set_xticklabels(names, fontsize=7)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def claims(m: dict[str, float]) -> list[Claim]:
    return [
        Claim("self_attention_permutation_equivariant",
              "Without positional encoding, self-attention is permutation-equivariant: "
              "SA(Px) = P SA(x) for every permutation tried (max relative error).",
              m["equivariance_error"], "<", ROUNDOFF),
        Claim("self_attention_not_permutation_invariant",
              "It is not invariant, as 6.3 says: reordering the input reorders the output, "
              "SA(Px) differs from SA(x) (min relative difference over permutations).",
              m["permutation_change_min"], ">", CLEAR),
        Claim("positional_encoding_breaks_equivariance",
              "With sinusoidal positional encoding added, SA(Px + PE) differs from "
              "P SA(x + PE) for every permutation tried (min relative difference).",
              m["pe_equivariance_defect_min"], ">", CLEAR),
        Claim("pe_shift_is_a_fixed_rotation",
              "PE(pos + k) = M_k PE(pos) with one block-rotation M_k for all positions "
              "(max residual over the offsets tried).",
              m["pe_shift_error"], "<", ROUNDOFF, source="project"),
        Claim("heads_attend_differently",
              "Heads with their own random parameters give different attention maps (min "
              "over head pairs of the mean absolute weight difference).",
              m["heads_min_pair_difference"], ">", HEADS_DIFFER),
        Claim("mha_matches_torch_outputs",
              "Outputs equal torch.nn.MultiheadAttention's (float64, same state dict, "
              "padding + causal masks; max absolute difference).",
              m["torch_output_max_diff"], "<", ROUNDOFF, source="project"),
        Claim("mha_matches_torch_weights",
              "Per-head attention weights equal torch's (max absolute difference).",
              m["torch_weights_max_diff"], "<", ROUNDOFF, source="project"),
        Claim("mha_matches_torch_gradients",
              "Gradients of inputs and parameters equal torch's (max absolute difference).",
              m["torch_grad_max_diff"], "<", ROUNDOFF, source="project"),
        Claim("fused_path_matches_written_out",
              "The fused path (scaled_dot_product_attention, mask inverted) equals the "
              "written-out path (max absolute difference).",
              m["fused_max_diff"], "<", ROUNDOFF, source="project"),
        Claim("fully_masked_row_has_zero_weights",
              "A query row with every key masked out gets attention weights 0 (max |w|).",
              m["masked_row_max_weight"], "<=", 0.0, source="project"),
        Claim("fully_masked_row_gives_no_nan",
              "No NaN in the outputs or input gradients with a fully masked row (count).",
              m["nan_count"], "<=", 0.0, source="project"),
    ]


def run(cfg: Config, ctx) -> Result:
    if cfg.embed_dim % cfg.num_heads or cfg.embed_dim % 2 or cfg.length < 3:
        raise ValueError("embed_dim must be even and a multiple of num_heads; length >= 3")
    metrics, weights = parity(ctx, cfg)
    ctx.manual_seed("init-self-attention")
    mha = MultiheadAttention(cfg.embed_dim, cfg.num_heads, batch_first=True, dtype=F64)
    with torch.no_grad():
        metrics.update(symmetry(ctx, cfg, mha))
    ctx.figure(plot(weights, cfg), "masked_weights_per_head")
    ctx.figure(plot_symmetry(metrics, cfg), "permutation_and_positional_encoding")
    return Result(metrics=metrics, claims=claims(metrics))


EXPERIMENT = experiment(
    name="self-attention",
    sections=("6.2.2", "6.2.3", "6.3", "6.3.1"),
    claim="Self-attention without positional encoding is permutation-equivariant (not "
          "invariant), positional encoding breaks that symmetry, and deepnotes' multi-head "
          "attention equals torch's (outputs, weights, gradients) with zeros, not NaN, for "
          "fully masked rows.",
    presets={
        "smoke": Config(embed_dim=16, num_heads=2, length=6, batch_size=3, permutations=5),
        "quick": Config(),
        "full": Config(embed_dim=64, num_heads=8, length=32, batch_size=8, permutations=200),
    },
    run=run,
    quick_seconds=1.5,
    max_threads=1,
)
