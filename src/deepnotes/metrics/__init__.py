"""Metrics shared across chapters: language-model loss, translation and captioning scores,
SQuAD exact match and F1, the importance-weighted likelihood bound and active units,
the unbiased MMD (IMQ kernel), the Fréchet distance, and the offline metrics of
generative models (FID, IS and KID on the zoo CNN's features, PSNR, SSIM, bits/dim, EMD in
1-D and, exactly, between two small samples)."""

from deepnotes.metrics.distances import (
    emd_assignment,
    frechet_distance,
    gaussian_moments,
    imq_kernel,
    mmd_unbiased,
)
from deepnotes.metrics.generative import (
    CNNFeatures,
    FIDResult,
    ReferenceStatistics,
    bits_per_dim,
    dequantize,
    emd_1d,
    fid,
    fid_from_images,
    frechet_distance_1d,
    inception_score,
    kid,
    polynomial_kernel,
    psnr,
    ssim,
)
from deepnotes.metrics.language import bits_per_char, stateful_val_loss, windowed_val_loss
from deepnotes.metrics.likelihood import active_units, iwae_from_log_weights
from deepnotes.metrics.qa import exact_match_score, f1_score, normalize_answer, squad_scores
from deepnotes.metrics.translation import by_bucket, corpus_bleu, corpus_chrf, exact_match

__all__ = ["windowed_val_loss", "stateful_val_loss", "bits_per_char", "corpus_bleu",
           "corpus_chrf", "exact_match", "by_bucket", "squad_scores", "normalize_answer",
           "f1_score", "exact_match_score", "iwae_from_log_weights", "active_units",
           "imq_kernel", "mmd_unbiased", "emd_assignment", "gaussian_moments", "frechet_distance",
           "CNNFeatures", "FIDResult", "ReferenceStatistics", "bits_per_dim", "dequantize",
           "emd_1d", "fid", "fid_from_images", "frechet_distance_1d", "inception_score", "kid",
           "polynomial_kernel", "psnr", "ssim"]
