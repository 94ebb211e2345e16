"""Number-word NMT: the training step of each model of `nmt` and `transformer-nmt`.

Prints, side by side in one run (interleaved rounds, best of --repeats), ms per training step
(forward, backward, Adam) on the same batches of 64 two-number sentences, at the quick-tier
sizes: the bi-GRU encoder-decoder with Bahdanau attention, the same without attention (the
fixed vector of 6.1), and the encoder-decoder transformer of 6.3.1 (pre-norm, fused
attention). The RNN decoders step through the target one character at a time; the
transformer's decoder sees every position at once under its causal mask (the notes' "O(1)
sequential operations").

    .venv/bin/python benchmarks/bench_nmt.py [--repeats 3] [--steps 20]

Numbers depend on the machine (AMX or not) and on what else runs on it: compare ratios within
one run, and write the CPU model next to every figure you record.
"""

from __future__ import annotations

import argparse
import time

import torch

from deepnotes.attention.seq2seq import Seq2Seq
from deepnotes.data.numbers import TargetVocab, TokenVocab, encode_pairs, translation_split
from deepnotes.zoo.number_nmt import Recipe, TransformerTranslator, loss_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    recipe = Recipe()
    train, _ = translation_split("de", n_train=2000, n_test=10, max_numbers=2,
                                 generator=torch.Generator().manual_seed(0))
    src, tgt = TokenVocab.from_pairs(train), TargetVocab.from_pairs(train)
    data = encode_pairs(train, src, tgt)
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(args.steps):
        i = torch.randint(0, len(data), (recipe.batch_size,), generator=g)
        s, t = int(data.source_lengths[i].max()), int(data.target_lengths[i].max())
        batches.append((data.source[i, :s], data.source_lengths[i], data.target_in[i, :t],
                        data.target_out[i, :t]))
    torch.manual_seed(0)
    models = {
        "bi-GRU + attention (nmt)": Seq2Seq(len(src), len(tgt), recipe.embed, recipe.hidden,
                                            recipe.hidden, attention=True),
        "bi-GRU fixed vector (nmt)": Seq2Seq(len(src), len(tgt), recipe.embed, recipe.hidden,
                                             recipe.hidden, attention=False),
        "transformer (transformer-nmt)": TransformerTranslator(len(src), len(tgt)),
    }
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, m in models.items()}

    def run(name: str) -> float:
        model, opt = models[name], optimizers[name]
        loss_of(model, *batches[0]).backward()  # warm-up
        t0 = time.perf_counter()
        for batch in batches:
            loss = loss_of(model, *batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return (time.perf_counter() - t0) / len(batches) * 1000

    best = dict.fromkeys(models, float("inf"))
    for _ in range(args.repeats):
        for name in models:
            best[name] = min(best[name], run(name))
    chars = sum(int((b[3] > 0).sum()) for b in batches) / len(batches)
    print(f"number-word NMT training step, batch {recipe.batch_size}, {chars:.0f} target "
          f"characters per batch, {torch.get_num_threads()} threads, fp32:")
    base = best["bi-GRU + attention (nmt)"]
    for name, ms in best.items():
        params = sum(p.numel() for p in models[name].parameters())
        print(f"  {name:<32} {ms:7.1f} ms/step  {1000 / ms:6.1f} steps/s  "
              f"{ms / base:5.2f}x attention RNN  ({params} parameters)")


if __name__ == "__main__":
    main()
