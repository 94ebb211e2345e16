"""Number-word translation pairs: exact num2words targets, the morpheme alignment, the split by
number, vocabularies and padded batches."""

from __future__ import annotations

import pytest
import torch
from num2words import num2words

from deepnotes.data import numbers as nb
from deepnotes.data.numbers import (
    LANGUAGES,
    TargetVocab,
    TokenVocab,
    encode_pairs,
    english_tokens,
    morphemes,
    number_pair,
    sequence_pair,
    translation_split,
    translation_splits,
)
from deepnotes.engine import provenance

UNIT_WORDS = {num2words(u, lang="en"): u for u in range(1, 10)}


def test_english_tokens_split_hyphens_and_spaces():
    assert english_tokens(21) == ["twenty", "-", "one"]
    assert english_tokens(105) == ["one", "hundred", "and", "five"]
    assert english_tokens(999) == ["nine", "hundred", "and", "ninety", "-", "nine"]
    assert english_tokens(0) == ["zero"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_target_is_num2words_exactly_and_alignment_is_well_formed(lang):
    for n in range(1000):
        pair = number_pair(n, lang)
        assert pair.target == num2words(n, lang=lang)
        assert "".join(text for text, _ in morphemes(n, lang)) == pair.target
        assert pair.source == tuple(english_tokens(n)) and pair.numbers == (n,)
        assert len(pair.alignment) == len(pair.target)
        assert all(-1 <= i < len(pair.source) for i in pair.alignment)
        unaligned = [text for text, i in morphemes(n, lang) if i < 0]
        # only French's space in "deux cent(s)" has no source token
        assert unaligned == ([" "] if lang == "fr" and n >= 200 else [])
        if n >= 100:  # hundert / cent(s) always comes from "hundred"
            hundred = [t for t, i in morphemes(n, lang) if i == 1]
            assert "".join(hundred) in ({"hundert"} if lang == "de" else {"cent", "cents"})


@pytest.mark.parametrize("n, lang, expected", [
    (21, "de", [("ein", 2), ("und", 1), ("zwanzig", 0)]),
    (97, "de", [("sieben", 2), ("und", 1), ("neunzig", 0)]),
    (300, "de", [("drei", 0), ("hundert", 1)]),
    (113, "de", [("ein", 0), ("hundert", 1), ("dreizehn", 3)]),
    (101, "de", [("ein", 0), ("hundert", 1), ("eins", 3)]),
    (999, "de", [("neun", 0), ("hundert", 1), ("neun", 5), ("und", 4), ("neunzig", 3)]),
    (71, "fr", [("soixante", 0), (" et ", 1), ("onze", 2)]),
    (80, "fr", [("quatre", 0), ("-", 0), ("vingt", 0), ("s", 0)]),
    (77, "fr", [("soixante", 0), ("-", 0), ("dix", 0), ("-", 1), ("sept", 2)]),
    (17, "fr", [("dix", 0), ("-", 0), ("sept", 0)]),
    (100, "fr", [("cent", 1)]),
    (200, "fr", [("deux", 0), (" ", -1), ("cent", 1), ("s", 1)]),
    (999, "fr", [("neuf", 0), (" ", -1), ("cent", 1), (" ", 2), ("quatre", 3), ("-", 3),
                 ("vingt", 3), ("-", 3), ("dix", 3), ("-", 4), ("neuf", 5)]),
])
def test_worked_examples(n, lang, expected):
    assert morphemes(n, lang) == expected


@pytest.mark.parametrize("lang", LANGUAGES)
def test_unit_and_tens_morphemes_carry_the_arithmetic_of_their_english_words(lang):
    """Independent of the module's tables: read values back with num2words itself."""
    value = {num2words(v, lang=lang): v for v in range(100)} | {"ein": 1, "quatre-vingt": 80}
    for n in range(1000):
        rest, tokens = n % 100, english_tokens(n)
        if rest < 20 or rest % 10 == 0:
            continue
        parts = morphemes(n, lang)
        by_token = {i: "".join(t for t, j in parts if j == i) for i in range(len(tokens))}
        tens_i, joint_i, unit_i = len(tokens) - 3, len(tokens) - 2, len(tokens) - 1
        assert tokens[joint_i] == "-" and by_token[joint_i] in {"und", "-", " et "}
        unit, tens = value[by_token[unit_i]], value[by_token[tens_i]]
        assert unit % 10 == UNIT_WORDS[tokens[unit_i]]  # onze <- one, douze <- two
        assert tens + unit == rest  # soixante + onze = 71, soixante-dix + sept = 77
        assert tens == (rest // 10) * 10 or lang == "fr"


def test_sequence_pair_joins_with_separator_aligned_to_it():
    pair = sequence_pair([21, 300], "de")
    assert pair.source == ("twenty", "-", "one", ",", "three", "hundred")
    assert pair.target == "einundzwanzig, dreihundert"
    comma = pair.target.index(",")
    assert pair.alignment[comma:comma + 2] == (3, 3)
    assert pair.alignment[comma + 2:comma + 6] == (4, 4, 4, 4)  # drei <- three
    french = sequence_pair([5, 71, 200], "fr")
    assert french.target == "cinq, soixante et onze, deux cents"
    assert [french.source[i] for i, c in zip(french.alignment, french.target, strict=True)
            if c == ","] == [",", ","]
    assert french.alignment[-5:] == (7,) * 5 and french.source[7] == "hundred"  # cents
    with pytest.raises(ValueError, match="at least one"):
        sequence_pair([], "de")


@pytest.mark.parametrize("call, match", [
    (lambda: number_pair(1000, "de"), "0..999"),
    (lambda: number_pair(-1, "fr"), "0..999"),
    (lambda: number_pair(2.5, "de"), "integer"),
    (lambda: number_pair(True, "de"), "integer"),
    (lambda: number_pair(5, "en"), "one of"),
    (lambda: english_tokens(1000), "0..999"),
    (lambda: translation_split("es", n_train=1, n_test=1, generator=torch.Generator()), "one of"),
    (lambda: translation_split("de", max_number=1000, n_train=1, n_test=1,
                               generator=torch.Generator()), "max_number"),
    (lambda: translation_split("de", test_fraction=1.0, n_train=1, n_test=1,
                               generator=torch.Generator()), "test_fraction"),
    (lambda: translation_split("de", n_train=0, n_test=1, generator=torch.Generator()),
     "n_train"),
])
def test_invalid_input_is_a_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_decomposition_that_disagrees_with_num2words_is_an_error(monkeypatch):
    nb._morphemes.cache_clear()
    monkeypatch.setattr(nb, "num2words", lambda n, lang: "x" if lang == "de" else
                        num2words(n, lang=lang))
    try:
        with pytest.raises(RuntimeError, match="num2words"):
            number_pair(21, "de")
    finally:
        nb._morphemes.cache_clear()


def test_translation_split_by_number_deterministic_and_recorded():
    def split(seed):
        return translation_split("fr", max_numbers=3, n_train=600, n_test=200,
                                 generator=torch.Generator().manual_seed(seed))
    with provenance.collecting() as records:
        train, test = split(0)
    assert (train, test) == split(0) and train != split(1)[0]
    assert len(train) == 600 and len(test) == 200
    train_numbers = {n for p in train for n in p.numbers}
    test_numbers = {n for p in test for n in p.numbers}
    assert not train_numbers & test_numbers  # no test number is ever seen in training
    assert test_numbers <= set(range(1, 1000)) and len(test_numbers) <= round(0.15 * 999)
    assert {len(p.numbers) for p in train} == {len(p.numbers) for p in test} == {1, 2, 3}
    assert all(p == sequence_pair(p.numbers, "fr") for p in test[:20])
    assert [(r["split"], r["size"]) for r in records["data"]] == [("train", 600), ("test", 200)]


def test_vocabularies_roundtrip_and_specials():
    pairs = [sequence_pair([21, 300], "de"), number_pair(7, "de")]
    src = TokenVocab.from_pairs(pairs)
    tgt = TargetVocab.from_pairs(pairs)
    assert src.tokens[:2] == ["<pad>", "<unk>"] and src.pad_id == 0
    assert src.decode(src.encode(pairs[0].source)) == list(pairs[0].source)
    assert src.encode(["seventy"]).tolist() == [src.unk_id]
    assert (tgt.pad_id, tgt.bos_id, tgt.eos_id) == (0, 1, 2) and len(tgt) == 3 + len(tgt.chars)
    ids = tgt.encode("dreizehn")
    assert ids.min() >= 3 and tgt.decode(ids) == "dreizehn"
    assert tgt.decode([1, *ids.tolist(), 2, 5, 0]) == "dreizehn"  # stops at <eos>
    with pytest.raises(ValueError, match="not in the target"):
        tgt.encode("ß")
    with pytest.raises(ValueError, match="outside"):
        src.decode([len(src)])


def test_encode_pairs_pads_shifts_and_aligns():
    pairs = [sequence_pair([21, 300], "de"), number_pair(7, "de")]
    src, tgt = TokenVocab.from_pairs(pairs), TargetVocab.from_pairs(pairs)
    batch = encode_pairs(pairs, src, tgt)
    t = len(pairs[0].target) + 1
    assert batch.source.shape == (2, 6) and batch.target_in.shape == (2, t)
    assert batch.target_out.shape == batch.alignment.shape == (2, t)
    assert batch.source_lengths.tolist() == [6, 1] and batch.target_lengths.tolist() == [t, 7]
    assert batch.source[1, 1:].eq(0).all() and batch.target_out[1, 7:].eq(0).all()
    assert batch.target_in[:, 0].eq(tgt.bos_id).all()
    assert torch.equal(batch.target_in[0, 1:], batch.target_out[0, :-1])
    assert batch.target_out[0, -1] == tgt.eos_id and batch.target_out[1, 6] == tgt.eos_id
    for row, pair in enumerate(pairs):
        assert tgt.decode(batch.target_out[row]) == pair.target
        assert src.decode(batch.source[row]) == list(pair.source)
        n = len(pair.target)
        assert batch.alignment[row, :n].tolist() == list(pair.alignment)
        assert batch.alignment[row, n:].eq(-1).all()  # <eos> and padding
    assert len(batch) == 2 and batch.to("cpu").source.dtype == torch.long


def test_one_word_numbers_always_train_and_the_test_holds_unseen_compounds():
    train, test = translation_split("de", n_train=3000, n_test=300, max_numbers=1,
                                    generator=torch.Generator().manual_seed(3))
    test_numbers = {n for p in test for n in p.numbers}
    assert all(len(english_tokens(n)) > 1 for n in test_numbers)  # e.g. 47, 305, never 11
    train_numbers = {n for p in train for n in p.numbers}
    assert {11, 13, 20, 90} <= train_numbers


def test_validation_numbers_are_disjoint_from_train_and_test():
    splits = translation_splits("de", n_train=2000, n_val=200, n_test=200, max_numbers=2,
                                generator=torch.Generator().manual_seed(4))
    numbers = {k: {n for p in v for n in p.numbers} for k, v in splits.items()}
    assert not numbers["val"] & numbers["train"] and not numbers["val"] & numbers["test"]
    assert not numbers["test"] & numbers["train"]
    assert len(splits["val"]) == 200 and all(len(english_tokens(n)) > 1 for n in numbers["val"])
