"""Chapter-6 experiments at the smoke tier: the claims that hold already there.

Summary shape and figures of every experiment: ``test_smoke.py``; rules: ``test_rules.py``.
"""


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
