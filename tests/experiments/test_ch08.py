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


def test_generative_table_lists_every_model_and_knows_which_have_landed(smoke_runs):
    from deepnotes.experiments.ch08 import generative_table as table
    from deepnotes.experiments.registry import REGISTRY, producers

    produced = set(producers(REGISTRY))
    listed = {m.artifact for m in table.MODELS}
    # AVAILABLE is exactly the listed models that a registered experiment produces: a model
    # that lands cannot be left out, and none is scored that nobody trains.
    assert set(table.AVAILABLE) == listed & produced
    assert set(REGISTRY["generative-table"].requires) == {"cnn-fashion", *table.AVAILABLE}
    _, summary = smoke_runs("generative-table")
    m = summary["metrics"]
    assert m["missing_models"] == len(listed - produced)
    for name in table.AVAILABLE:
        assert m[f"fid_{name}_mean"] > 0 and m[f"fid_{name}_std"] >= 0
        assert m[f"train_seconds_{name}"] > 0  # recorded by the producing run's artifact
    assert m["fid_floor_mean"] < m["fid_pca_mean"]
    text = summary["samples"]["FID table"]
    assert all(model.label in text for model in table.MODELS)
    assert text.count("missing") == m["missing_models"]


def test_generative_table_claims_fail_on_missing_models_and_rank_by_mean_fid():
    from deepnotes.experiments.ch08 import generative_table as table

    def row(artifact, fids):
        model = next(x for x in table.MODELS if x.artifact == artifact)
        return {"model": model, "fids": fids, "train_seconds": 1.0, "budget": "steps=10"}

    baselines = {"floor": [5.0, 5.2], "pca": [90.0, 91.0]}
    rows = [row("vae-fashion", [60.0, 62.0]), row("glo-fashion", [50.0, 50.0]),
            row("glann-fashion", [40.0, 44.0]), {"model": table.MODELS[2], "fids": None}]
    claims = {c.name: c for c in table.claims(rows, baselines)}
    assert claims["glann_ranks_above_glo_and_vae"].value == 42.0 - 50.0
    assert claims["glann_ranks_above_glo_and_vae"].holds
    assert claims["every_model_above_the_floor"].value == 42.0 - 5.1
    text = table.table_text(rows, baselines, n=100, draws=2)
    order = [text.index(label) for label in ("GLANN", "GLO (Gaussian fit)", "VAE", "DCGAN")]
    assert order == sorted(order) and "missing" in text.splitlines()[-3]
    for gone in (2, 0):  # GLANN, then the VAE missing: the ranking claim cannot hold
        partial = [r for k, r in enumerate(rows) if k != gone]
        assert not {c.name: c for c in table.claims(partial, baselines)}[
            "glann_ranks_above_glo_and_vae"].holds


# --- pix2pix-edges (notes 8.18) ---------------------------------------------------------------
def test_pix2pix_edges_smoke_reports_every_arm_costs_and_the_fixed_ranking(smoke_runs):
    from deepnotes.experiments.ch08.pix2pix_edges import ARMS, RANK
    from deepnotes.zoo import fashion_cnn

    run_dir, summary = smoke_runs("pix2pix-edges")
    claims = {c["name"]: c for c in summary["claims"]}
    assert {n: c["source"] for n, c in claims.items()} == {
        "l1_error_l1_at_most_l1_cgan": "project", "l1_error_l1_cgan_below_cgan": "project",
        "fid_l1_cgan_below_l1": "notes", "l1_alone_blurrier": "project",
        "patchgan_fid_below_full_image": "notes", "patchgan_sharper_than_full_image": "notes",
        "patchgan_fewer_parameters": "project", "patchgan_fewer_multiply_adds": "notes"}
    assert all(c["threshold"] == RANK for c in claims.values())
    m = summary["metrics"]
    for arm in ARMS:
        k = arm.replace("-", "_")
        assert 0 < m[f"l1_error_{k}"] < 1 and m[f"fid_{k}"] > 0 and m[f"sharpness_{k}"] > 0
    assert m["patch_receptive_field"] == 10 and m["eval_n"] == 200
    # Machine-independent costs: fewer weights, the same multiply-adds (a 1x1 head over the
    # 7x7 map costs what a linear layer over it does).
    assert m["d_parameters_patch"] < m["d_parameters_full"]
    assert m["d_multiply_adds_patch"] == m["d_multiply_adds_full"]
    assert claims["patchgan_fewer_parameters"]["holds"]
    assert 0 < m["edge_fraction"] < 0.5
    assert fashion_cnn.load("smoke")[1].record() in summary["artifacts"]
    assert (run_dir / "figures" / "translations.png").is_file()


