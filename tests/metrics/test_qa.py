"""Exact match and F1 against torchmetrics' SQuAD (the official script's normalization)."""

from __future__ import annotations

import pytest
from torchmetrics.text import SQuAD

from deepnotes.metrics.qa import f1_score, normalize_answer, squad_scores

CASES = [
    ("KING RICHARD", ["KING RICHARD"]),
    ("king richard.", ["KING RICHARD"]),
    ("RICHARD", ["KING RICHARD"]),
    ("FIRST SERVANT", ["SECOND SERVANT"]),
    ("The Duke", ["duke"]),
    ("an old man, a king", ["old king man"]),
    ("", ["MENENIUS"]),
    ("MENENIUS MENENIUS", ["MENENIUS"]),
    ("BRUTUS", ["SICINIUS", "brutus"]),
    ("lady  capulet", ["LADY CAPULET", "CAPULET"]),
]


def test_scores_match_torchmetrics_squad():
    preds = [{"prediction_text": p, "id": str(i)} for i, (p, _) in enumerate(CASES)]
    target = [{"answers": {"answer_start": [0] * len(g), "text": g}, "id": str(i)}
              for i, (_, g) in enumerate(CASES)]
    theirs = SQuAD()(preds, target)
    ours = squad_scores([p for p, _ in CASES], [g for _, g in CASES])
    assert ours["exact_match"] == pytest.approx(theirs["exact_match"].item() / 100, abs=1e-6)
    assert ours["f1"] == pytest.approx(theirs["f1"].item() / 100, abs=1e-6)


def test_normalization_and_partial_credit():
    assert normalize_answer("The  KING, Richard!") == "king richard"
    assert f1_score("FIRST SERVANT", "SECOND SERVANT") == pytest.approx(0.5)
    assert squad_scores(["a"], ["b"]) == {"exact_match": 0.0, "f1": 0.0}
    with pytest.raises(ValueError):
        squad_scores(["a"], [])
