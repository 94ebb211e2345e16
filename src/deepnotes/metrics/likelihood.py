"""Likelihood estimates of latent-variable models: the importance-weighted bound and the
active-unit count (Burda, Grosse & Salakhutdinov 2016, "Importance Weighted Autoencoders").

For ``k`` samples ``z_j ~ q(z|x)`` with log weights ``log w_j = log p(x, z_j) - log q(z_j|x)``

    IWAE_k(x) = log (1/k) sum_j w_j = logsumexp_j(log w_j) - log k   <=   log p(x),

``IWAE_1`` is the ELBO in expectation, and ``E IWAE_k`` increases with ``k`` towards
``log p(x)`` (Burda et al., Theorem 1). The estimate is computed with ``logsumexp`` because
the weights themselves under- or overflow (``log w`` is of order -300 nats for an image).
"""

from __future__ import annotations

import math

import torch


def iwae_from_log_weights(log_weights: torch.Tensor) -> torch.Tensor:
    """``IWAE_k`` per item from log importance weights ``(k, N)`` -> ``(N,)`` (nats)."""
    if log_weights.dim() != 2 or log_weights.shape[0] < 1:
        raise ValueError(f"log_weights must be (k >= 1, N), got {tuple(log_weights.shape)}")
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


def active_units(means: torch.Tensor, threshold: float = 0.01) -> tuple[int, torch.Tensor]:
    """Burda et al.'s count of active latent units: ``A_u = Cov_x(E_{q(z|x)}[z_u])``, unit
    ``u`` is active when ``A_u > threshold`` (0.01 in the paper). ``means`` are the encoder
    means ``(N, latent)`` over a data set; returns ``(count, A (latent,))``."""
    if means.dim() != 2 or len(means) < 2:
        raise ValueError(f"means must be (N >= 2, latent), got {tuple(means.shape)}")
    activity = means.double().var(dim=0, unbiased=True).to(means.dtype)
    return int((activity > threshold).sum()), activity