def test_pix2pix_edges_resumes_exactly(check_exact_resume):
    # Both optimizers, both learning-rate schedules (decaying from step 3 of 6) and the step
    # counter: the smoke tier trains 4 arms of 6 steps; step 15 stops the third (L1 + cGAN)
    # in its decay, and the finished arms are restored, not retrained.
    check_exact_resume("pix2pix-edges", stop_at_step=15)


# --- wgan-critic, wgan-gp-fashion (notes 8.17) -------------------------------------------------
def test_wgan_critic_smoke_compares_with_the_exact_emd_and_resumes_exactly(smoke_runs,
                                                                          check_exact_resume):
    from deepnotes.experiments.ch08.wgan_critic import (
        CLIP_PILE_MIN,
        DIMS,
        GP_NORM_DEVIATION_MAX,
        GP_WEIGHT,
        W1_REL_ERROR_MAX,
    )

    _, summary = smoke_runs("wgan-critic")
    assert [(c["name"], c["op"], c["threshold"], c["source"]) for c in summary["claims"]] == [
        ("critic_w1_matches_emd_1d", "<=", W1_REL_ERROR_MAX, "notes"),
        ("critic_w1_matches_emd_2d", "<=", W1_REL_ERROR_MAX, "notes"),
        ("clipped_weights_pile_at_bounds", ">=", CLIP_PILE_MIN, "project"),
        ("gp_gradient_norm_near_one", "<=", GP_NORM_DEVIATION_MAX, "project")]
    m = summary["metrics"]
    for d in DIMS:
        exact = m[f"w1_exact_{d}d"]
        assert exact > 0 and m[f"w1_overestimate_predicted_{d}d"] == exact / (2 * GP_WEIGHT)
        assert m[f"w1_rel_error_gp_{d}d"] == abs(m[f"w1_gp_{d}d"] - exact) / exact
        assert 0 <= m[f"fraction_at_clip_init_{d}d"] <= 0.2  # starts uniform in [-c, c]
        assert 0 <= m[f"fraction_at_clip_{d}d"] <= 1
    # Four critic loops of 20 steps: step 50 interrupts the third (the 2-D GP critic).
    check_exact_resume("wgan-critic", stop_at_step=50)


def test_wgan_gp_fashion_smoke_saves_the_generator_and_records_critic_and_fid_curves(
        smoke_runs):
    import torch

    from deepnotes.generative.dcgan import DCGANGenerator
    from deepnotes.zoo import fashion_cnn, wgan_fashion

    _, summary = smoke_runs("wgan-gp-fashion")
    claims = {c["name"]: c["source"] for c in summary["claims"]}
    assert claims == {"fid_beats_pca_baseline": "project", "critic_loss_tracks_fid": "notes"}
    m = summary["metrics"]
    assert m["critic_steps"] == 2 * m["steps"] == 16 and m["curve_points"] == 4
    assert {"fid_curve_step2", "critic_w1_step8"} <= set(m)
    assert m["fid_ratio_to_pca"] == m["fid"] / m["fid_pca_gaussian"]
    assert -1 <= m["spearman_critic_w1_vs_fid"] <= 1
    assert fashion_cnn.load("smoke")[1].record() in summary["artifacts"]
    g, artifact = wgan_fashion.load("smoke")
    assert isinstance(g, DCGANGenerator) and artifact.metrics["fid"] == m["fid"]
    assert wgan_fashion.sample(g, torch.zeros(2, g.latent)).shape == (2, 1, 28, 28)


def test_wgan_gp_fashion_resumes_exactly(check_exact_resume):
    # Both Adams, the EMA generator, the critic-W1 window and the step counter (smoke: 8 steps,
    # 2 critic steps each; step 5 falls between two evaluations).
    check_exact_resume("wgan-gp-fashion", stop_at_step=5)


def test_mode_collapse_wgan_gp_arm_resumes_exactly_with_its_schedules(smoke_runs,
                                                                     check_exact_resume):
    _, summary = smoke_runs("mode-collapse")
    claims = {c["name"]: c["source"] for c in summary["claims"]}
    assert claims["wgan_gp_covers_all_modes"] == "notes"
    assert claims["wgan_gp_high_quality"] == "project"
    m = summary["metrics"]
    assert m["min_modes_wgan_gp"] == min(m[f"modes_wgan_gp_s{i}"] for i in range(int(m["seeds"])))
    # Smoke: three loops of 40 rounds, then WGAN-GP's 20 (2 critic steps each, both Adams and
    # both linear lr decays in the checkpoint); step 130 interrupts the WGAN-GP loop.
    check_exact_resume("mode-collapse", stop_at_step=130)


