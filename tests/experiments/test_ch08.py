"""Chapter-8 experiments at the smoke tier."""


# --- fid-sanity (notes 8.9) -------------------------------------------------------------------
def test_fid_sanity_degradations_keep_constants_and_drop_only_the_named_classes():
    import torch

    from deepnotes.experiments.ch08.fid_sanity import (
        add_noise,
        gaussian_blur,
        kept_class_indices,
    )

    flat = torch.full((2, 28, 28), 77, dtype=torch.uint8)
    assert torch.equal(gaussian_blur(flat, 1.5), flat)  # a normalized kernel keeps constants
    edge = torch.zeros(1, 28, 28, dtype=torch.uint8)
    edge[:, :, 14:] = 255
    blurred = gaussian_blur(edge, 1.0)
    assert 0 < int(blurred[0, 5, 13]) < 255 and torch.equal(blurred[:, :, :10], edge[:, :, :10])
    assert torch.equal(add_noise(flat, 0.0, torch.Generator().manual_seed(0)), flat)
    labels = torch.tensor([0, 1, 2, 3, 1, 2, 0])
    idx = kept_class_indices(labels, torch.tensor([1, 2]), 5)
    assert idx.tolist() == [0, 3, 6, 0, 3]  # kept classes only, cycled when short


def test_fid_sanity_records_the_cnn_it_used_and_its_curves_share_the_clean_set(smoke_runs):
    from deepnotes.zoo import fashion_cnn

    _, summary = smoke_runs("fid-sanity")
    model, artifact = fashion_cnn.load("smoke")
    assert summary["artifacts"] == [artifact.record()]  # sha256 of the feature network
    m = summary["metrics"]
    assert m["feature_dim"] == model.embed_dim and m["sample_size"] == 200
    # Every curve starts at the clean test set, the floor at N = sample size.
    assert m["fid_noise_0"] == m["fid_blur_0"] == m["fid_drop_0"] == m["fid_floor_n200"] > 0
    assert m["pca_explained"] >= 0.95 and m["pca_components"] >= 1
    assert 1.0 <= m["is_drop_0.8"] <= m["is_drop_0"] * 2 and m["is_drop_0"] <= 10.0
    claims = {c["name"]: c for c in summary["claims"]}
    assert {name: c["source"] for name, c in claims.items()} == {
        "fid_grows_with_noise": "project", "fid_grows_with_blur": "project",
        "fid_grows_with_dropped_classes": "project", "is_falls_with_dropped_classes": "notes",
        "fid_floor_falls_with_n": "project", "pca_baseline_above_floor": "project"}
    assert claims["fid_floor_falls_with_n"]["holds"]  # the 1/N bias is large at N <= 200


# --- transfer-mnist (notes 8.2) ---------------------------------------------------------------
def test_transfer_labelled_subsets_are_stratified_and_nested_in_k():
    import torch

    from deepnotes.experiments.ch08.transfer_mnist import _labelled

    y = torch.arange(200) % 10
    pool = torch.arange(20, 200)
    small = _labelled(y, pool, 3, torch.Generator().manual_seed(1))
    large = _labelled(y, pool, 7, torch.Generator().manual_seed(1))
    assert torch.bincount(y[small], minlength=10).tolist() == [3] * 10
    assert set(small.tolist()) <= set(large.tolist()) <= set(pool.tolist())


def test_transfer_mnist_smoke_reports_every_arm_and_cut_with_fixed_claims(smoke_runs):
    from deepnotes.experiments.ch08.transfer_mnist import (
        ARMS,
        EARLY_LAYER_TOLERANCE,
        FEW_LABEL_GAIN,
        LEARNING_RATES,
        SPECIFIC_DROP,
    )
    from deepnotes.zoo import fashion_cnn

    run_dir, summary = smoke_runs("transfer-mnist")
    assert [(c["name"], c["op"], c["threshold"], c["source"]) for c in summary["claims"]] == [
        ("frozen_beats_scratch_few_labels", ">=", FEW_LABEL_GAIN, "project"),
        ("scratch_catches_up", "<", 0.0, "project"),
        ("early_layers_generic", ">=", -EARLY_LAYER_TOLERANCE, "notes"),
        ("deep_layers_specific", "<=", -SPECIFIC_DROP, "notes")]
    m = summary["metrics"]
    for k in (1, 5):  # the smoke tier's shots
        for arm in ARMS:
            assert 0 <= m[f"test_accuracy_{arm}_k{k}"] <= 1
            assert m[f"lr_{arm}_k{k}"] in LEARNING_RATES
    # Cuts 0 and 2 are the scratch and frozen trainings themselves (depth_shots = 5).
    assert m["test_accuracy_cut0_k5"] == m["test_accuracy_scratch_k5"]
    assert m["test_accuracy_cut2_k5"] == m["test_accuracy_frozen_k5"]
    assert 0 <= m["test_accuracy_cut1_k5"] <= 1 and 0 <= m["test_accuracy_cut3_k5"] <= 1
    assert m["frozen_minus_scratch_k1"] == m["test_accuracy_frozen_k1"] - m[
        "test_accuracy_scratch_k1"]
    assert summary["artifacts"] == [fashion_cnn.load("smoke")[1].record()]
    assert (run_dir / "figures" / "transfer.png").is_file()


