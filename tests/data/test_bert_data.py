"""BERT's data: tokens, sentence pairs, the masking rules (each one, statistically where it is
random, with fixed generators) and the span-QA set built from speeches."""

from __future__ import annotations

import pytest
import torch

from deepnotes.data import bert_data as bd

PLAY = """ACT I. SCENE 1.

Enter three.

MENENIUS.
Well, well, no more of that talk now.

CORIOLANUS.
Though there the people had more absolute power,
I say they nourish'd disobedience.

FIRST CITIZEN.
We have ever your good word upon us.

BRUTUS.
Why shall the people give their voice to him?

MENENIUS.
Come, enough of this for one night.
"""


def _vocab(words=("a", "b", "c", "d", "e", "f", "g", "h")):
    return bd.WordVocab(list(words))


def test_tokens_keep_case_and_inner_apostrophes():
    assert bd.tokenize("Nay, o'er-the KING'S men.") == [
        "Nay", ",", "o'er", "-", "the", "KING'S", "men", "."]


def test_vocab_numbers_the_specials_first_and_encodes_unknown_words_as_unk():
    vocab = bd.WordVocab.build(["b", "a", "b", "c", "c", "c", "z"], min_count=2)
    assert vocab.tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert vocab.tokens[5:] == ["c", "b"]  # by frequency; "a" and "z" occur once
    assert vocab.encode(["c", "a"]) == [5, vocab.unk]
    assert vocab.decode([2, 5, 3]) == ["[CLS]", "c", "[SEP]"]
    with pytest.raises(ValueError, match="special"):
        bd.WordVocab(["[MASK]"])


