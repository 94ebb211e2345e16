"""Data for BERT (notes 6.3.2): word tokens, sentence pairs, the masking collator, and a
span question-answering set built from the plays.

**Tokens.** Words and punctuation: :func:`tokenize` splits on the regex :data:`TOKEN`
(letters with inner apostrophes, ``it's``, ``o'er``; every other non-space character alone).
Case is kept (speaker headers are upper case, ``MENENIUS``; in speech they are ``Menenius``).
:class:`WordVocab` keeps the training text's most frequent words (at least ``min_count``
occurrences, at most ``max_size``) after five special tokens: ``[PAD]`` = 0, ``[UNK]`` = 1,
``[CLS]`` = 2, ``[SEP]`` = 3, ``[MASK]`` = 4. Words are the unit because sequences of a few
speeches stay under 128 tokens (characters would need 4-5 times as many positions) and a
speaker's name is one to three tokens.

**Split** (:func:`split_paragraphs`): every tenth chunk of 50 paragraphs is held out
(pretraining and the QA training set read the rest; QA validation and test sets the
held-out part), so both parts cover every play.

**Sentence pairs** (:func:`sentence_pairs`): the paper's "sentences" are spans of contiguous
text, not linguistic sentences. Segment A is a run of consecutive lines of the file (speaker
headers included) starting at a random line; segment B is, with probability 1/2, the lines
that follow A (IsNext, label 0) and otherwise a run starting at a random line (NotNext,
label 1). Input: ``[CLS] A [SEP] B [SEP]``, segment ids 0 for ``[CLS] A [SEP]``, 1 after,
padding ``[PAD]``.

**Masked LM** (:func:`mask_tokens`, Devlin et al. 2019, 3.1): every position that is not
padding or a special token is selected with probability 0.15; a selected token becomes
``[MASK]`` with probability 0.8, a random token (uniform over the non-special ids, never a
special one) with probability 0.1, and stays itself with probability 0.1. Labels are the
original ids at selected positions and -100 (``F.cross_entropy``'s ``ignore_index``)
everywhere else, padding and special tokens included.

**Span QA** (:func:`qa_examples`): a context is a passage of consecutive speeches,
``SPEAKER . line line ... SPEAKER . line ...``; the question quotes one line of one speech
(at least :data:`MIN_QUESTION_WORDS` words); the answer is the span of the speaker's name in
the header before that line. An example is kept only when the answer is unambiguous and not
in the question: the quoted line occurs once in the context, the answer's tokens occur once
as a span of the context (the speaker has one speech there), no token of the answer is in
the question, and the answer has no ``[UNK]``. The passage holds at least three speakers, and
the quoted speech is drawn uniformly among those that qualify, so "the first speaker" is
right about a third of the time or less. Input: ``[CLS] question [SEP] context [SEP]``;
``start``/``end`` index the answer's first and last token in that sequence.

Where the plays are missing (the test fallback, the standard library's docstrings), a
"speech" is a paragraph of at least two lines whose header is its first line (at most
:data:`MAX_HEADER_WORDS` words): the same task, the header of the block that holds the
quoted line.

Baselines (:func:`nearest_header_baseline`, :func:`first_header_baseline`) work on the
token strings only, without a model.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*|\S")
SPEAKER = re.compile(r"^[A-Z][A-Z' -]*[A-Z]\.$")  # "MENENIUS.", "KING RICHARD."
PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIALS = (PAD, UNK, CLS, SEP, MASK)
IGNORE_INDEX = -100  # F.cross_entropy's default ignore_index
MASK_PROB, MASK_TOKEN_PROB, RANDOM_TOKEN_PROB = 0.15, 0.8, 0.1
MIN_QUESTION_WORDS = 4
MAX_HEADER_WORDS = 8
MIN_SPEAKERS = 3


def tokenize(text: str) -> list[str]:
    """Words (letters with inner apostrophes) and single punctuation characters."""
    return TOKEN.findall(text)


class WordVocab:
    """Special tokens (ids 0-4, :data:`SPECIALS`), then words by decreasing frequency (ties
    alphabetical). Unknown words encode as ``[UNK]``."""

    def __init__(self, words: Sequence[str]):
        if any(w in SPECIALS for w in words):
            raise ValueError("a word list may not contain the special tokens")
        self.tokens = list(SPECIALS) + list(words)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.pad, self.unk, self.cls, self.sep, self.mask = range(len(SPECIALS))
        self.num_special = len(SPECIALS)

    @classmethod
    def build(cls, tokens: Iterable[str], min_count: int = 2, max_size: int = 8000,
              keep: Iterable[str] = ()) -> WordVocab:
        """The ``max_size`` most frequent words seen ``min_count`` times or more, specials
        included; the words of ``keep`` (seen at least once) are in it whatever their rank
        (they take the places of the least frequent others), so a small vocabulary can
        still spell every speaker's name."""
        counts = collections.Counter(tokens)
        by_rank = lambda w: (-counts[w], w)  # noqa: E731
        kept = sorted({w for w in keep if counts[w] > 0}, key=by_rank)
        others = sorted((w for w, c in counts.items() if c >= min_count and w not in kept),
                        key=by_rank)
        room = max(0, max_size - len(SPECIALS) - len(kept))
        return cls(sorted(kept + others[:room], key=by_rank))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.index.get(t, self.unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[int(i)] for i in ids]

    def special_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """True where ``ids`` is a special token ([PAD], [UNK], [CLS], [SEP], [MASK])."""
        return ids < self.num_special


