"""Number words as translation pairs with a known alignment (chapter 6, Example 6.1).

The task: translate an integer written in English words into its German (or French) spelling,
``"twenty - one" -> "einundzwanzig"``. The source is English *word tokens*, the target the
German/French *characters* (a character decoder can then spell compounds it never saw). Every
target string equals ``num2words(n, lang=lang)`` exactly.

Source tokens (:func:`english_tokens`): ``num2words(n, lang="en")`` split on spaces and hyphens,
the hyphen kept as its own token ``"-"`` (the compound marker), commas dropped:
``21 -> ["twenty", "-", "one"]``, ``105 -> ["one", "hundred", "and", "five"]``.

Several numbers (:func:`sequence_pair`): the source joins them with the token ``","``, the
target with the two characters ``", "`` (no number word contains a comma); both separator
characters are aligned to the ``","`` token.

The known alignment. Each target string is built from morphemes by the rules of the language
(units, teens, tens, the joint ``und`` / ``et`` / ``-``, hundreds, French ``soixante-dix``,
``quatre-vingt(s)``, ``vingt et un``, plural ``-s``); the concatenation is checked against
num2words (``RuntimeError`` otherwise). Each morpheme carries a *role*, and each role is one
English token of the same number:

* **multiplier** (``drei`` of ``dreihundert``, ``deux`` of ``deux cents``) <- the English digit
  before ``hundred``; **hundred** (``hundert``, ``cent``, with its plural ``s``) <- ``hundred``.
  French ``cent`` alone (100-199) has no multiplier, so English ``one`` gets no character.
* **and**: the joint between the hundreds and the rest (French ``" "`` in ``cent un``) <-
  ``and``. German writes no joint there (``einhunderteins``): ``and`` gets no character.
* **tens** / **ones**: the morphemes carrying the tens of the rest <- the English tens word
  (``zwanzig`` <- ``twenty``); the morpheme carrying the unit digit <- the English unit word
  (``ein`` <- ``one``). **joint** (``und``, ``" et "``, the hyphen before the unit part) <-
  ``"-"``. Where English writes the rest as one word (1-19, or round tens), every morpheme of
  the rest maps to that word: ``dreizehn`` <- ``thirteen``, ``dix-sept`` <- ``seventeen``,
  ``soixante-dix`` <- ``seventy``, ``quatre-vingts`` <- ``eighty``.
* French arithmetic differs from English above 60; the rule is the one above, by arithmetic
  part: the morpheme that holds the unit digit is the unit part, everything before it the tens
  part. ``71 = soixante et onze`` (60 + 11): ``soixante`` <- ``seventy``, ``" et "`` <- ``"-"``,
  ``onze`` <- ``one``; ``77 = soixante-dix-sept``: ``soixante-dix`` <- ``seventy``, the second
  ``-`` <- ``"-"``, ``sept`` <- ``seven``; ``92 = quatre-vingt-douze``: ``quatre-vingt`` <-
  ``ninety``, ``-`` <- ``"-"``, ``douze`` <- ``two``.
* The only characters without a source (alignment ``-1``) are the French space between a
  multiplier and ``cent`` (``deux cents``): English separates those words by a space, which
  is no token.
"""

from __future__ import annotations

import functools
import importlib.metadata
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from num2words import num2words

from deepnotes.engine import provenance

LANGUAGES = ("de", "fr")
MAX_NUMBER = 999
SOURCE_SEPARATOR = ","
TARGET_SEPARATOR = ", "
MULT, HUNDRED, AND, TENS, JOINT, ONES, NONE = ("mult", "hundred", "and", "tens", "joint",
                                               "ones", None)

_DE = ("null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn vierzehn "
       "fünfzehn sechzehn siebzehn achtzehn neunzehn").split()
_DE_TENS = "- - zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig".split()
_FR = ("zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze "
       "quinze seize").split()
_FR_TENS = "- - vingt trente quarante cinquante soixante".split()