# --- cyclegan-fashion (notes 8.8) -------------------------------------------------------------
def test_cyclegan_fashion_smoke_reports_both_directions_and_their_baselines(smoke_runs):
    import pytest

    from deepnotes.zoo import fashion_cnn

    run_dir, summary = smoke_runs("cyclegan-fashion")
    claims = {c["name"]: c["source"] for c in summary["claims"]}
    assert claims == {"cycle_l1_low": "notes", "translated_to_target_domain": "notes",
                      "target_rate_beats_identity": "project", "shape_kept": "notes",
                      "shape_follows_its_source": "project"}
    m = summary["metrics"]
    assert m["cycle_l1"] == pytest.approx((m["cycle_l1_g"] + m["cycle_l1_f"]) / 2)
    assert m["target_rate_min"] == min(m["target_rate_g"], m["target_rate_f"])
    assert m["silhouette_iou_gain"] == pytest.approx(m["silhouette_iou"] - m["unpaired_iou"])
    for key in ("target_rate_g", "identity_target_rate_f", "silhouette_iou_g", "unpaired_iou_f"):
        assert 0 <= m[key] <= 1
    # Smoke: pools of 20 fill after 3 steps of 8; the linear decay runs over the last 6 of 12.
    assert m["pool_x_size"] == m["pool_y_size"] == 20
    assert m["final_lr"] == pytest.approx(2e-4 / 7)
    assert summary["artifacts"] == [fashion_cnn.load("smoke")[1].record()]
    assert (run_dir / "figures" / "translations.png").is_file()


def test_cyclegan_fashion_resumes_exactly(check_exact_resume):
    # Both Adams, both linear decays (active from step 6), both full image pools (contents and
    # random streams) and the step counter; smoke: 12 steps.
    check_exact_resume("cyclegan-fashion", stop_at_step=9)


# --- glann-fashion (notes 8.12, 8.13) ----------------------------------------------------------
def test_glann_fashion_smoke_publishes_both_samplers_and_counts_search_flops(smoke_runs):
    import torch

    from deepnotes.generative.glo import GLANNSampler, GLOSampler, nn_search_flops
    from deepnotes.zoo import fashion_cnn, glo_fashion

    run_dir, summary = smoke_runs("glann-fashion")
    claims = {c["name"]: c for c in summary["claims"]}
    assert {n: (c["source"], c["op"], c["threshold"]) for n, c in claims.items()} == {
        "glann_beats_glo_gaussian": ("project", "<", 1.0),
        "latent_search_cheaper": ("notes", "<=", 0.125),
        "flop_formula_matches_torch_counter": ("project", "<=", 0.0)}
    assert claims["latent_search_cheaper"]["holds"]
    assert claims["flop_formula_matches_torch_counter"]["holds"]
    m = summary["metrics"]
    assert m["fid_n"] == 200 and m["fid_glann"] > 0 and m["fid_glo_gaussian"] > 0
    assert m["fid_ratio_glann_to_glo"] == m["fid_glann"] / m["fid_glo_gaussian"]
    assert m["search_flops_latent"] == 8 * nn_search_flops(64, 256, 64)  # smoke: 8 steps
    assert m["code_norm_max_deviation"] < 1e-5  # every code on the unit sphere
    assert fashion_cnn.load("smoke")[1].record() in summary["artifacts"]
    for name, cls in (("glo-fashion", GLOSampler), ("glann-fashion", GLANNSampler)):
        model, artifact = glo_fashion.load(name, "smoke")
        assert isinstance(model, cls) and artifact.metrics["fid_glann"] == m["fid_glann"]
        images = glo_fashion.sample(model, 5, torch.Generator().manual_seed(0))
        assert images.shape == (5, 1, 28, 28) and 0 <= float(images.min()) <= float(
            images.max()) <= 1
    assert (run_dir / "figures" / "samples.png").is_file()


def test_glann_fashion_resumes_exactly(check_exact_resume):
    check_exact_resume("glann-fashion", stop_at_step=7)  # inside GLO (12 steps)
    check_exact_resume("glann-fashion", stop_at_step=16)  # inside IMLE (8 steps after GLO)