# ------------------------------------------------------------------------- lines and pairs
def text_lines(text: str) -> list[str]:
    """The non-blank lines of ``text``, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def split_paragraphs(text: str, every: int = 10, chunk: int = 50) -> tuple[str, str]:
    """The text's paragraphs (blocks between blank lines) in consecutive chunks of
    ``chunk``; every ``every``-th chunk (the last of each ten) is held out, the rest is the
    training part. Both parts span all the plays, so the held-out speeches' speakers are
    words of the training vocabulary (a held-out *play* would make every name ``[UNK]``).
    Returns ``(training text, held-out text)``, paragraphs joined by blank lines."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    parts: tuple[list[str], list[str]] = ([], [])
    for i, p in enumerate(paragraphs):
        parts[(i // chunk) % every == every - 1].append(p)
    return "\n\n".join(parts[0]) + "\n", "\n\n".join(parts[1]) + "\n"


def _run(lines: Sequence[list[int]], start: int, budget: int, fill: bool = False) -> list[int]:
    """Tokens of lines ``start, start+1, ...`` that fit in ``budget`` (at least the start of
    the first line); with ``fill``, the next line is cut to fill the budget exactly (the
    paper's truncation) where the text lasts."""
    out: list[int] = []
    i = start
    while i < len(lines) and len(out) + len(lines[i]) <= budget:
        out.extend(lines[i])
        i += 1
    if i < len(lines) and (fill or not out):
        out.extend(lines[i][:budget - len(out)])
    return out


def sentence_pairs(lines: Sequence[list[int]], n: int, max_len: int, vocab: WordVocab,
                   generator: torch.Generator) -> dict[str, torch.Tensor]:
    """``n`` next-sentence pairs (module docstring) of ``max_len`` tokens: A is whole
    lines (about half the budget), B fills the rest (its last line cut), so the pairs carry
    no padding unless the text runs out.

    Args:
        lines: the encoded lines of the text (:func:`text_lines`, tokenized, encoded).
    Returns:
        ``input_ids``, ``token_type_ids`` (N, max_len) int64 and ``next_sentence_label`` (N,)
        (0 = IsNext, 1 = NotNext, the convention of Hugging Face's BERT).
    """
    if len(lines) < 4:
        raise ValueError(f"sentence pairs need at least 4 lines, got {len(lines)}")
    budget = max_len - 3
    budget_a = budget // 2
    ids = torch.full((n, max_len), vocab.pad, dtype=torch.long)
    types = torch.zeros((n, max_len), dtype=torch.long)
    starts = torch.randint(0, len(lines) - 2, (n,), generator=generator).tolist()
    is_next = (torch.rand(n, generator=generator) < 0.5).tolist()
    randoms = torch.randint(0, len(lines) - 1, (n,), generator=generator).tolist()
    labels = torch.tensor([0 if nxt else 1 for nxt in is_next])
    for k in range(n):
        a = _run(lines, starts[k], budget_a)
        after = starts[k] + 1
        while after < len(lines) and sum(map(len, lines[starts[k]:after])) < len(a):
            after += 1
        if is_next[k] and after < len(lines):
            b_start = after
        else:
            b_start = randoms[k]
            if b_start == after:  # a random line that happens to follow is not NotNext
                b_start = (b_start + len(lines) // 2) % (len(lines) - 1)
            labels[k] = 1
        b = _run(lines, b_start, budget - len(a), fill=True)
        seq = [vocab.cls, *a, vocab.sep, *b, vocab.sep]
        ids[k, :len(seq)] = torch.tensor(seq)
        types[k, len(a) + 2:len(seq)] = 1
    return {"input_ids": ids, "token_type_ids": types, "next_sentence_label": labels}


def mask_tokens(input_ids: torch.Tensor, vocab: WordVocab, generator: torch.Generator,
                mask_prob: float = MASK_PROB) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking (module docstring): ``(masked input_ids, labels)``, labels -100 where
    not selected. Padding and special tokens are never selected; a random replacement is
    never a special token."""
    selectable = ~vocab.special_mask(input_ids)
    u = torch.rand(input_ids.shape, generator=generator)
    how = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(vocab.num_special, len(vocab), input_ids.shape,
                               generator=generator)
    selected = selectable & (u < mask_prob)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    to_mask = selected & (how < MASK_TOKEN_PROB)
    to_random = selected & (how >= MASK_TOKEN_PROB) & (
        how < MASK_TOKEN_PROB + RANDOM_TOKEN_PROB)
    masked = input_ids.masked_fill(to_mask, vocab.mask)
    masked = torch.where(to_random, random_ids, masked)
    return masked, labels


# ------------------------------------------------------------------------- speeches and QA
@dataclass(frozen=True)
class Speech:
    speaker: list[str]  # header tokens without the closing period
    lines: list[list[str]]  # tokenized lines of the speech


def speeches(text: str) -> list[Speech]:
    """The speeches of a play text: blocks (separated by blank lines) whose first line is a
    speaker header (:data:`SPEAKER`, e.g. ``KING RICHARD.``) and that have a line of speech.
    A text with fewer than 100 of them (not a play) gives its paragraphs of at least two
    lines instead, each headed by its first line (module docstring)."""
    blocks = [[ln.strip() for ln in b.splitlines() if ln.strip()]
              for b in re.split(r"\n\s*\n", text)]
    blocks = [b for b in blocks if len(b) >= 2]
    found = [Speech(tokenize(b[0][:-1]), [tokenize(ln) for ln in b[1:]])
             for b in blocks if SPEAKER.match(b[0])]
    if len(found) >= 100:
        return found
    return [Speech(tokenize(b[0]), [tokenize(ln) for ln in b[1:]]) for b in blocks
            if 0 < len(tokenize(b[0])) <= MAX_HEADER_WORDS]


@dataclass(frozen=True)
class QAExample:
    question: list[str]
    context: list[str]
    answer_start: int  # first answer token, index into context
    answer_end: int  # last answer token (inclusive)

    @property
    def answer(self) -> list[str]:
        return self.context[self.answer_start:self.answer_end + 1]


def _count_span(tokens: Sequence[str], span: Sequence[str]) -> int:
    k = len(span)
    return sum(1 for i in range(len(tokens) - k + 1) if list(tokens[i:i + k]) == list(span))


def qa_examples(speech_list: Sequence[Speech], n: int, max_context: int, vocab: WordVocab,
                generator: torch.Generator, speeches_per_context: int = 5,
                lines_per_speech: int = 2, max_question: int = 16) -> list[QAExample]:
    """Up to ``n`` span-QA examples (module docstring) from passages of
    ``speeches_per_context`` consecutive speeches, each cut to its first
    ``lines_per_speech`` lines, and the passage to ``max_context`` tokens (a speech keeps the
    lines that fit). Passages start at random speeches; the
    question quotes a line of a speech drawn among those that qualify."""
    out: list[QAExample] = []
    seen: set[tuple[int, int]] = set()
    order = torch.randperm(max(1, len(speech_list) - speeches_per_context),
                           generator=generator).tolist()
    for first in order:
        if len(out) >= n:
            break
        context: list[str] = []
        spans: list[tuple[Speech, int, list[tuple[int, int]]]] = []  # speech, header at, lines
        for sp in speech_list[first:first + speeches_per_context]:
            header = [*sp.speaker, "."]
            if len(context) + len(header) + (len(sp.lines[0]) if sp.lines else 0) > max_context:
                break
            at = len(context)
            context.extend(header)
            line_spans = []
            for line in sp.lines[:lines_per_speech]:
                if len(context) + len(line) > max_context:
                    break
                line_spans.append((len(context), len(context) + len(line)))
                context.extend(line)
            spans.append((sp, at, line_spans))
        if len({tuple(sp.speaker) for sp, _, _ in spans}) < MIN_SPEAKERS:
            continue
        candidates = []
        for si, (sp, _, line_spans) in enumerate(spans):
            answer = sp.speaker
            if not answer or _count_span(context, answer) != 1 or vocab.unk in vocab.encode(
                    answer):
                continue
            for li, (a, b) in enumerate(line_spans):
                question = context[a:b]
                words = [t for t in question if t[0].isalpha()]
                if (len(words) < MIN_QUESTION_WORDS or len(question) > max_question
                        or _count_span(context, question) != 1
                        or set(answer) & set(question)):
                    continue
                candidates.append((si, li))
        if not candidates:
            continue
        si, li = candidates[int(torch.randint(len(candidates), (1,), generator=generator))]
        if (first, si) in seen:
            continue
        seen.add((first, si))
        sp, at, line_spans = spans[si]
        a, b = line_spans[li]
        out.append(QAExample(question=context[a:b], context=context, answer_start=at,
                             answer_end=at + len(sp.speaker) - 1))
    return out


def encode_qa(examples: Sequence[QAExample], vocab: WordVocab,
              max_len: int) -> dict[str, torch.Tensor]:
    """``[CLS] question [SEP] context [SEP]`` as tensors: ``input_ids``, ``token_type_ids``,
    ``context_mask`` (True on context tokens, where an answer may start or end),
    ``start_positions``, ``end_positions`` (N,)."""
    n = len(examples)
    ids = torch.full((n, max_len), vocab.pad, dtype=torch.long)
    types = torch.zeros((n, max_len), dtype=torch.long)
    context_mask = torch.zeros((n, max_len), dtype=torch.bool)
    starts = torch.zeros(n, dtype=torch.long)
    ends = torch.zeros(n, dtype=torch.long)
    for k, ex in enumerate(examples):
        seq = [vocab.cls, *vocab.encode(ex.question), vocab.sep, *vocab.encode(ex.context),
               vocab.sep]
        if len(seq) > max_len:
            raise ValueError(f"example {k} has {len(seq)} tokens > max_len {max_len}")
        offset = len(ex.question) + 2
        ids[k, :len(seq)] = torch.tensor(seq)
        types[k, offset:len(seq)] = 1
        context_mask[k, offset:offset + len(ex.context)] = True
        starts[k], ends[k] = ex.answer_start + offset, ex.answer_end + offset
    return {"input_ids": ids, "token_type_ids": types, "context_mask": context_mask,
            "start_positions": starts, "end_positions": ends}


# ------------------------------------------------------------------------- baselines
def _is_header(token: str) -> bool:
    return len(token) > 1 and token.isupper() and token.isalpha()


def _header_spans(context: Sequence[str]) -> list[tuple[int, int]]:
    """Runs of upper-case words followed by ``.`` (``KING RICHARD .``): (first, last)."""
    spans = []
    i = 0
    while i < len(context):
        if _is_header(context[i]):
            j = i
            while j + 1 < len(context) and _is_header(context[j + 1]):
                j += 1
            if j + 1 < len(context) and context[j + 1] == ".":
                spans.append((i, j))
            i = j + 1
        else:
            i += 1
    return spans


def nearest_header_baseline(ex: QAExample) -> str:
    """String matching with the task's structure: find the context window (as long as the
    question) with the most question tokens in it, and answer the upper-case name before a
    ``.`` nearest before that window. A strong rule: it knows how speeches are laid out."""
    q = collections.Counter(ex.question)
    k = len(ex.question)
    best, best_at = -1, 0
    for i in range(len(ex.context) - k + 1):
        overlap = sum((collections.Counter(ex.context[i:i + k]) & q).values())
        if overlap > best:
            best, best_at = overlap, i
    before = [s for s in _header_spans(ex.context) if s[1] < best_at]
    if not before:
        return ""
    a, b = before[-1]
    return " ".join(ex.context[a:b + 1])


def first_header_baseline(ex: QAExample) -> str:
    """The first speaker of the passage (ignores the question)."""
    spans = _header_spans(ex.context)
    return " ".join(ex.context[spans[0][0]:spans[0][1] + 1]) if spans else ""
