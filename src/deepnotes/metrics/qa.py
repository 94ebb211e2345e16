"""Exact match and F1 of extractive question answering, as SQuAD scores them (Rajpurkar et
al. 2016; the official ``evaluate-v1.1.py``).

Both compare *normalized* strings: lower case, punctuation removed, the articles ``a``,
``an``, ``the`` removed, white space collapsed. Exact match is 1 when the normalized
prediction equals a normalized gold answer; F1 is the harmonic mean of token precision and
recall between the two bags of tokens (tokens counted with multiplicity). With several gold
answers an example scores its best. Corpus scores are means over examples, as fractions in
[0, 1] (``torchmetrics.text.SQuAD`` reports the same numbers in percent; tested).
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str],
                 golds: Sequence[str | Sequence[str]]) -> dict[str, float]:
    """``{"exact_match", "f1"}`` in [0, 1], each example scored against its best gold answer
    (a string or a list of strings)."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} gold answers")
    if not predictions:
        raise ValueError("no predictions to score")
    em = f1 = 0.0
    for pred, gold in zip(predictions, golds, strict=True):
        answers = [gold] if isinstance(gold, str) else list(gold)
        em += max(exact_match_score(pred, g) for g in answers)
        f1 += max(f1_score(pred, g) for g in answers)
    return {"exact_match": em / len(predictions), "f1": f1 / len(predictions)}
