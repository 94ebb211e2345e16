"""Metrics shared across chapters (language-model loss first; FID, BLEU, PSNR later)."""

from deepnotes.metrics.language import bits_per_char, stateful_val_loss, windowed_val_loss

__all__ = ["windowed_val_loss", "stateful_val_loss", "bits_per_char"]
