"""Translation and captioning metrics: exact match, corpus BLEU and chrF through sacrebleu.

BLEU (Papineni et al., 2002) is a *corpus* statistic: n-gram matches and lengths are summed
over all sentences first, then combined,

    BLEU = BP * exp( (1/4) sum_{n=1..4} log p_n ),   p_n = sum matched n-grams / sum n-grams,
    BP = min(1, exp(1 - ref_len / hyp_len)),

so it is not the mean of sentence scores. sacrebleu (0-100 scale) computes it; what goes
wrong in practice is the structure of the references. ``sacrebleu.corpus_bleu(hyps, refs)``
wants ``refs`` as a list of reference *streams*: ``refs[r][i]`` is the r-th reference of
sentence ``i``. Passing one list of strings where a list of streams is expected pairs the
first hypothesis with every reference, or fails. The functions here take one reference per
hypothesis (``references[i]`` for ``hypotheses[i]``) or several (``references[i]`` a sequence
of strings), check the lengths, and build the streams.

Tokenization: ``"char"`` scores characters (the number-word translations, whose target is
German or French characters); ``"none"`` splits on spaces only (captions of generated words).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import sacrebleu


def _streams(hypotheses: Sequence[str], references: Sequence) -> list[list[str]]:
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise ValueError("hypotheses and references must be sequences of sentences, not one "
                         "string")
    if len(hypotheses) != len(references):
        raise ValueError(f"one reference entry per hypothesis expected; got "
                         f"{len(hypotheses)} hypotheses and {len(references)} references")
    if not hypotheses:
        raise ValueError("no sentences to score")
    per_sentence = [[r] if isinstance(r, str) else list(r) for r in references]
    counts = {len(r) for r in per_sentence}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"every hypothesis needs the same number (>= 1) of references; got "
                         f"counts {sorted(counts)}")
    for h in hypotheses:
        if not isinstance(h, str):
            raise ValueError(f"hypotheses must be strings; got {type(h).__name__}")
    return [list(stream) for stream in zip(*per_sentence, strict=True)]  # refs[r][i]


def corpus_bleu(hypotheses: Sequence[str], references: Sequence, *,
                tokenize: str = "char") -> float:
    """Corpus BLEU-4 on sacrebleu's 0-100 scale (its default exponential smoothing).

    Args:
        hypotheses: one string per sentence.
        references: ``references[i]`` is the reference string of sentence ``i``, or a
            sequence of reference strings.
        tokenize: ``"char"`` (characters) or ``"none"`` (split on spaces), or any sacrebleu
            tokenizer name.
    """
    streams = _streams(hypotheses, references)
    return float(sacrebleu.BLEU(tokenize=tokenize).corpus_score(list(hypotheses),
                                                                streams).score)


def corpus_chrf(hypotheses: Sequence[str], references: Sequence) -> float:
    """Corpus chrF (character n-gram F-score, beta = 2, n <= 6) on the 0-100 scale."""
    streams = _streams(hypotheses, references)
    return float(sacrebleu.CHRF().corpus_score(list(hypotheses), streams).score)


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """The fraction of hypotheses equal to their reference, character for character."""
    streams = _streams(hypotheses, references)
    hits = [any(h == stream[i] for stream in streams) for i, h in enumerate(hypotheses)]
    return sum(hits) / len(hits)


def by_bucket(buckets: Iterable[Hashable], hypotheses: Sequence[str],
              references: Sequence[str], *, tokenize: str = "char") -> dict:
    """``{bucket: {"n", "exact_match", "bleu"}}``: the metrics on each group of sentences
    (e.g. the source length), with BLEU a corpus score within the group."""
    groups: dict = {}
    for b, h, r in zip(buckets, hypotheses, references, strict=True):
        groups.setdefault(b, ([], []))
        groups[b][0].append(h)
        groups[b][1].append(r)
    return {b: {"n": len(h), "exact_match": exact_match(h, r),
                "bleu": corpus_bleu(h, r, tokenize=tokenize)}
            for b, (h, r) in sorted(groups.items())}