# --- dip-fitting, dip-denoise (notes 8.14.2) ---------------------------------------------------
def test_dip_fitting_smoke_fits_four_targets_from_one_initialization(smoke_runs):
    from deepnotes.experiments.ch08.dip_fitting import MIN_RATIO, TARGETS

    _, summary = smoke_runs("dip-fitting")
    m = summary["metrics"]
    assert [(c["name"], c["op"], c["threshold"], c["source"]) for c in summary["claims"]] == [
        ("image_fitted_fastest", ">", MIN_RATIO, "notes"),
        ("noisy_image_before_structureless", ">", MIN_RATIO, "project"),
        ("noise_fitted_slowest", ">", MIN_RATIO, "project")]
    for name in TARGETS:
        assert 0 < m[f"mse_last_{name}"] < 1 and m[f"variance_{name}"] > 0
    # uniform noise has the variance of U(0, 1) up to sampling; shuffling keeps the histogram
    assert abs(m["variance_uniform"] - 1 / 12) < 0.03
    assert abs(m["variance_shuffled"] - m["variance_image"]) <= 1e-12


def test_dip_fitting_targets_come_from_their_own_streams():
    import torch

    from deepnotes.experiments.ch08.dip_fitting import targets

    class Ctx:
        def rng(self, name, index=0):
            return torch.Generator().manual_seed(len(name) + index)

    t = targets(Ctx(), 16)
    assert sorted(t["shuffled"].flatten().tolist()) == sorted(t["image"].flatten().tolist())
    assert not torch.equal(t["shuffled"], t["image"])
    noise = t["image_noise"] - t["image"]
    assert abs(float(noise.std()) - 25 / 255) < 0.03


def test_dip_denoise_smoke_reports_peak_stop_and_nlm(smoke_runs):
    from deepnotes.experiments.ch08.dip_denoise import MAX_NLM_GAP, MAX_STOP_GAP

    _, summary = smoke_runs("dip-denoise")
    m = summary["metrics"]
    claims = {c["name"]: c for c in summary["claims"]}
    assert {k: (c["source"], c["op"]) for k, c in claims.items()} == {
        "peak_psnr": ("project", ">="), "psnr_falls_after_peak": ("notes", ">="),
        "early_stop_near_oracle": ("project", "<="),
        "early_stop_within_nlm": ("project", "<=")}
    assert claims["early_stop_near_oracle"]["threshold"] == MAX_STOP_GAP
    assert claims["early_stop_within_nlm"]["threshold"] == MAX_NLM_GAP
    assert 0 <= m["peak_iteration"] < m["iterations"] and m["psnr_peak"] >= m["psnr_last"]
    assert m["psnr_peak"] >= m["psnr_stop"] and m["stop_seconds"] >= 0
    assert 19 < m["psnr_noisy"] < 21.5 and m["psnr_nlm"] > m["psnr_noisy"]