@dataclass(frozen=True)
class NumberPair:
    """One translation pair. ``alignment[i]`` is the index into ``source`` of the token that
    target character ``i`` comes from, ``-1`` where none (module docstring)."""
    numbers: tuple[int, ...]
    source: tuple[str, ...]
    target: str
    alignment: tuple[int, ...]


def _check(n: int, lang: str | None = None) -> int:
    if isinstance(n, bool):
        raise ValueError(f"n must be an integer in 0..{MAX_NUMBER}, got {n!r}")
    try:
        n = operator.index(n)
    except TypeError:
        raise ValueError(f"n must be an integer in 0..{MAX_NUMBER}, got {n!r}") from None
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"n must be an integer in 0..{MAX_NUMBER}, got {n}")
    if lang is not None and lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES} (the source is English), got {lang!r}")
    return n


def english_tokens(n: int) -> list[str]:
    """English words of ``n`` (``num2words(n, lang="en")`` split on spaces and hyphens, ``"-"``
    kept as a token, commas dropped)."""
    words = num2words(_check(n), lang="en").replace(",", "").replace("-", " - ")
    return words.split()


def _english_roles(n: int, tokens: list[str]) -> dict[str, int]:
    """Role -> index of the English token that plays it (see the module docstring)."""
    hundreds, rest = divmod(n, 100)
    roles: dict[str, int] = {ONES: 0} if n == 0 else {}
    i = 0
    if hundreds:
        roles.update({MULT: 0, HUNDRED: 1})
        i = 2
        if rest:
            roles[AND], i = 2, 3
    if 0 < rest < 20:
        roles.update({TENS: i, JOINT: i, ONES: i})  # one word holds the whole rest
    elif rest and rest % 10 == 0:
        roles[TENS] = i
    elif rest:
        roles.update({TENS: i, JOINT: i + 1, ONES: i + 2})
    expected = {HUNDRED: "hundred", AND: "and"}
    if rest >= 20 and rest % 10:
        expected[JOINT] = "-"
    if len(tokens) != max(roles.values()) + 1 or any(
            tokens[roles[r]] != word for r, word in expected.items() if r in roles):
        raise RuntimeError(f"English tokens {tokens} of {n} do not have the expected structure "
                           f"(hundreds, 'and', tens '-' unit); num2words changed its spelling")
    return roles


def _german(n: int) -> list[tuple[str, str | None]]:
    if n == 0:
        return [(_DE[0], ONES)]
    hundreds, rest = divmod(n, 100)
    out = [("ein" if hundreds == 1 else _DE[hundreds], MULT), ("hundert", HUNDRED)] \
        if hundreds else []
    tens, unit = divmod(rest, 10)
    if 0 < rest < 20:
        out.append((_DE[rest], ONES))  # eins, zwölf, dreizehn (sechzehn, siebzehn)
    elif rest and unit == 0:
        out.append((_DE_TENS[tens], TENS))
    elif rest:
        out += [("ein" if unit == 1 else _DE[unit], ONES), ("und", JOINT),
                (_DE_TENS[tens], TENS)]
    return out