def _batch(vocab, n=400, length=64, seed=0):
    """Sequences [CLS] words [SEP] words [SEP] [PAD]..., with some [UNK]s."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(vocab.num_special, len(vocab), (n, length), generator=g)
    ids[:, 0] = vocab.cls
    ids[:, 20] = vocab.sep
    ids[:, 40] = vocab.sep
    ids[:, 41:] = vocab.pad
    ids[:, 5] = vocab.unk
    return ids


def test_masking_never_selects_padding_or_special_tokens():
    vocab = _vocab()
    ids = _batch(vocab)
    masked, labels = bd.mask_tokens(ids, vocab, torch.Generator().manual_seed(1))
    special = vocab.special_mask(ids)
    assert special.sum() > 0
    assert (labels[special] == -100).all()  # never selected, so ignored by the loss
    assert torch.equal(masked[special], ids[special])  # left as they are


def test_labels_are_the_originals_where_selected_and_minus_100_elsewhere():
    vocab = _vocab()
    ids = _batch(vocab)
    masked, labels = bd.mask_tokens(ids, vocab, torch.Generator().manual_seed(2))
    selected = labels != -100
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(masked[~selected], ids[~selected])  # not selected: never changed
    assert set(labels.unique().tolist()) - {-100} <= set(range(vocab.num_special, len(vocab)))


def test_selection_rate_is_15_percent_and_80_10_10_within_the_selection():
    vocab = _vocab([f"w{i}" for i in range(200)])
    ids = _batch(vocab, n=2000)
    masked, labels = bd.mask_tokens(ids, vocab, torch.Generator().manual_seed(3))
    eligible = ~vocab.special_mask(ids)
    selected = labels != -100
    n_eligible, n_sel = int(eligible.sum()), int(selected.sum())
    p = 0.15
    assert abs(n_sel / n_eligible - p) < 4 * (p * (1 - p) / n_eligible) ** 0.5
    to_mask = selected & (masked == vocab.mask)
    changed = selected & (masked != vocab.mask) & (masked != ids)
    kept = selected & (masked == ids)
    # A random replacement equals the original with probability 1/200.
    expected = {"mask": 0.8, "changed": 0.1 * (1 - 1 / 200), "kept": 0.1 + 0.1 / 200}
    for name, part in (("mask", to_mask), ("changed", changed), ("kept", kept)):
        q = expected[name]
        assert abs(int(part.sum()) / n_sel - q) < 4 * (q * (1 - q) / n_sel) ** 0.5, name


def test_random_replacements_are_never_special_tokens():
    vocab = _vocab(["x", "y"])  # few words: specials would be drawn often if allowed
    ids = _batch(vocab, n=2000)
    masked, labels = bd.mask_tokens(ids, vocab, torch.Generator().manual_seed(4))
    replaced = (labels != -100) & (masked != vocab.mask)
    assert replaced.sum() > 1000
    assert (masked[replaced] >= vocab.num_special).all()
    assert int((masked == vocab.mask).sum()) == int(((labels != -100) & (
        masked == vocab.mask)).sum())  # [MASK] appears only where selected


def test_masking_is_a_function_of_the_generator():
    vocab = _vocab()
    ids = _batch(vocab, n=20)
    a = bd.mask_tokens(ids, vocab, torch.Generator().manual_seed(5))
    b = bd.mask_tokens(ids, vocab, torch.Generator().manual_seed(5))
    c = bd.mask_tokens(ids, vocab, torch.Generator().manual_seed(6))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[1], c[1])


def test_sentence_pairs_follow_or_jump_and_are_laid_out_as_cls_a_sep_b_sep():
    vocab = _vocab([f"w{i}" for i in range(300)])
    # Line i is three copies of word i: a pair tells which lines it came from.
    lines = [[vocab.num_special + i] * 3 for i in range(300)]
    pairs = bd.sentence_pairs(lines, 400, 20, vocab, torch.Generator().manual_seed(0))
    ids, types, labels = (pairs[k] for k in ("input_ids", "token_type_ids",
                                             "next_sentence_label"))
    assert ids.shape == types.shape == (400, 20)
    assert abs(labels.float().mean().item() - 0.5) < 0.1
    for k in range(400):
        row = ids[k].tolist()
        assert row[0] == vocab.cls
        seps = [i for i, t in enumerate(row) if t == vocab.sep]
        assert len(seps) == 2
        a, b = row[1:seps[0]], row[seps[0] + 1:seps[1]]
        assert all(t == vocab.pad for t in row[seps[1] + 1:])
        assert types[k, :seps[0] + 1].eq(0).all() and types[k, seps[0] + 1:seps[1] + 1].eq(1).all()
        follows = b[0] == a[-1] + 1 and len(a) % 3 == 0
        assert follows == (labels[k].item() == 0), (a, b, labels[k])


def test_split_paragraphs_holds_out_every_tenth_chunk_and_keeps_every_paragraph():
    text = "\n\n".join(f"p{i}" for i in range(1000)) + "\n"
    train, held = bd.split_paragraphs(text, every=10, chunk=5)
    train_p, held_p = train.split(), held.split()
    assert sorted(train_p + held_p, key=lambda p: int(p[1:])) == [f"p{i}" for i in range(1000)]
    assert held_p[:6] == ["p45", "p46", "p47", "p48", "p49", "p95"]


def test_speeches_read_headers_and_lines():
    found = bd.speeches(PLAY * 30)  # 150 speeches: read as a play
    assert found[0].speaker == ["MENENIUS"] and found[2].speaker == ["FIRST", "CITIZEN"]
    assert found[1].lines[1] == ["I", "say", "they", "nourish'd", "disobedience", "."]
    assert len(found) == 150  # "ACT I." and "Enter three." are not speeches


def _play_examples(n=50):
    speakers = ["MENENIUS", "CORIOLANUS", "FIRST CITIZEN", "BRUTUS", "SICINIUS", "VOLUMNIA"]
    g = torch.Generator().manual_seed(0)
    words = "good my lord the people come now why shall we give voice sir noble".split()
    blocks = []
    for i in range(300):
        line = " ".join(words[j] for j in torch.randint(len(words), (6,), generator=g))
        blocks.append(f"{speakers[i % 5 if i % 7 else 5]}.\n{line.capitalize()} {i}.")
    text = "\n\n".join(blocks)
    vocab = bd.WordVocab.build(bd.tokenize(text), min_count=1)
    sp = bd.speeches(text)
    return sp, vocab, bd.qa_examples(sp, n, 60, vocab, torch.Generator().manual_seed(1))


def test_qa_answers_are_unique_spans_before_a_quoted_line_and_not_in_the_question():
    _, vocab, examples = _play_examples()
    assert len(examples) == 50
    for ex in examples:
        answer = ex.answer
        assert bd._count_span(ex.context, answer) == 1
        assert bd._count_span(ex.context, ex.question) == 1
        assert not set(answer) & set(ex.question)
        at = next(i for i in range(len(ex.context)) if ex.context[i:i + len(ex.question)]
                  == ex.question)
        # The answer is the header of the speech the quoted line belongs to.
        headers = bd._header_spans(ex.context)
        assert [h for h in headers if h[1] < at][-1] == (ex.answer_start, ex.answer_end)
        assert len({tuple(ex.context[a:b + 1]) for a, b in headers}) >= bd.MIN_SPEAKERS


def test_encoded_qa_positions_point_at_the_answer_inside_the_context():
    _, vocab, examples = _play_examples(20)
    enc = bd.encode_qa(examples, vocab, 96)
    for k, ex in enumerate(examples):
        s, e = int(enc["start_positions"][k]), int(enc["end_positions"][k])
        assert vocab.decode(enc["input_ids"][k, s:e + 1].tolist()) == ex.answer
        assert enc["context_mask"][k, s:e + 1].all()
        assert not enc["context_mask"][k, :len(ex.question) + 2].any()  # [CLS] q [SEP]
        assert enc["input_ids"][k, 0] == vocab.cls
        assert int(enc["token_type_ids"][k].sum()) == len(ex.context) + 1  # context + [SEP]
    with pytest.raises(ValueError, match="max_len"):
        bd.encode_qa(examples, vocab, 10)


def test_baselines_read_the_header_before_the_best_matching_line_or_the_first_one():
    _, _, examples = _play_examples(30)
    assert all(bd.nearest_header_baseline(ex) == " ".join(ex.answer) for ex in examples)
    first = [bd.first_header_baseline(ex) == " ".join(ex.answer) for ex in examples]
    assert 0 < sum(first) < len(first)


def test_vocab_keeps_the_listed_words_whatever_their_rank():
    tokens = ["c"] * 5 + ["b"] * 4 + ["a"] * 3 + ["NAME"]
    vocab = bd.WordVocab.build(tokens, min_count=2, max_size=7, keep=["NAME", "absent"])
    assert vocab.tokens[5:] == ["c", "NAME"]  # NAME (seen once) takes the place of "b"
    assert len(vocab) == 7 and vocab.encode(["absent"]) == [vocab.unk]
