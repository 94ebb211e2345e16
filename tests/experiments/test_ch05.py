"""Chapter-5 experiments: the char LM carries its state through truncated BPTT, resumes
exactly, samples reproducibly, and the `deepnotes sample` command uses its artifact."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from deepnotes.cli import app
from deepnotes.data import CharVocab
from deepnotes.experiments.runner import run_experiment
from deepnotes.zoo import char_lm


def test_the_state_is_carried_between_chunks_and_reset_where_the_streams_start(
        monkeypatch, tmp_path):
    calls = []
    forward = char_lm.CharRNN.forward

    def spy(self, x, state=None):
        logits, out = forward(self, x, state)
        if self.training:
            calls.append(([s.detach().float().clone() for s in state],
                          [s.detach().float().clone() for s in out]))
        return logits, out

    monkeypatch.setattr(char_lm.CharRNN, "forward", spy)
    run_experiment("char-lm", tier="smoke", out=tmp_path, overrides=["steps=5"])
    assert len(calls) == 5
    assert all(torch.count_nonzero(s) == 0 for s in calls[0][0])  # a fresh start
    for (_, previous_out), (state_in, _) in zip(calls[:-1], calls[1:], strict=True):
        for given, carried in zip(state_in, previous_out, strict=True):
            assert torch.count_nonzero(carried) > 0
            torch.testing.assert_close(given, carried)  # exactly what the last chunk left


def test_chunks_walk_the_streams_and_start_over_at_the_end():
    data = char_lm.streams(torch.arange(100), batch_size=4)  # (4, 25)
    assert data.shape == (4, 25) and torch.equal(data[1, :3], torch.tensor([25, 26, 27]))
    starts = [char_lm.chunk(data, step, seq_len=8)[2] for step in range(7)]
    assert starts == [True, False, False, True, False, False, True]  # 3 chunks of 8 fit
    x, y, _ = char_lm.chunk(data, 1, seq_len=8)
    assert torch.equal(x[0], torch.arange(8, 16)) and torch.equal(y[0], torch.arange(9, 17))


def test_char_lm_resumes_exactly(check_exact_resume):
    check_exact_resume("char-lm", stop_at_step=17)


def test_sampling_is_reproducible_greedy_at_zero_and_refuses_unknown_characters(smoke_runs):
    smoke_runs("char-lm")
    model, vocab, artifact = char_lm.load("smoke")
    assert isinstance(vocab, CharVocab) and artifact.meta["experiment"] == "char-lm"

    def draw(seed, **kw):
        return char_lm.sample(model, vocab, "ROMEO:", 60,
                              generator=torch.Generator().manual_seed(seed), **kw)

    assert draw(1) == draw(1) and draw(1) != draw(2)
    assert draw(1, temperature=0) == draw(2, temperature=0) == draw(3, top_k=1)
    assert len(draw(1)) == len("ROMEO:") + 60
    with pytest.raises(ValueError, match="character '\\\\x00' at position 1"):
        char_lm.sample(model, vocab, "R\x00", 5)


def test_sample_command_prints_text_and_names_missing_pieces(smoke_runs, tmp_path,
                                                              monkeypatch):
    smoke_runs("char-lm")
    ok = CliRunner().invoke(app, ["sample", "char-lm", "--tier", "smoke", "--length", "30",
                                  "--seed", "3"])
    assert ok.exit_code == 0 and ok.output.startswith("ROMEO:")
    again = CliRunner().invoke(app, ["sample", "char-lm", "--tier", "smoke", "--length", "30",
                                     "--seed", "3"])
    assert again.output == ok.output
    bad = CliRunner().invoke(app, ["sample", "char-lm", "--tier", "smoke", "--prompt", "É"])
    assert bad.exit_code == 2 and "'É' at position 0" in bad.output
    monkeypatch.setenv("DEEPNOTES_HOME", str(tmp_path / "empty"))
    missing = CliRunner().invoke(app, ["sample", "char-lm", "--tier", "smoke"])
    assert missing.exit_code == 2 and "deepnotes run char-lm --tier smoke" in missing.output
