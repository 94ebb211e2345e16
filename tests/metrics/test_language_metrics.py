"""val_loss: every character after the first predicted once, windows from a fresh state,
the carried-state variant, and the known values of a uniform and of an exact model."""

from __future__ import annotations

import math

import pytest
import torch

from deepnotes.metrics import bits_per_char, stateful_val_loss, windowed_val_loss


def test_a_uniform_model_scores_log_v_whatever_the_split_length():
    for n in (2, 65, 129, 200):
        ids = torch.randint(0, 7, (n,))
        loss = windowed_val_loss(lambda x: torch.zeros(*x.shape, 7), ids, window=64)
        assert loss == pytest.approx(math.log(7), rel=1e-6)
        assert bits_per_char(loss) == pytest.approx(math.log2(7), rel=1e-6)


def test_each_character_after_the_first_is_predicted_once_from_a_fresh_window():
    ids = torch.arange(150) % 11
    seen = []

    def model(x):  # logits that make the right next char certain, and record each window
        seen.append(x.clone())
        return torch.nn.functional.one_hot((x + 1) % 11, 11).float() * 50.0

    loss = windowed_val_loss(model, ids, window=64, batch_size=1)
    assert loss < 1e-12
    windows = [w[0] for w in seen]
    assert [len(w) for w in windows] == [64, 64, 21]  # 149 predictions
    assert torch.equal(torch.cat(windows), ids[:-1])  # consecutive, non-overlapping


def test_the_stateful_variant_carries_the_state_and_equals_the_windowed_one_without_it():
    torch.manual_seed(0)
    rnn, head = torch.nn.GRU(5, 8, batch_first=True), torch.nn.Linear(8, 5)
    ids = torch.randint(0, 5, (300,))

    def step(x, state):
        out, state = rnn(torch.nn.functional.one_hot(x, 5).float(), state)
        return head(out), state

    fresh = windowed_val_loss(lambda x: step(x, None)[0], ids, window=64)
    carried = stateful_val_loss(step, ids, window=64)
    calls = []
    stateful_val_loss(lambda x, s: (calls.append(s is None), step(x, s))[1], ids, window=64)
    assert calls[0] and not any(calls[1:])  # the state really is carried
    assert carried != pytest.approx(fresh, abs=1e-9)
    assert stateful_val_loss(lambda x, s: step(x, None), ids) == pytest.approx(fresh, rel=1e-6)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="1-D int64"):
        windowed_val_loss(lambda x: x, torch.zeros(10))
    with pytest.raises(ValueError, match="at least 2"):
        windowed_val_loss(lambda x: x, torch.zeros(1, dtype=torch.long))
