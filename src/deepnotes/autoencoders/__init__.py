"""Auto-encoders of notes chapter 7: the VAE (7.2)."""

from deepnotes.autoencoders.vae import (
    VAE,
    bernoulli_log_likelihood,
    dynamic_binarize,
    elbo_bound,
    gaussian_kl,
    gaussian_kl_per_dim,
    gaussian_log_density,
    grey_neg_elbo,
    interpolate,
    iwae_bound,
    kl_weight,
    log_importance_weights,
    neg_elbo_terms,
    posterior_means,
    reparameterize,
    sample_images,
    vae_loss,
)

__all__ = ["VAE", "bernoulli_log_likelihood", "dynamic_binarize", "elbo_bound", "gaussian_kl",
           "gaussian_kl_per_dim", "gaussian_log_density", "grey_neg_elbo", "interpolate",
           "iwae_bound", "kl_weight", "log_importance_weights", "neg_elbo_terms",
           "posterior_means", "reparameterize", "sample_images", "vae_loss"]
