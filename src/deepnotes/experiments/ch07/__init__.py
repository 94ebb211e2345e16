"""Notes chapter 7: Auto-encoders.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

from deepnotes.experiments.ch07 import (
    ae_identity,
    ae_linear_pca,
    ae_regularized,
    vae_beta,
    vae_fashion,
    wae_fashion,
)

TITLE = "Auto-encoders"

EXPERIMENTS = [
    ae_identity.EXPERIMENT,
    ae_linear_pca.EXPERIMENT,
    ae_regularized.EXPERIMENT,
    vae_fashion.EXPERIMENT,
    vae_beta.EXPERIMENT,
    wae_fashion.EXPERIMENT,
]
