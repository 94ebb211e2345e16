"""Notes chapter 8: Generative models.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

from deepnotes.experiments.ch08 import (
    change_of_variables,
    dcgan_fashion,
    distillation,
    fid_sanity,
    gan_inversion,
    gan_optimal_discriminator,
    gan_saturation,
    kde_bandwidth,
    mode_collapse,
    multimodal_completion,
    sampling,
    transfer_mnist,
)

TITLE = "Generative models"

EXPERIMENTS = [
    kde_bandwidth.EXPERIMENT,  # 8.1
    transfer_mnist.EXPERIMENT,  # 8.2
    distillation.EXPERIMENT,  # 8.3
    sampling.EXPERIMENT,  # 8.4
    change_of_variables.EXPERIMENT,  # 8.5
    gan_optimal_discriminator.EXPERIMENT,  # 8.6
    dcgan_fashion.EXPERIMENT,  # 8.6, 8.6.1
    multimodal_completion.EXPERIMENT,  # 8.6.2
    gan_saturation.EXPERIMENT,  # 8.7.1
    dcgan_fashion.EXPERIMENT_LSGAN,  # 8.7.1
    mode_collapse.EXPERIMENT,  # 8.7.2
    gan_inversion.EXPERIMENT,  # 8.7.2
    fid_sanity.EXPERIMENT,  # 8.9
    dcgan_fashion.EXPERIMENT_CGAN,  # 8.10
]
