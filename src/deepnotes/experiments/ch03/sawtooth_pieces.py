"""Saw-tooth functions counted exactly: the notes' piece formula and the depth constructions.

Notes sec. 3.2, Example 3.1 and Lemma 3.2.1 (Telgarsky 2016). For ``T = 1..T_max``:

1. the linear pieces of the notes' ``t^T`` (``t(x) = hat(x) + hat(x - 1)``) and of ``hat^T``,
   counted exactly from the breakpoints (rational arithmetic, :mod:`deepnotes.theory.piecewise`)
   and again, independently, from slope changes of float64 samples on a dyadic grid (exact
   there: every breakpoint is a dyadic rational); compared with the notes' ``2 + 2^(T+1)``;
2. a deep relu net with ``3T + 2`` units equals ``t^T`` exactly (as functions, and in float64 on
   the dyadic grid), while the one-hidden-layer net built from the breakpoints needs
   ``2^(T+1) + 1`` units (one per breakpoint; a unit has only one, so none can do with fewer);
3. the notes' shallow-to-deep conversion (Figure 3.1) of random shallow nets with mixed-sign
   output weights: the deep narrow net (3-4 units per layer) equals the shallow one on
   ``[-L, inf)``, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch
from matplotlib.figure import Figure

from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.theory import (
    ScalarReluNet,
    count_pieces_on_grid,
    deep_hat_net,
    deep_sawtooth_net,
    hat,
    hat_piecewise,
    iterate,
    notes_piece_count,
    power,
    shallow_net_from_piecewise,
    shallow_to_deep,
    two_hats,
    two_hats_piecewise,
)


@dataclass(frozen=True)
class Config:
    max_compositions: int = 8  # T_max
    grid_bits: int = 12  # dyadic grid step 2^-grid_bits on [-1, 3] (needs > T_max)
    conversions: int = 20  # random shallow nets converted to deep ones
    shallow_width: int = 8
    shift: float = 4.0  # L: the conversion is exact on [-L, inf); inputs drawn from [-L, L]


def _dyadic_grid(bits: int) -> torch.Tensor:
    """``k / 2^bits`` on [-1, 3], float64 (exact)."""
    return torch.arange(-(2 ** bits), 3 * 2 ** bits + 1, dtype=torch.float64) / 2 ** bits


def _random_shallow(width: int, shift: float, generator: torch.Generator):
    """A shallow net with dyadic weights (so float64 evaluation is exact) and mixed signs."""
    def dyadic(lo: int, hi: int, scale: int) -> list[Fraction]:
        ints = torch.randint(lo, hi + 1, (width,), generator=generator).tolist()
        return [Fraction(i, scale) for i in ints]

    w = [v if v != 0 else Fraction(1) for v in dyadic(-8, 8, 4)]
    b = dyadic(-int(4 * shift), int(4 * shift), 4)
    alpha = dyadic(-8, 8, 4)
    return ScalarReluNet([[[v] for v in w], [alpha]], [b, [Fraction(1, 2)]])


def run(cfg: Config, ctx) -> Result:
    if cfg.grid_bits <= cfg.max_compositions:
        raise ValueError(f"grid_bits must exceed max_compositions so every breakpoint "
                         f"k/2^T lies on the grid, got {cfg.grid_bits} <= {cfg.max_compositions}")
    grid = _dyadic_grid(cfg.grid_bits)
    grid_list = grid.tolist()
    t_pl, h_pl = two_hats_piecewise(), hat_piecewise()
    rows = []
    for T in range(1, cfg.max_compositions + 1):
        tT, hT = power(t_pl, T), power(h_pl, T)
        deep_t, deep_h = deep_sawtooth_net(T), deep_hat_net(T)
        shallow = shallow_net_from_piecewise(tT)
        with torch.no_grad():
            reference = iterate(two_hats, grid, T)  # (G,) the notes' formula applied T times
            deep_err = max((deep_t(grid) - reference).abs().max().item(),
                           (deep_h(grid) - iterate(hat, grid, T)).abs().max().item())
            shallow_err = (shallow(grid) - reference).abs().max().item()
        row = {
            "T": T,
            "pieces_R": tT.pieces(),
            "pieces_0_2": tT.pieces(0, 2),
            "pieces_grid": count_pieces_on_grid(grid_list, reference.tolist()),
            "notes_formula": notes_piece_count(T),
            "hat_pieces_0_1": hT.pieces(0, 1),
            "hat_pieces_R": hT.pieces(),
            "deep_units": deep_t.hidden_units,
            "deep_equal": deep_t.piecewise().equals(tT) and deep_h.piecewise().equals(hT),
            "deep_err": deep_err,
            "shallow_units": shallow.hidden_units,
            "breakpoints": len(tT.breakpoints()),
            "shallow_equal": shallow.piecewise().equals(tT),
            "shallow_err": shallow_err,
            "lemma_bound": 6 ** T,  # Lemma 3.2.1 applied T times to the 6-piece t
        }
        rows.append(row)
        ctx.log(T, phase="pieces", pieces=row["pieces_R"], notes_formula=row["notes_formula"],
                deep_units=row["deep_units"], shallow_units=row["shallow_units"])

    gen = ctx.rng("shallow-nets")
    conversion_failures, conversion_err, deep_widths = 0, 0.0, set()
    x_conv = torch.linspace(-cfg.shift, cfg.shift, 4097, dtype=torch.float64)
    for _ in range(cfg.conversions):
        shallow = _random_shallow(cfg.shallow_width, cfg.shift, gen)
        deep = shallow_to_deep(shallow, cfg.shift)
        deep_widths.update(deep.widths())
        if not deep.piecewise().agrees_with(shallow.piecewise(), lo=-cfg.shift):
            conversion_failures += 1
        with torch.no_grad():
            conversion_err = max(conversion_err,
                                 (deep(x_conv) - shallow(x_conv)).abs().max().item())

    formula_mismatch = sum(r["pieces_R"] != r["notes_formula"] for r in rows)
    grid_mismatch = sum(r["pieces_grid"] != r["pieces_R"] for r in rows)
    hat_mismatch = sum(r["hat_pieces_0_1"] != 2 ** r["T"] for r in rows)
    deep_not_equal = sum(not r["deep_equal"] for r in rows)
    shallow_not_minimal = sum((not r["shallow_equal"]) or r["shallow_units"] != r["breakpoints"]
                              for r in rows)
    max_deep_err = max(r["deep_err"] for r in rows)

    fig = Figure(figsize=(14, 3.8))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    x_plot = torch.linspace(-0.25, 2.25, 4001, dtype=torch.float64)
    for T in range(1, min(cfg.max_compositions, 4) + 1):
        ax1.plot(x_plot, iterate(two_hats, x_plot, T) + 1.2 * (T - 1), lw=1, label=f"T={T}")
    ax1.set(title="$t^T$, $t(x) = \\hat h(x) + \\hat h(x-1)$ (shifted up)", xlabel="x")
    ax1.legend(fontsize=7)
    Ts = [r["T"] for r in rows]
    ax2.semilogy(Ts, [r["pieces_R"] for r in rows], "o", ms=8, label="counted (breakpoints)")
    ax2.semilogy(Ts, [r["notes_formula"] for r in rows], "k+", ms=10,
                 label="notes: $2 + 2^{T+1}$")
    ax2.semilogy(Ts, [r["hat_pieces_0_1"] for r in rows], "s", ms=5,
                 label="$\\hat h^T$ on [0,1]: $2^T$")
    ax2.semilogy(Ts, [r["lemma_bound"] for r in rows], ":", c="gray",
                 label="Lemma 3.2.1 bound $6^T$")
    ax2.set(title="linear pieces of $t^T$ on R", xlabel="T", ylabel="pieces")
    ax2.legend(fontsize=7)
    ax3.semilogy(Ts, [r["shallow_units"] for r in rows], "o-",
                 label="1 hidden layer (exact, minimal)")
    ax3.semilogy(Ts, [r["deep_units"] for r in rows], "s-", label="T hidden layers (exact)")
    ax3.set(title="units to represent $t^T$ exactly", xlabel="T", ylabel="hidden units")
    ax3.legend(fontsize=7)
    ctx.figure(fig, "sawtooth_pieces")

    last = rows[-1]
    metrics = {
        "max_compositions": float(cfg.max_compositions),
        "grid_points": float(len(grid)),
        "formula_mismatches": float(formula_mismatch),
        "grid_count_mismatches": float(grid_mismatch),
        "hat_count_mismatches": float(hat_mismatch),
        "deep_not_equal": float(deep_not_equal),
        "deep_max_abs_error": max_deep_err,
        "shallow_not_minimal_or_wrong": float(shallow_not_minimal),
        "shallow_max_abs_error": max(r["shallow_err"] for r in rows),
        "conversion_failures": float(conversion_failures),
        "conversion_max_abs_error": conversion_err,
        "conversion_max_width": float(max(deep_widths)),
        "pieces_at_max_T": float(last["pieces_R"]),
        "shallow_units_at_max_T": float(last["shallow_units"]),
        "deep_units_at_max_T": float(last["deep_units"]),
    }
    for r in rows:
        metrics[f"pieces_T{r['T']}"] = float(r["pieces_R"])
    T = cfg.max_compositions
    return Result(
        metrics=metrics,
        claims=[
            Claim("notes_formula_mismatches", f"The exact piece count of t^T on R equals the "
                  f"notes' 2 + 2^(T+1) for every T = 1..{T} (number of T that differ).",
                  formula_mismatch, "<=", 0),
            Claim("grid_count_mismatches", "An independent count (slope changes on a dyadic "
                  "grid) agrees with the breakpoint count (number of T that differ).",
                  grid_mismatch, "<=", 0, source="project"),
            Claim("deep_net_max_abs_error", f"A relu net with T hidden layers of 3 units "
                  f"({last['deep_units']} units at T={T}) equals t^T exactly in float64 on the "
                  f"dyadic grid (max abs error).", max_deep_err, "<=", 0.0, source="project"),
            Claim("deep_net_not_equal", "The deep net's exact piecewise-linear function equals "
                  "t^T and hat^T (number of T where it does not).", deep_not_equal, "<=", 0),
            Claim("shallow_not_minimal", f"The one-hidden-layer net with one unit per "
                  f"breakpoint ({last['shallow_units']} = 2^(T+1)+1 units at T={T}) represents "
                  f"t^T exactly (number of T where it fails).", shallow_not_minimal, "<=", 0),
            Claim("conversion_failures", f"The shallow-to-deep conversion of {cfg.conversions} "
                  f"random shallow nets is exact on [-L, inf) (number that differ).",
                  conversion_failures, "<=", 0),
        ],
    )


EXPERIMENT = experiment(
    name="sawtooth-pieces",
    sections=("3.2",),
    claim="The T-fold composition of the notes' two-hat saw-tooth has exactly 2 + 2^(T+1) "
          "linear pieces; a deep relu net with 3T + 2 units computes it exactly, a shallow one "
          "needs 2^(T+1) + 1 units; shallow nets convert exactly into deep narrow ones.",
    presets={"smoke": Config(max_compositions=3, grid_bits=6, conversions=3),
             "quick": Config(),
             "full": Config(max_compositions=12, grid_bits=15, conversions=200,
                            shallow_width=32)},
    run=run,
    quick_seconds=2.0,
    max_threads=1,
)