def _french_rest(rest: int) -> list[tuple[str, str | None]]:
    """1..99 in French (traditional spelling, as num2words writes it)."""
    if rest <= 16:
        return [(_FR[rest], ONES)]
    if rest < 20:
        return [("dix", TENS), ("-", JOINT), (_FR[rest - 10], ONES)]
    if rest < 60:
        base, left = [(_FR_TENS[rest // 10], TENS)], rest % 10
    elif rest < 80:
        base, left = [("soixante", TENS)], rest - 60  # 70 = 60 + 10
    else:
        base, left = [("quatre", TENS), ("-", TENS), ("vingt", TENS)], rest - 80  # 80 = 4 * 20
    if left == 0:
        return base + ([("s", TENS)] if rest == 80 else [])  # quatre-vingts, plural when final
    if left == 10:
        return base + [("-", TENS), ("dix", TENS)]  # soixante-dix, quatre-vingt-dix
    if left > 16:
        return base + [("-", TENS), ("dix", TENS), ("-", JOINT), (_FR[left - 10], ONES)]
    joint = " et " if left in (1, 11) and rest < 80 else "-"  # vingt et un, soixante et onze
    return base + [(joint, JOINT), (_FR[left], ONES)]


def _french(n: int) -> list[tuple[str, str | None]]:
    if n == 0:
        return [(_FR[0], ONES)]
    hundreds, rest = divmod(n, 100)
    out: list[tuple[str, str | None]] = []
    if hundreds:
        if hundreds > 1:
            out += [(_FR[hundreds], MULT), (" ", NONE)]
        out.append(("cent", HUNDRED))
        if hundreds > 1 and rest == 0:
            out.append(("s", HUNDRED))  # deux cents, but deux cent un
        if rest:
            out.append((" ", AND))
    return out + (_french_rest(rest) if rest else [])


@functools.lru_cache(maxsize=4096)
def _morphemes(n: int, lang: str) -> tuple[tuple[str, int], ...]:
    roles = _english_roles(n, english_tokens(n))
    parts = _german(n) if lang == "de" else _french(n)
    built, expected = "".join(text for text, _ in parts), num2words(n, lang=lang)
    if built != expected:
        raise RuntimeError(f"the morpheme decomposition of {n} ({lang}) spells {built!r}, "
                           f"num2words {_version()} writes {expected!r}")
    return tuple((text, -1 if role is None else roles[role]) for text, role in parts)


def morphemes(n: int, lang: str) -> list[tuple[str, int]]:
    """``(morpheme, index of its English source token or -1)`` in target order; the texts
    concatenate to ``num2words(n, lang=lang)``. ``morphemes(21, "de") == [("ein", 2),
    ("und", 1), ("zwanzig", 0)]``."""
    return list(_morphemes(_check(n, lang), lang))


def number_pair(n: int, lang: str) -> NumberPair:
    """The pair of one number, ``0 <= n <= 999``."""
    parts = morphemes(n, lang)
    alignment = tuple(i for text, i in parts for _ in text)
    return NumberPair((int(n),), tuple(english_tokens(n)), "".join(t for t, _ in parts),
                      alignment)


def sequence_pair(numbers: Sequence[int], lang: str) -> NumberPair:
    """Several numbers, joined by ``","`` (source) and ``", "`` (target, aligned to ``","``)."""
    if len(numbers) == 0:
        raise ValueError("sequence_pair needs at least one number")
    source: list[str] = []
    target: list[str] = []
    alignment: list[int] = []
    for k, n in enumerate(numbers):
        if k:
            alignment += [len(source)] * len(TARGET_SEPARATOR)
            source.append(SOURCE_SEPARATOR)
            target.append(TARGET_SEPARATOR)
        one = number_pair(n, lang)
        alignment += [i + len(source) if i >= 0 else -1 for i in one.alignment]
        source += one.source
        target.append(one.target)
    return NumberPair(tuple(int(n) for n in numbers), tuple(source), "".join(target),
                      tuple(alignment))


def _version() -> str:
    try:
        return importlib.metadata.version("num2words")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def translation_split(lang: str, *, max_number: int = MAX_NUMBER, test_fraction: float = 0.15,
                      max_numbers: int = 3, n_train: int, n_test: int,
                      generator: torch.Generator) -> tuple[list[NumberPair], list[NumberPair]]:
    """Train and test pairs split *by number* (:func:`translation_splits` without validation)."""
    splits = translation_splits(lang, max_number=max_number, test_fraction=test_fraction,
                                val_fraction=0.0, max_numbers=max_numbers, n_train=n_train,
                                n_val=0, n_test=n_test, generator=generator)
    return splits["train"], splits["test"]


def translation_splits(lang: str, *, max_number: int = MAX_NUMBER, test_fraction: float = 0.15,
                       val_fraction: float = 0.1, max_numbers: int = 3, n_train: int,
                       n_val: int, n_test: int,
                       generator: torch.Generator) -> dict[str, list[NumberPair]]:
    """``{"train", "val", "test"}`` pairs split *by number*.

    The test numbers are ``round(test_fraction * max_number)`` (at least one) of the numbers in
    ``1..max_number`` that English writes with more than one word, drawn by ``generator``; the
    validation numbers the next ``round(val_fraction * max_number)`` of them; the rest are the
    train numbers. The one-word numbers (1-20, the round tens 30-90) always train: they are the
    dictionary (a held-out "eleven" appears nowhere else by itself, so no model could know
    "elf"), and validation and test ask for unseen *compounds* of seen words. Each sequence
    has ``k`` numbers, ``k`` uniform in ``1..max_numbers``, drawn uniformly with replacement
    from its side's numbers, so no test (or validation) number occurs in training.
    """
    _check(0, lang)
    if not 2 <= max_number <= MAX_NUMBER:
        raise ValueError(f"max_number must lie in 2..{MAX_NUMBER}, got {max_number}")
    compound = [n for n in range(1, max_number + 1) if len(english_tokens(n)) > 1]
    n_test_numbers = max(1, round(test_fraction * max_number))
    n_val_numbers = round(val_fraction * max_number) if n_val else 0
    if (not 0 < test_fraction < 1 or not 0 <= val_fraction < 1
            or n_test_numbers + n_val_numbers >= len(compound) or (n_val and not n_val_numbers)):
        raise ValueError(f"test_fraction and val_fraction must lie between 0 and 1, give the "
                         f"validation split numbers when it has pairs, and leave train "
                         f"compounds ({len(compound)} numbers up to {max_number} have several "
                         f"words); got {test_fraction} and {val_fraction}")
    for name, value in {"max_numbers": max_numbers, "n_train": n_train, "n_test": n_test}.items():
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")
    if n_val < 0:
        raise ValueError(f"n_val must be >= 0, got {n_val}")
    order = [compound[i] for i in torch.randperm(len(compound), generator=generator).tolist()]
    held = {"test": set(order[:n_test_numbers]),
            "val": set(order[n_test_numbers:n_test_numbers + n_val_numbers])}
    sides = {"test": sorted(held["test"]), "val": sorted(held["val"]),
             "train": [n for n in range(1, max_number + 1)
                       if n not in held["test"] | held["val"]]}
    out = {}
    for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        pool = sides[split]
        if not count:
            out[split] = []
            continue
        lengths = torch.randint(1, max_numbers + 1, (count,), generator=generator).tolist()
        picks = torch.randint(0, len(pool), (count, max_numbers), generator=generator).tolist()
        out[split] = [sequence_pair([pool[j] for j in row[:k]], lang)
                      for k, row in zip(lengths, picks, strict=True)]
        provenance.record_data(
            f"number words en->{lang} (num2words {_version()})", split, count,
            subset=f"{len(pool)} of the numbers 1..{max_number}, 1-{max_numbers} per sequence")
    return out


class TokenVocab:
    """Source words numbered after ``<pad>`` = 0 and ``<unk>`` = 1 (the rest sorted)."""
    PAD, UNK = "<pad>", "<unk>"

    def __init__(self, tokens: Iterable[str]):
        words = sorted(set(tokens) - {self.PAD, self.UNK})
        self.tokens = [self.PAD, self.UNK, *words]
        self._index = {t: i for i, t in enumerate(self.tokens)}
        self.pad_id, self.unk_id = 0, 1

    @classmethod
    def from_pairs(cls, pairs: Iterable[NumberPair]) -> TokenVocab:
        return cls(t for p in pairs for t in p.source)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenVocab) and other.tokens == self.tokens

    def __hash__(self) -> int:
        return hash(tuple(self.tokens))

    def encode(self, tokens: Sequence[str]) -> torch.Tensor:
        """Tokens -> int64 ids; a word the vocabulary lacks becomes ``<unk>``."""
        return torch.tensor([self._index.get(t, self.unk_id) for t in tokens], dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> list[str]:
        """Ids -> tokens, ``<pad>`` dropped. Raises ValueError for an id out of range."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        bad = [i for i in ids if not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"id {bad[0]} is outside the vocabulary (0..{len(self) - 1})")
        return [self.tokens[i] for i in ids if i != self.pad_id]


class TargetVocab:
    """Target characters numbered after ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2."""
    SPECIALS = ("<pad>", "<bos>", "<eos>")

    def __init__(self, text: str | Iterable[str]):
        chars = sorted(set(text))
        if any(len(c) != 1 for c in chars):
            raise ValueError("a TargetVocab is built from single characters")
        self.chars = "".join(chars)
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2
        self._index = {c: i + len(self.SPECIALS) for i, c in enumerate(chars)}

    @classmethod
    def from_pairs(cls, pairs: Iterable[NumberPair]) -> TargetVocab:
        return cls(c for p in pairs for c in p.target)

    def __len__(self) -> int:
        return len(self.SPECIALS) + len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TargetVocab) and other.chars == self.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """Characters -> int64 ids (no ``<bos>``/``<eos>``). Raises ValueError for a character
        outside the vocabulary (a decoder cannot emit it)."""
        for pos, c in enumerate(text):
            if c not in self._index:
                raise ValueError(f"character {c!r} at position {pos} is not in the target "
                                 f"vocabulary {self.chars!r}")
        return torch.tensor([self._index[c] for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """Ids -> string: stops at the first ``<eos>``, drops ``<bos>`` and ``<pad>`` (what a
        decoder's output means). Raises ValueError for an id out of range."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        out = []
        for i in ids:
            if not 0 <= i < len(self):
                raise ValueError(f"id {i} is outside the vocabulary (0..{len(self) - 1})")
            if i == self.eos_id:
                break
            if i >= len(self.SPECIALS):
                out.append(self.chars[i - len(self.SPECIALS)])
        return "".join(out)


@dataclass(frozen=True)
class EncodedPairs:
    """A padded batch. ``source`` ``(B, S)`` (pad 0), ``source_lengths`` ``(B,)``;
    ``target_in`` ``(B, T + 1)`` = ``<bos>`` + characters, ``target_out`` ``(B, T + 1)`` =
    characters + ``<eos>`` (pad 0); ``target_lengths`` ``(B,)`` = ``len(target) + 1``, the
    valid positions of both (``<eos>`` included); ``alignment`` ``(B, T + 1)``: the source
    index of each ``target_out`` position, ``-1`` at ``<eos>``, padding and unaligned
    characters. ``T`` is the longest target; all int64."""
    source: torch.Tensor
    source_lengths: torch.Tensor
    target_in: torch.Tensor
    target_out: torch.Tensor
    target_lengths: torch.Tensor
    alignment: torch.Tensor

    def __len__(self) -> int:
        return self.source.shape[0]

    def to(self, device: torch.device | str) -> EncodedPairs:
        return EncodedPairs(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


def encode_pairs(pairs: Sequence[NumberPair], source_vocab: TokenVocab,
                 target_vocab: TargetVocab) -> EncodedPairs:
    """Encode and pad ``pairs`` (see :class:`EncodedPairs`)."""
    if len(pairs) == 0:
        raise ValueError("encode_pairs needs at least one pair")
    b = len(pairs)
    s = max(len(p.source) for p in pairs)
    t = max(len(p.target) for p in pairs) + 1
    source = torch.zeros(b, s, dtype=torch.long)
    target_in = torch.zeros(b, t, dtype=torch.long)
    target_out = torch.zeros(b, t, dtype=torch.long)
    alignment = torch.full((b, t), -1, dtype=torch.long)
    for row, p in enumerate(pairs):
        chars, n = target_vocab.encode(p.target), len(p.target)
        source[row, :len(p.source)] = source_vocab.encode(p.source)
        target_in[row, 0] = target_vocab.bos_id
        target_in[row, 1:n + 1] = chars
        target_out[row, :n] = chars
        target_out[row, n] = target_vocab.eos_id
        alignment[row, :n] = torch.tensor(p.alignment, dtype=torch.long)
    return EncodedPairs(source, torch.tensor([len(p.source) for p in pairs]), target_in,
                        target_out, torch.tensor([len(p.target) + 1 for p in pairs]), alignment)
