"""Number-word NMT helpers: the alignment mass measures weight on the known source word."""

from __future__ import annotations

import pytest
import torch

from deepnotes.data.numbers import TargetVocab, TokenVocab, encode_pairs, number_pair
from deepnotes.zoo.number_nmt import alignment_mass


def test_alignment_mass_reads_the_weight_on_each_character_s_own_word():
    pair = number_pair(21, "de")  # "einundzwanzig" <- twenty - one
    batch = encode_pairs([pair], TokenVocab(pair.source), TargetVocab(pair.target))
    T, S = batch.target_out.shape[1], len(pair.source)
    exact = torch.zeros(1, T, S)
    for t, a in enumerate(pair.alignment):
        exact[0, t, a] = 1.0
    exact[0, -1] = 1 / S  # <eos> has no source word and is not counted
    assert alignment_mass(exact, batch) == {"mass": 1.0, "mass_at_starts": 1.0,
                                            "chance": pytest.approx(1 / 3)}
    uniform = torch.full((1, T, S), 1 / S)
    assert alignment_mass(uniform, batch)["mass"] == pytest.approx(1 / 3)
    shifted = torch.roll(exact, 1, dims=2)  # every character looks at the next word
    assert alignment_mass(shifted, batch)["mass"] == 0.0