def test_transfer_mnist_resumes_exactly(check_exact_resume):
    check_exact_resume("transfer-mnist", stop_at_step=27)  # inside the 5th training (6 steps)


# --- distillation (notes 8.3) -----------------------------------------------------------------
def test_distillation_smoke_pairs_seeds_reports_reduction_and_gradient_scaling(smoke_runs):
    import numpy as np
    import pytest

    from deepnotes.experiments.ch08.distillation import (
        ERROR_REDUCTION,
        LEARNING_RATES,
        TEMPERATURES,
    )

    run_dir, summary = smoke_runs("distillation")
    claims = {c["name"]: c for c in summary["claims"]}
    assert {n: c["source"] for n, c in claims.items()} == {
        "teacher_beats_student": "project", "distilled_beats_alone": "project",
        "distilled_beats_alone_every_seed": "project", "t2_keeps_gradient_scale": "project",
        "plain_kl_gradient_falls": "project", "high_t_is_logit_matching": "notes",
        "omitted_class_learned": "project"}
    assert claims["distilled_beats_alone"]["threshold"] == ERROR_REDUCTION
    m = summary["metrics"]
    alone = np.array([m[f"alone_test_error_s{s}"] for s in range(2)])
    distilled = np.array([m[f"distilled_test_error_s{s}"] for s in range(2)])
    assert m["error_reduction_mean"] == pytest.approx(float(np.mean(1 - distilled / alone)))
    assert m["error_reduction_min"] == pytest.approx(float(np.min(1 - distilled / alone)))
    assert m["alone_lr"] in LEARNING_RATES and m["distilled_lr"] in LEARNING_RATES
    assert m["teacher_parameters"] > m["student_parameters"] == (784 + 1) * 16 + 17 * 10
    norms = [m[f"soft_gradient_norm_t{t:g}"] for t in TEMPERATURES]
    assert m["scaled_gradient_ratio"] == pytest.approx(max(norms[1:]) / min(norms[1:]))
    # The closed form's high-T limit holds on real logits too (the claim's own check).
    assert claims["high_t_is_logit_matching"]["holds"]
    assert claims["plain_kl_gradient_falls"]["holds"]
    assert m["omitted_class"] == 3 and 0 <= m["omitted_class_accuracy"] <= 1
    assert 0 <= m["omitted_bias_shift"] <= 10 and m["omitted_train_images"] < 600
    assert (run_dir / "figures" / "distillation.png").is_file()


def test_distillation_resumes_exactly(check_exact_resume):
    check_exact_resume("distillation", stop_at_step=45)  # teacher 20 steps, students 10 each


# --- gan-optimal-discriminator, gan-saturation, mode-collapse (notes 8.6-8.7) -----------------
def test_gan_optimal_discriminator_value_stays_below_two_jsd_and_d_moves_to_d_star(smoke_runs):
    import math

    _, summary = smoke_runs("gan-optimal-discriminator")
    claims = {c["name"]: c for c in summary["claims"]}
    assert {n: c["source"] for n, c in claims.items()} == {
        "d_approaches_d_star": "notes", "value_rises_to_two_jsd": "notes",
        "value_never_exceeds_two_jsd": "notes", "held_out_value_within_error": "project",
        "gradient_ratio_is_one_minus_d_over_d": "project"}
    # Theorems, whatever the training length: D* maximizes V; the gradient ratio is (1 - D)/D.
    assert claims["value_never_exceeds_two_jsd"]["holds"]
    assert claims["gradient_ratio_is_one_minus_d_over_d"]["holds"]
    m = summary["metrics"]
    assert abs(m["v_star"] - m["two_jsd_minus_log4"]) < 1e-9 and -math.log(4) < m["v_star"] < 0
    assert m["v_quad_initial"] < m["v_quad_final"] <= m["v_star"]
    assert m["d_distance_final"] < m["d_distance_initial"]


