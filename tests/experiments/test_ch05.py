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


# --- vanishing-gradients (notes 5.4, 5.4.1) ---------------------------------------------------
def test_vanishing_gradients_bounds_and_clipping_hold_exactly_at_smoke(smoke_runs):
    """The bounds are inequalities of linear algebra and clipping is a construction: they
    hold at every tier; the statistical claims are checked at quick."""
    _, summary = smoke_runs("vanishing-gradients")
    holds = {c["name"]: c["holds"] for c in summary["claims"]}
    for name in ("slope_below_log_norm_w", "slope_below_mean_log_jacobian",
                 "norm_of_product_at_most_product_of_norms", "clipped_update_bounded",
                 "vanishing_below_one", "bound_attained_orthogonal_linear"):
        assert holds[name], name
    metrics = summary["metrics"]
    assert metrics["lstm_cell_path_off_diagonal"] == 0.0  # dc_t/dc_{t-1}|_h = diag(f_t)
    assert 0.6 < metrics["lstm_forget_mean"] < 0.85  # forget bias 1: f ~ sigmoid(1) = 0.73
    assert metrics["clip_max_clipped_grad_norm"] <= 1.0 + 1e-6


def test_vanishing_gradients_resumes_exactly(check_exact_resume):
    check_exact_resume("vanishing-gradients", stop_at_step=7)


def test_bptt_by_hand_is_exact_and_counts_costs_at_smoke(smoke_runs):
    """The hand gradients equal autograd's and the cost counts are exact at any budget."""
    _, summary = smoke_runs("bptt-by-hand")
    claims = {c["name"]: c for c in summary["claims"]}
    assert all(c["holds"] for c in claims.values()), claims
    m = summary["metrics"]
    assert m["bptt_memory_per_step"] == 4  # H of the smoke preset


# --- one-to-many (notes 5.2.1) ----------------------------------------------------------------
def test_one_to_many_input_is_given_once_and_targets_are_msb_first():
    from deepnotes.experiments.ch05.one_to_many import binary_digits_task

    x, y = binary_digits_task(bits=8)
    assert x.shape == (256, 8, 256) and y.shape == (256, 8)
    assert torch.equal(x[:, 0], torch.eye(256)) and torch.count_nonzero(x[:, 1:]) == 0
    assert y[5].tolist() == [0, 0, 0, 0, 0, 1, 0, 1] and y[128].tolist() == [1] + [0] * 7
    weights = 2 ** torch.arange(7, -1, -1).float()
    assert torch.equal(y @ weights, torch.arange(256).float())  # every integer decodes back


def test_one_to_many_smoke_beats_chance_and_resumes_exactly(smoke_runs, check_exact_resume):
    _, summary = smoke_runs("one-to-many")
    assert summary["metrics"]["sequence_accuracy"] > 1 / 256
    check_exact_resume("one-to-many", stop_at_step=13)


# --- long-range-memory (notes 5.2, 5.4) -------------------------------------------------------
def test_long_range_memory_models_have_near_equal_parameter_counts_and_read_h_T():
    from deepnotes.experiments.ch05.long_range_memory import HIDDEN, KINDS, ManyToOne

    counts = {k: sum(p.numel() for p in ManyToOne(k, HIDDEN[k]).parameters()) for k in KINDS}
    assert counts == {"rnn": 4687, "lstm": 4641, "gru": 4589}
    model = ManyToOne("lstm", 8)
    x = torch.rand(3, 10, 2)
    changed = x.clone()
    changed[:, -1] += 1.0  # only the last step differs: the prediction must move
    assert model(x).shape == (3, 1) and not torch.allclose(model(x), model(changed))


def test_long_range_memory_smoke_baseline_is_one_sixth_and_claims_have_sources(smoke_runs):
    from deepnotes.experiments.ch05.long_range_memory import BASELINE_SD

    _, summary = smoke_runs("long-range-memory")
    m = summary["metrics"]
    assert abs(m["baseline_mse"] - 1 / 6) <= 4 * BASELINE_SD
    assert all(0 < m[f"{k}_T{lag}_val_mse"] < 1 for k in ("rnn", "lstm", "gru") for lag in (4, 8))
    sources = {c["name"]: c["source"] for c in summary["claims"]}
    assert sources == {"baseline_mse_sampling_error": "project",
                       "lstm_solves_T4": "notes", "lstm_solves_T8": "notes",
                       "gru_solves_T4": "notes", "gru_solves_T8": "notes",
                       "rnn_at_baseline_T8": "notes"}


def test_long_range_memory_resumes_exactly_inside_the_second_phase(check_exact_resume):
    check_exact_resume("long-range-memory", stop_at_step=45)  # smoke phases are 30 steps
