"""Chapter-6 experiments at the smoke tier: the claims that hold already there.

Summary shape and figures of every experiment: ``test_smoke.py``; rules: ``test_rules.py``.
"""


def test_self_attention_claims_all_hold_at_smoke(smoke_runs):
    """Exact properties (float64): equivariant, not invariant, broken by PE; torch parity;
    a fully masked row has zero weights and no NaN, where torch gives NaN."""
    _, summary = smoke_runs("self-attention")
    failed = [c["name"] for c in summary["claims"] if not c["holds"]]
    assert not failed, failed
    names = {c["name"]: c for c in summary["claims"]}
    assert names["self_attention_permutation_equivariant"]["source"] == "notes"
    assert names["mha_matches_torch_gradients"]["source"] == "project"
    assert summary["metrics"]["torch_nan_in_masked_row"] == 1.0  # the documented difference


def test_attention_complexity_slopes_and_paths_at_smoke(smoke_runs):
    """FLOP counts are exact, so the slopes are the exponents; the graphs give 1 / n / 1
    sequential operations, and path lengths 1 / n / ceil(log_k n) (dilated) vs n/k (plain)."""
    _, summary = smoke_runs("attention-complexity")
    failed = [c["name"] for c in summary["claims"] if not c["holds"]]
    assert not failed, failed
    m = summary["metrics"]
    assert abs(m["attention_core_flops_slope_n"] - 2) < 1e-9
    assert abs(m["rnn_flops_slope_d"] - 2) < 1e-9
    assert m["core_reaches_rnn_at_n_over_d"] == 1.0  # 4 n^2 d = 4 n d^2 at n = d
    assert m["conv_path_at_n81"] == 40 and m["dilated_path_at_n81"] == 4


def test_captioning_structural_claims_hold_at_smoke_and_claims_have_sources(smoke_runs):
    """Attention weights sum to one and boxes hold their objects at every tier; the learned
    claims exist with their sources (they need the quick tier to hold)."""
    run_dir, summary = smoke_runs("captioning")
    claims = {c["name"]: c for c in summary["claims"]}
    assert claims["alpha_sums_to_one"]["holds"] and claims["boxes_hold_objects"]["holds"]
    sources = {name: c["source"] for name, c in claims.items()}
    assert sources == {"bleu4_soft": "project", "peak_in_box_soft": "notes",
                       "soft_beats_none": "notes", "hard_beats_none": "project",
                       "alpha_sums_to_one": "project", "boxes_hold_objects": "project"}
    m = summary["metrics"]
    for mode in ("soft", "hard", "none"):
        assert 0 <= m[f"bleu4_{mode}"] <= 100 and 0 <= m[f"exact_match_{mode}"] <= 1
    assert m["soft_parameters"] == m["hard_parameters"] > m["none_parameters"]
    assert 0 < m["peak_in_box_chance_soft"] < 0.5  # a uniformly drawn cell
    for mode in ("soft", "hard"):
        assert (run_dir / "figures" / f"attention_{mode}.png").is_file()


def test_captioning_resumes_exactly(check_exact_resume):
    check_exact_resume("captioning", stop_at_step=9)  # inside the hard-attention phase


def test_nmt_publishes_the_attention_model_with_what_rebuilds_its_task(smoke_runs):
    from deepnotes.zoo import number_nmt

    _, summary = smoke_runs("nmt")
    model, artifact = number_nmt.load("de", "smoke")
    assert artifact.meta["experiment"] == "nmt" and model.attention
    assert artifact.metrics["attention_exact_match"] == summary["metrics"][
        "attention_exact_match"]
    held = artifact.extra["held_out_numbers"]
    assert held["test"] and not set(held["test"]) & set(held["val"])
    names = {c["name"] for c in summary["claims"]}
    assert names == {"attention_exact_match", "long_sentence_gap", "gap_grows_with_length",
                     "alignment_mass"}
    m = summary["metrics"]
    assert m["attention_parameters"] == m["fixed_parameters"]  # they differ in attention only
    assert 0 < m["alignment_mass_chance"] < 1


def test_nmt_resumes_exactly(check_exact_resume):
    check_exact_resume("nmt", stop_at_step=30)  # inside the third of four trainings