def test_gan_saturation_reports_each_generator_loss_before_and_after(smoke_runs):
    _, summary = smoke_runs("gan-saturation")
    m = summary["metrics"]
    for loss in ("minimax", "non_saturating", "least_squares"):
        assert 0 < m[f"{loss}_initial"] <= m[f"{loss}_peak"] and m[f"{loss}_final"] > 0
    # dL/dl is -D for minimax and -(1 - D) for non-saturating, through the same D.
    ratio = m["non_saturating_final"] / m["minimax_final"]
    d = m["d_fake_bce_final"]
    assert ratio > 1 and d < 0.5 and ratio == m["ns_over_minimax_final"]
    assert {c["name"]: c["source"] for c in summary["claims"]} == {
        "d_far_ahead": "project", "minimax_gradient_vanishes": "notes",
        "non_saturating_keeps_gradient": "project", "least_squares_keeps_gradient": "notes"}


def test_mode_collapse_reports_every_method_and_seed_and_resumes_exactly(smoke_runs,
                                                                        check_exact_resume):
    from deepnotes.experiments.ch08.mode_collapse import METHODS, MODES

    _, summary = smoke_runs("mode-collapse")
    m = summary["metrics"]
    for method in METHODS:
        for i in range(int(m["seeds"])):
            assert 0 <= m[f"modes_{method}_s{i}"] <= MODES
            assert 0 <= m[f"high_quality_{method}_s{i}"] <= 1
        assert 0 <= m[f"seeds_losing_modes_{method}"] <= m["seeds"]
    # A GAN loop: both networks, both Adams and the step restored. Smoke runs 3 loops of 40
    # steps; step 100 interrupts the third (max-min: 3 G steps per D step).
    check_exact_resume("mode-collapse", stop_at_step=100)


# --- kde-bandwidth, sampling, change-of-variables (notes 8.1, 8.4, 8.5) -----------------------
def test_kde_bandwidth_smoke_claims_hold_with_their_sources(smoke_runs):
    _, summary = smoke_runs("kde-bandwidth")
    claims = {c["name"]: c for c in summary["claims"]}
    assert {n: c["source"] for n, c in claims.items()} == {
        "lscv_near_oracle": "notes", "cv_likelihood_near_oracle": "project",
        "smallest_bandwidth_is_not_best": "notes", "sklearn_parity": "project",
        "gridsearch_parity": "project", "gridsearch_same_bandwidth": "project",
        "scipy_mapping": "project"}
    assert all(c["holds"] for c in claims.values()), claims
    m = summary["metrics"]
    # ISE is U-shaped: both ends of the grid are worse than the oracle
    assert m["smallest_h_ise_ratio_median"] > 1 and m["largest_h_ise_ratio_median"] > 1
    assert all(m[f"oracle_ise_{k}"] > 0 for k in ("gaussian", "tophat", "linear",
                                                  "epanechnikov"))


def test_sampling_smoke_claims_hold_with_their_sources(smoke_runs):
    _, summary = smoke_runs("sampling")
    claims = {c["name"]: c for c in summary["claims"]}
    assert {n: c["source"] for n, c in claims.items()} == {
        "inverse_cdf_ks": "notes", "uniform_ks": "notes", "clt_error_falls_like_1_over_n": "notes",
        "clt_skewed_base_rate_root_n": "project", "cauchy_mean_stays_cauchy": "notes",
        "box_muller_ks": "project", "full_covariance_gaussian": "notes"}
    assert all(c["holds"] for c in claims.values()), claims
    m = summary["metrics"]
    assert m["ks_p_cauchy_mean_vs_fitted_normal"] < 1e-6  # not Gaussian either
    assert m["clt_error_n64"] < m["clt_error_n8"] < m["clt_error_n1"]


def test_change_of_variables_smoke_claims_hold_with_their_sources(smoke_runs):
    _, summary = smoke_runs("change-of-variables")
    claims = {c["name"]: c for c in summary["claims"]}
    assert {n: c["source"] for n, c in claims.items()} == {
        "histogram_matches_formula": "notes", "jacobian_factor_needed": "project",
        "autograd_slogdet_parity": "project", "density_integrates_to_one": "notes",
        "printed_det_abs_is_wrong": "notes"}
    assert all(c["holds"] for c in claims.values()), claims
    m = summary["metrics"]
    assert m["rotation_abs_det"] == 0.5 and m["rotation_det_of_abs"] == 0.0


