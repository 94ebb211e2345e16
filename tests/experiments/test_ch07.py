"""Chapter-7 experiments: the VAE's smoke run holds its exact claims, resumes exactly and
publishes a loadable artifact; the beta grid reports every cell."""

from __future__ import annotations

import torch

from deepnotes.autoencoders import VAE, sample_images
from deepnotes.autoencoders.wae import WAE, decode_prior
from deepnotes.experiments.ch07.vae_beta import BETAS, MODES, _tag
from deepnotes.experiments.ch07.vae_fashion import k_grid
from deepnotes.experiments.ch07.wae_fashion import LEARNING_RATES, MODELS
from deepnotes.zoo import vae_fashion, wae_fashion


def test_k_grid_compares_powers_of_ten_up_to_k():
    assert k_grid(100) == (1, 10, 100) and k_grid(5000) == (1, 10, 100, 1000, 5000)
    assert k_grid(1) == (1,) and k_grid(10) == (1, 10)


def test_vae_fashion_smoke_claims_sources_and_artifact(smoke_runs):
    _, summary = smoke_runs("vae-fashion")
    claims = {c["name"]: c for c in summary["claims"]}
    assert {n: c["source"] for n, c in claims.items()} == {
        "test_neg_elbo": "project", "elbo_below_iwae": "project",
        "iwae_increases_with_k": "project", "reparameterization_variance": "notes",
        "kl_nonnegative": "project", "active_units": "project"}
    assert all(c["holds"] for c in claims.values()), claims
    m = summary["metrics"]
    assert m["iwae_k"] == 10 and m["iwae_images"] == 100
    assert m["test_nll_iwae"] == m["test_nll_iwae_k10"] <= m["test_nll_iwae_k1"]
    assert m["test_nll_iwae"] <= m["test_neg_elbo_binarized"]
    model, artifact = vae_fashion.load("smoke")
    assert isinstance(model, VAE) and artifact.meta["experiment"] == "vae-fashion"
    assert artifact.metrics["test_neg_elbo"] == m["test_neg_elbo"]
    images = sample_images(model, 4, torch.Generator().manual_seed(0))
    assert images.shape == (4, 784) and 0 <= float(images.min()) <= float(images.max()) <= 1


def test_vae_fashion_resumes_exactly(check_exact_resume):
    check_exact_resume("vae-fashion", stop_at_step=7)  # smoke trains 15 steps


def test_vae_beta_reports_every_cell_of_the_grid_and_resumes_exactly(smoke_runs,
                                                                     check_exact_resume):
    _, summary = smoke_runs("vae-beta")
    m = summary["metrics"]
    for mode in MODES:
        for beta in BETAS:
            tag = f"b{_tag(beta)}_{mode}"
            assert 0 <= m[f"active_units_{tag}"] <= m["latent"] and m[f"kl_{tag}"] >= 0
        assert m[f"collapse_onset_beta_{mode}"] in (0.0, *BETAS)
    check_exact_resume("vae-beta", stop_at_step=45)  # inside the 7th of 10 models (7 steps each)


def test_wae_fashion_smoke_claims_artifact_and_resume(smoke_runs, check_exact_resume):
    _, summary = smoke_runs("wae-fashion")
    claims = {c["name"]: c for c in summary["claims"]}
    assert {n: c["source"] for n, c in claims.items()} == {
        "wae_mmd_prior_match": "notes", "wae_gan_prior_match": "notes",
        "wae_codes_distinct": "notes", "wae_beats_vae_fid": "notes"}
    m = summary["metrics"]
    for name in MODELS:
        assert m[f"lr_{name}"] in LEARNING_RATES and m[f"fid_{name}"] > 0
        assert m[f"code_spread_{name}"] > 0 and m[f"test_sq_error_{name}"] > 0
    assert m["fid_n"] == 300 and m["mmd_images"] == 200
    assert {a["name"] for a in summary["artifacts"]} >= {"cnn-fashion"}
    model, artifact = wae_fashion.load("smoke")
    assert isinstance(model, WAE) and artifact.metrics["fid"] == m["fid_wae-mmd"]
    images = decode_prior(model, 3, torch.Generator().manual_seed(0))
    assert images.shape == (3, 784) and 0 <= float(images.min()) <= float(images.max()) <= 1
    # smoke: 8 models of 9 steps each; step 40 is inside the 5th (the WAE-GAN's first rate,
    # whose discriminator, its optimizer and schedule must come back too).
    check_exact_resume("wae-fashion", stop_at_step=40)


# ----------------------------------------------------------------- auto-encoders (7.1)
def test_ae_identity_smoke_claims_and_sources(smoke_runs):
    _, summary = smoke_runs("ae-identity")
    assert {c["name"]: c["source"] for c in summary["claims"]} == {
        "overcomplete_learns_identity": "notes",
        "identity_codes_no_better_than_pixels": "notes", "bottleneck_cannot_copy": "project"}
    m = summary["metrics"]
    assert m["code_overcomplete"] > 784 > m["code_bottleneck"]
    assert 0 <= m["probe_accuracy_pixels"] <= 1 and m["test_fvu_overcomplete"] >= 0


def test_ae_linear_pca_smoke_claims_and_angles(smoke_runs):
    _, summary = smoke_runs("ae-linear-pca")
    claims = {c["name"]: c for c in summary["claims"]}
    assert {n: c["source"] for n, c in claims.items()} == {
        "linear_ae_matches_pca": "project", "pca_optimal_on_train": "project"}
    assert claims["pca_optimal_on_train"]["holds"]  # PCA is optimal on its own data
    m = summary["metrics"]
    assert 0 <= m["principal_angle_median_deg"] <= m["principal_angle_max_deg"] <= 90


def test_ae_regularized_smoke_claims_closed_form_and_resume(smoke_runs, check_exact_resume):
    _, summary = smoke_runs("ae-regularized")
    assert {c["name"]: c["source"] for c in summary["claims"]} == {
        "sparse_codes_sparser": "notes", "sparse_mse_within_slack": "project",
        "contractive_jacobian_halved": "notes", "contractive_mse_within_slack": "project",
        "denoise_gauss_beats_plain": "notes", "denoise_mask_beats_plain": "project",
        "denoise_gauss_probe": "project", "denoise_mask_probe": "project"}
    m = summary["metrics"]
    assert m["jacobian_closed_form_max_rel_err"] < 1e-4  # float32 closed form vs autograd
    check_exact_resume("ae-regularized", stop_at_step=100)  # inside the 5th of 22 models
