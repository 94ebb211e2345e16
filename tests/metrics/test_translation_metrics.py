"""BLEU, chrF and exact match: sacrebleu with references in the structure it expects."""

from __future__ import annotations

import math

import pytest

from deepnotes.metrics import by_bucket, corpus_bleu, corpus_chrf, exact_match


def test_character_bleu_matches_a_hand_computed_case():
    # "abcx" against "abcd": 1-grams 3/4, 2-grams 2/3, 3-grams 1/2, 4-grams 0/1, which
    # sacrebleu's exponential smoothing scores as 1/2 (the first zero count); BP = 1.
    expected = 100 * math.exp((math.log(3 / 4) + math.log(2 / 3) + math.log(1 / 2)
                               + math.log(1 / 2)) / 4)
    assert corpus_bleu(["abcx"], ["abcd"]) == pytest.approx(expected, abs=1e-9)
    assert corpus_bleu(["einundzwanzig"], ["einundzwanzig"]) == pytest.approx(100.0)


def test_bleu_is_a_corpus_statistic_not_a_mean_of_sentence_scores():
    # Sentence 1 is perfect, sentence 2 has a wrong last word; counts pool before the mean.
    hyps, refs = ["a b c d", "a b c x"], ["a b c d", "a b c d"]
    pooled = 100 * math.exp((math.log(7 / 8) + math.log(5 / 6) + math.log(3 / 4)
                             + math.log(1 / 2)) / 4)
    assert corpus_bleu(hyps, refs, tokenize="none") == pytest.approx(pooled, abs=1e-9)
    sentence_mean = (100 + corpus_bleu(hyps[1:], refs[1:], tokenize="none")) / 2
    assert abs(pooled - sentence_mean) > 1


def test_the_brevity_penalty_applies_to_short_hypotheses():
    full = corpus_bleu(["a b c d e f"], ["a b c d e f"], tokenize="none")
    short = corpus_bleu(["a b c d"], ["a b c d e f"], tokenize="none")
    assert full == pytest.approx(100.0)
    assert short == pytest.approx(100 * math.exp(1 - 6 / 4), abs=1e-9)  # precisions all 1


def test_references_are_paired_with_their_own_hypothesis_and_several_references_work():
    hyps = ["abcd", "wxyz"]
    assert corpus_bleu(hyps, ["abcd", "wxyz"]) == pytest.approx(100.0)
    assert corpus_bleu(hyps, ["wxyz", "abcd"]) < 10  # swapped references score low
    # Two references each: the second reference of sentence 1 matches.
    assert corpus_bleu(hyps, [("zzzz", "abcd"), ("wxyz", "qqqq")]) == pytest.approx(100.0)
    assert exact_match(hyps, ["abcd", "wxyq"]) == 0.5
    assert corpus_chrf(hyps, ["abcd", "wxyz"]) == pytest.approx(100.0)
    assert 0 < corpus_chrf(["abcx"], ["abcd"]) < 100


def test_bad_structures_fail_with_a_clear_message():
    with pytest.raises(ValueError, match="one reference entry per hypothesis"):
        corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="not one string"):
        corpus_bleu(["abc"], "abc")
    with pytest.raises(ValueError, match="same number"):
        corpus_bleu(["a", "b"], [("a",), ("b", "c")])


def test_buckets_score_each_group_separately():
    out = by_bucket([1, 2, 1], ["abcde", "cdefg", "efghi"], ["abcde", "xxxxx", "efghi"])
    assert out[1] == {"n": 2, "exact_match": 1.0, "bleu": pytest.approx(100.0)}
    assert out[2]["n"] == 1 and out[2]["exact_match"] == 0.0