# --- gpt-shakespeare (notes 6.3, 6.3.2) -------------------------------------------------------
def test_gpt_shakespeare_smoke_claim_metrics_and_artifact(smoke_runs):
    from deepnotes.zoo import gpt_shakespeare

    _, summary = smoke_runs("gpt-shakespeare")
    assert [(c["name"], c["op"], c["threshold"], c["source"]) for c in summary["claims"]] == [
        ("val_loss", "<=", 1.80, "project")]
    m = summary["metrics"]
    assert m["val_chars"] == 2000 and m["train_tokens"] == 30 * 8 * 64
    assert 0 < m["val_loss"] < 5 and m["parameters"] > 0
    model, vocab, artifact = gpt_shakespeare.load("smoke")
    assert artifact.meta["experiment"] == "gpt-shakespeare" and len(vocab) == m["vocab_size"]
    assert model.head_weight is model.token_embedding.weight  # tied after loading too
    greedy = [gpt_shakespeare.sample(model, vocab, "ROMEO:", 80, temperature=0,
                                     use_cache=c) for c in (True, False)]
    assert greedy[0] == greedy[1] and len(greedy[0]) == len("ROMEO:") + 80


def test_gpt_shakespeare_resumes_exactly(check_exact_resume):
    check_exact_resume("gpt-shakespeare", stop_at_step=17)


def test_sample_command_reads_the_gpt_artifact(smoke_runs, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from deepnotes.cli import app

    smoke_runs("gpt-shakespeare")
    args = ["sample", "gpt-shakespeare", "--tier", "smoke", "--length", "30", "--seed", "3"]
    ok = CliRunner().invoke(app, args)
    assert ok.exit_code == 0 and ok.output.startswith("ROMEO:")
    assert len(ok.output) == len("ROMEO:") + 30 + 1  # and echo's newline
    assert CliRunner().invoke(app, args).output == ok.output
    bad = CliRunner().invoke(app, ["sample", "gpt-shakespeare", "--tier", "smoke",
                                   "--prompt", "\x00"])
    assert bad.exit_code == 2 and "position 0" in bad.output
    monkeypatch.setenv("DEEPNOTES_HOME", str(tmp_path / "empty"))
    missing = CliRunner().invoke(app, ["sample", "gpt-shakespeare", "--tier", "smoke"])
    assert missing.exit_code == 2 and "deepnotes run gpt-shakespeare --tier smoke" in (
        missing.output)


def test_transformer_nmt_rebuilds_the_rnn_task_and_rescores_the_published_model(smoke_runs):
    from deepnotes.zoo import number_nmt

    _, nmt = smoke_runs("nmt")
    _, summary = smoke_runs("transformer-nmt")
    m = summary["metrics"]
    # The same split and model: the RNN scores on the rebuilt test set what nmt published.
    assert m["rnn_exact_match"] == nmt["metrics"]["attention_exact_match"]
    assert m["rnn_bleu"] == nmt["metrics"]["attention_bleu"]
    assert m["steps_per_rate"] == 12 and m["rnn_lr"] == nmt["metrics"]["attention_lr"]
    assert summary["artifacts"] == [number_nmt.load("de", "smoke")[1].record()]


# --- bert-qa (notes 6.3.2) --------------------------------------------------------------------
def test_bert_qa_smoke_claim_baselines_and_equal_fine_tuning(smoke_runs):
    import pytest

    from deepnotes.experiments.ch06.bert_qa import LEARNING_RATES

    run_dir, summary = smoke_runs("bert-qa")
    assert [(c["name"], c["op"], c["threshold"], c["source"]) for c in summary["claims"]] == [
        ("pretrained_beats_scratch", ">=", 0.10, "notes")]
    m = summary["metrics"]
    assert m["qa_train_size"] == 64 and m["qa_val_size"] > 0 and m["qa_test_size"] > 0
    assert m["pretrain_tokens"] == m["pretrain_pairs"] * 96  # packed pairs: no padding
    for name in ("pretrained", "scratch", "string_match", "first_speaker"):
        assert 0 <= m[f"{name}_exact_match"] <= m[f"{name}_f1"] <= 1
    for init in ("pretrained", "scratch"):
        assert m[f"{init}_lr"] in LEARNING_RATES
    assert m["pretrained_minus_scratch_exact_match"] == pytest.approx(
        m["pretrained_exact_match"] - m["scratch_exact_match"])
    assert 0 <= m["nsp_val_accuracy"] <= 1 and m["mlm_val_loss"] > 0
    assert (run_dir / "figures" / "pretraining_and_qa.png").is_file()


def test_bert_qa_resumes_exactly(check_exact_resume):
    check_exact_resume("bert-qa", stop_at_step=31)  # inside the second fine-tuning
