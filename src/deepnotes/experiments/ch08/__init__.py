"""Notes chapter 8: Generative models.

The registry reads ``TITLE`` and ``EXPERIMENTS`` (in notes order) from here.
"""

from deepnotes.experiments.ch08 import (
    change_of_variables,
    cyclegan_fashion,
    dcgan_fashion,
    dip_denoise,
    dip_fitting,
    distillation,
    dncnn_denoiser,
    fid_sanity,
    gan_inversion,
    gan_optimal_discriminator,
    gan_saturation,
    generative_prior_cs,
    generative_table,
    glann_fashion,
    glow_fashion,
    kde_bandwidth,
    mode_collapse,
    multimodal_completion,
    pix2pix_edges,
    pnp_deblur,
    sampling,
    transfer_mnist,
    wgan_critic,
    wgan_gp_fashion,
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
    cyclegan_fashion.EXPERIMENT,  # 8.8
    fid_sanity.EXPERIMENT,  # 8.9
    dcgan_fashion.EXPERIMENT_CGAN,  # 8.10
    glow_fashion.EXPERIMENT,  # 8.11
    glann_fashion.EXPERIMENT,  # 8.12-8.13
    dip_fitting.EXPERIMENT,  # 8.14.2
    dip_denoise.EXPERIMENT,  # 8.14.2
    dncnn_denoiser.EXPERIMENT,  # 8.15
    pnp_deblur.EXPERIMENT,  # 8.15
    generative_prior_cs.EXPERIMENT,  # 8.16
    wgan_critic.EXPERIMENT,  # 8.17
    wgan_gp_fashion.EXPERIMENT,  # 8.17
    pix2pix_edges.EXPERIMENT,  # 8.18
    generative_table.EXPERIMENT,  # 8.9-8.13: one FID table for every generative model
]