# --- glow-fashion (notes 8.11) ----------------------------------------------------------------
def test_glow_fashion_smoke_scores_bits_per_dim_and_publishes_a_loadable_flow(smoke_runs):
    import torch

    from deepnotes.generative.flows import ActNorm, Glow
    from deepnotes.zoo import fashion_cnn, glow_fashion

    _, summary = smoke_runs("glow-fashion")
    claims = {c["name"]: c for c in summary["claims"]}
    assert {n: c["source"] for n, c in claims.items()} == {
        "test_bits_per_dim": "project", "beats_histogram_baseline": "project",
        "low_temperature_more_confident": "project", "log_det_matches_autograd": "project"}
    assert claims["log_det_matches_autograd"]["holds"]
    m = summary["metrics"]
    assert m["num_dims"] == 784 and m["fid_n"] == 200 and 0 < m["test_bits_per_dim"] < 16
    assert 0 < m["histogram_bits_per_dim"] < 8
    assert {f"fid_T{t}" for t in ("0.5", "0.7", "0.85", "1")} <= set(m)
    assert fashion_cnn.load("smoke")[1].record() in summary["artifacts"]
    model, artifact = glow_fashion.load("smoke")
    assert isinstance(model, Glow) and artifact.metrics["test_bits_per_dim"] == m[
        "test_bits_per_dim"]
    assert all(bool(a.initialized) for a in model.modules() if isinstance(a, ActNorm))
    images = glow_fashion.sample(model, 10, 0.7, torch.Generator().manual_seed(0))
    assert images.shape == (10, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    assert torch.equal((images * 255).round() / 255, images)  # uint8 grey levels


def test_glow_fashion_resumes_exactly(check_exact_resume):
    # Model (ActNorm's initialized flags included), Adam and the warm-up come back (6 steps).
    check_exact_resume("glow-fashion", stop_at_step=3)


# --- generative-prior-cs (notes 8.16) ----------------------------------------------------------
def test_generative_prior_cs_reports_every_method_and_task_and_resumes_exactly(
        smoke_runs, check_exact_resume):
    _, summary = smoke_runs("generative-prior-cs")
    claims = {c["name"]: c["source"] for c in summary["claims"]}
    assert claims == {"vae_prior_halves_lasso_error_small_m": "project",
                      "dcgan_prior_halves_lasso_error_small_m": "project"}
    m = summary["metrics"]
    for task in ("m10", "m50", "inpaint"):
        for method in ("vae", "dcgan", "lasso_pixel", "lasso_dct"):
            assert 0 <= m[f"mse_{method}_{task}"] < 1
    assert m["lambda_vae_m10"] in (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    assert m["alpha_lasso_dct_m50"] in (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
    assert m["mse_hole_lasso_pixel_inpaint"] > m["mse_lasso_pixel_inpaint"]  # the hole is worst
    assert {a["name"] for a in summary["artifacts"]} >= {"vae-fashion", "dcgan-fashion"}
    check_exact_resume("generative-prior-cs", stop_at_step=1)  # after the first of 3 tasks


# --- dncnn-denoiser, pnp-deblur (notes 8.15) ----------------------------------------------------
def test_dncnn_denoiser_smoke_publishes_a_loadable_denoiser_and_compares_tv_nlm(smoke_runs):
    from deepnotes.zoo import dncnn

    _, summary = smoke_runs("dncnn-denoiser")
    model, artifact = dncnn.load("smoke")
    assert not set(artifact.extra["photos"]) & {"camera", "astronaut", "coffee"}
    m = summary["metrics"]
    for method in ("noisy", "dncnn", "tv", "nlm"):
        assert 0 < m[f"psnr_{method}_camera"] < 60
    assert m["parameters"] == sum(p.numel() for p in model.parameters())
    claims = {c["name"]: c["source"] for c in summary["claims"]}
    assert claims == {"dncnn_denoises": "project", "dncnn_beats_tv": "project"}


def test_dncnn_denoiser_resumes_exactly(check_exact_resume):
    check_exact_resume("dncnn-denoiser", stop_at_step=2)


def test_pnp_deblur_smoke_searches_equal_grids_and_logs_admm_residuals(smoke_runs):
    from deepnotes.zoo import dncnn

    run_dir, summary = smoke_runs("pnp-deblur")
    _, artifact = dncnn.load("smoke")
    assert artifact.record() in summary["artifacts"]
    m = summary["metrics"]
    methods = ("wiener", "tikhonov", "pnp", "red", "pnp_tv", "pnp_nlm")
    for method in methods:  # the same number of grid values for every method
        grid = [m[f"psnr_{method}_grid{j}"] for j in range(int(m["grid"]))]  # validation
        assert f"psnr_{method}_grid{int(m['grid'])}" not in m
        # the parameter is the validation argmax; the reported PSNR is the test photos'
        assert m[f"{method}_best_index"] == grid.index(max(grid))
        assert m[f"psnr_{method}"] == m[f"psnr_{method}_camera"]  # smoke: one test photo
    assert m["pnp_primal_ratio"] == m["pnp_primal_last"] / m["pnp_primal_first"]
    assert 0 <= m["jacobian_asymmetry_patch"] and 0 <= m["jacobian_asymmetry_probes"]
    claims = {c["name"]: c["source"] for c in summary["claims"]}
    assert claims == {"pnp_beats_classical": "project", "pnp_beats_wiener_by_1db": "project",
                      "red_beats_classical": "project", "red_beats_wiener_by_1db": "project",
                      "admm_residual_decreases": "project"}
    assert {"sensitivity.png", "admm_residuals.png", "restorations.png"} <= {
        p.name for p in (run_dir / "figures").iterdir()}


def test_dip_experiments_resume_exactly(check_exact_resume):
    # The network, Adam, the EMA output and the curves (the fit's state) come back: inside
    # dip-denoise's single fit (12 steps) and inside dip-fitting's second target (8 each).
    check_exact_resume("dip-denoise", stop_at_step=7)
    check_exact_resume("dip-fitting", stop_at_step=13)