# --- dcgan-fashion, lsgan-fashion, cgan-fashion (notes 8.6, 8.7.1, 8.9, 8.10) -----------------
def test_dcgan_fashion_smoke_reports_fid_is_baseline_and_interpolation(smoke_runs):
    from deepnotes.generative.dcgan import DCGANGenerator
    from deepnotes.zoo import fashion_cnn, gan_fashion

    _, summary = smoke_runs("dcgan-fashion")
    claims = {c["name"]: c for c in summary["claims"]}
    assert {n: c["source"] for n, c in claims.items()} == {
        "fid_beats_pca_baseline": "project", "inception_score": "project"}
    m = summary["metrics"]
    assert m["fid_n"] == 300 and m["fid"] > 0 and m["fid_pca_gaussian"] > 0
    assert m["fid_ratio_to_pca"] == m["fid"] / m["fid_pca_gaussian"]
    assert 1.0 <= m["inception_score"] <= 10.0
    assert {"fid_curve_step6", "fid_curve_step12", "is_curve_step12"} <= set(m)
    # slerp keeps the latent norm near sqrt(64) = 8; the lerp midpoint falls inside.
    assert m["lerp_midpoint_norm"] < 0.85 * m["slerp_midpoint_norm"]
    _, cnn = fashion_cnn.load("smoke")
    assert cnn.record() in summary["artifacts"]
    g, artifact = gan_fashion.load("dcgan-fashion", "smoke")
    assert isinstance(g, DCGANGenerator) and artifact.metrics["fid"] == m["fid"]


def test_dcgan_fashion_resumes_exactly(check_exact_resume):
    # Both optimizers, the EMA generator and the step counter come back (smoke: 12 steps).
    check_exact_resume("dcgan-fashion", stop_at_step=7)


def test_cgan_fashion_smoke_measures_class_accuracy_of_requested_classes(smoke_runs):
    _, summary = smoke_runs("cgan-fashion")
    claims = {c["name"]: c for c in summary["claims"]}
    assert claims["class_accuracy"]["source"] == "notes"
    m = summary["metrics"]
    per_class = [m[f"class_accuracy_{c}"] for c in range(10)]
    assert abs(m["class_accuracy"] - sum(per_class) / 10) < 1e-9  # 30 samples of each class
    assert "lerp_confidence" not in m


# --- gan-inversion (notes 8.7.2) ---------------------------------------------------------------
def test_gan_inversion_reports_both_targets_and_starts_and_resumes_exactly(smoke_runs,
                                                                          check_exact_resume):
    _, summary = smoke_runs("gan-inversion")
    claims = {c["name"]: c["source"] for c in summary["claims"]}
    assert claims == {"samples_recovered": "project", "encoder_start_helps": "project",
                      "training_images_outside_range": "notes"}
    m = summary["metrics"]
    for name in ("samples", "train"):
        for start in ("encoder", "random"):
            assert m[f"mse_{name}_{start}_step5"] <= m[f"mse_{name}_{start}_step0"]
    assert 0 <= m["recovered_encoder"] <= 1 and m["latent_rel_error_random"] > 0
    assert {a["name"] for a in summary["artifacts"]} >= {"dcgan-fashion"}
    check_exact_resume("gan-inversion", stop_at_step=3)  # inside the encoder's 6 steps


def test_inversion_recovers_a_latent_the_generator_can_reach():
    import torch

    from deepnotes.generative.dcgan import DCGANGenerator
    from deepnotes.generative.inversion import invert

    torch.manual_seed(0)
    g = DCGANGenerator(8, 4).eval()
    z_true = torch.randn(4, 8)
    with torch.no_grad():
        x = g(z_true)
    z, errors = invert(g, x, torch.randn(4, 8), steps=300, lr=0.05, record=(0, 300))
    assert float(errors[300].mean()) < 0.05 * float(errors[0].mean())
    assert all(p.requires_grad for p in g.parameters())  # G left as it was
    assert not g.training


# --- multimodal-completion (notes 8.6.2) -------------------------------------------------------
def test_multimodal_completion_reports_spread_confidence_and_resumes_exactly(smoke_runs,
                                                                             check_exact_resume):
    _, summary = smoke_runs("multimodal-completion")
    claims = {c["name"]: c["source"] for c in summary["claims"]}
    assert claims == {"cgan_completions_distinct": "notes", "regressor_averages_modes": "notes",
                      "l2_prefers_the_average": "project"}
    m = summary["metrics"]
    assert m["spread_regressor"] == 0.0 and m["spread_cgan"] > 0
    assert 0 < m["confidence_regressor"] <= 1 and 0 < m["confidence_cgan"] <= 1
    check_exact_resume("multimodal-completion", stop_at_step=11)  # inside the cGAN's 8 steps
