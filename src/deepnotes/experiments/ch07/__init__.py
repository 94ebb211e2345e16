"""Notes chapter 7: Auto-encoders.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

from deepnotes.experiments.ch07 import vae_beta, vae_fashion, wae_fashion

TITLE = "Auto-encoders"

EXPERIMENTS = [
    vae_fashion.EXPERIMENT,
    vae_beta.EXPERIMENT,
    wae_fashion.EXPERIMENT,
]
