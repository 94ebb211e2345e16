"""Metrics shared across chapters: language-model loss, translation and captioning scores
(FID and PSNR later)."""

from deepnotes.metrics.language import bits_per_char, stateful_val_loss, windowed_val_loss
from deepnotes.metrics.translation import by_bucket, corpus_bleu, corpus_chrf, exact_match

__all__ = ["windowed_val_loss", "stateful_val_loss", "bits_per_char", "corpus_bleu",
           "corpus_chrf", "exact_match", "by_bucket"]
