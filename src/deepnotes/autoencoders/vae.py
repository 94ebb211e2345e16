"""The variational auto-encoder of notes 7.2: a Gaussian encoder, reparameterization, the
closed-form KL, the ELBO and an importance-weighted likelihood.

    q_{theta_E}(z|x) = N(mu(x), diag(sigma^2(x))),   log sigma^2 = log_var(x)   (encoder)
    z = mu + sigma * eps,   eps ~ N(0, I)                       (reparameterization, 7.2.1)
    p_{theta_D}(x|z) = prod_pixels Bernoulli(x_p; sigmoid(logits_p(z))),  p(z) = N(0, I)

    -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z))
    KL(N(mu, diag sigma^2) || N(0, I)) = 1/2 sum_j (sigma_j^2 + mu_j^2 - 1 - log sigma_j^2)

The loss that is *minimized* adds the KL (the notes' ``L_i`` adds ``+1/2 sum(1 + log sigma^2 -
sigma^2 - mu^2)``, which is ``-KL``: subtracting the KL; see docs/ERRATA.md, 7.2).

Two likelihoods, both summed over the 784 pixels of an image, in nats:

* :func:`grey_neg_elbo`: pytorch/examples' VAE objective, binary cross-entropy on grey levels
  in [0, 1] plus the KL. A grey level is not a Bernoulli outcome, so this is **not** a
  normalized likelihood of anything: its minimum over the decoder is the pixels' binary
  entropy, not 0, and it cannot be compared with published NLLs. It is comparable with
  pytorch/examples' printed test loss.
* :func:`iwae_bound` on dynamically binarized images (each pixel drawn ``x_p ~
  Bernoulli(grey_p)`` from a seeded generator): the Bernoulli likelihood is normalized, and the
  importance-weighted bound with ``k`` samples is a lower bound on ``log p(x)`` that rises
  with ``k`` (:mod:`deepnotes.metrics.likelihood`).

The architecture is pytorch/examples' (MLP 784-400-20, ReLU): the encoder is one
:class:`deepnotes.nn.MLP` ``784 -> 400 -> 2*latent`` (the two heads fc21/fc22 stacked), the
decoder ``latent -> 400 -> 784`` logits (the sigmoid is inside the loss).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.metrics.likelihood import iwae_from_log_weights
from deepnotes.nn import MLP

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag(exp(log_var))) || N(0, I))`` summed over the last (latent) dimension:
    ``(N, latent) -> (N,)``, nats, one value per sample. Always >= 0."""
    return 0.5 * (log_var.exp() + mu.square() - 1.0 - log_var).sum(-1)


def gaussian_kl_per_dim(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """The KL of each latent dimension averaged over the samples: ``(N, latent) -> (latent,)``."""
    return (0.5 * (log_var.exp() + mu.square() - 1.0 - log_var)).mean(0)


def reparameterize(mu: torch.Tensor, log_var: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``z = mu + sigma * eps``, ``sigma = exp(log_var / 2)``, ``eps ~ N(0, I)`` from
    ``generator``: a draw from ``N(mu, diag sigma^2)`` that is differentiable in mu and
    log_var (7.2.1). Note ``sigma`` (the standard deviation), not ``sigma^2``, multiplies."""
    # Drawn on the generator's device (a run's named streams are CPU generators), then moved:
    # the same eps on every device, and no "Expected a 'cuda' device type for generator".
    where = generator.device if generator is not None else mu.device
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=where).to(mu.device)
    return mu + (0.5 * log_var).exp() * eps


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor
                         ) -> torch.Tensor:
    """``log N(z; mu, diag exp(log_var))`` summed over the last dimension."""
    return -0.5 * (LOG_2PI + log_var + (z - mu).square() / log_var.exp()).sum(-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sum_p [x_p log s_p + (1 - x_p) log(1 - s_p)]``, ``s = sigmoid(logits)``, summed over
    the last dimension. For binary ``x`` a log-probability; for grey ``x`` minus the binary
    cross-entropy of pytorch/examples (not a log-probability)."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def dynamic_binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary images ``x_p ~ Bernoulli(x_p)`` from grey levels in [0, 1] (a seeded draw)."""
    return torch.bernoulli(x, generator=generator)


def kl_weight(step: int, beta: float = 1.0, anneal_steps: int = 0) -> float:
    """The weight of the KL at ``step``: ``beta`` (a beta-VAE, Higgins et al. 2017), ramped
    linearly from 0 over the first ``anneal_steps`` steps (KL annealing, Bowman et al. 2016)."""
    if anneal_steps <= 0:
        return float(beta)
    return float(beta) * min(1.0, step / anneal_steps)


class VAE(nn.Module):
    """Gaussian-encoder, Bernoulli-decoder VAE on flattened images.

    Args:
        input_dim: pixels per image (784).
        hidden: width of the one hidden layer of encoder and decoder (400).
        latent: latent dimension (20).
    Shapes:
        ``x (N, input_dim)`` in [0, 1] -> ``(logits (N, input_dim), mu (N, latent),
        log_var (N, latent))``.
    """

    def __init__(self, input_dim: int = 784, hidden: int = 400, latent: int = 20) -> None:
        super().__init__()
        self.architecture_kwargs = {"input_dim": input_dim, "hidden": hidden, "latent": latent}
        self.latent = latent
        self.encoder = MLP([input_dim, hidden, 2 * latent], fused=True)
        self.decoder = MLP([latent, hidden, input_dim], fused=True)

    @property
    def architecture(self) -> dict:
        return {"class": f"{type(self).__module__}.{type(self).__name__}",
                "kwargs": dict(self.architecture_kwargs)}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, log_var)`` of ``q(z|x)``."""
        mu, log_var = self.encoder(x).chunk(2, dim=-1)
        return mu, log_var

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of ``p(x|z)``; ``z (..., latent)`` -> ``(..., input_dim)``."""
        return self.decoder(z.reshape(-1, z.shape[-1])).reshape(*z.shape[:-1], -1)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        mu, log_var = self.encode(x)
        return self.decode(reparameterize(mu, log_var, generator)), mu, log_var


def neg_elbo_terms(model: VAE, x: torch.Tensor, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One-sample ``(reconstruction -log p(x|z) (N,), KL (N,), mu, log_var)`` in nats per
    image. ``x`` grey gives pytorch/examples' BCE, ``x`` binary the Bernoulli NLL."""
    logits, mu, log_var = model(x, generator)
    return -bernoulli_log_likelihood(logits.float(), x), gaussian_kl(mu.float(),
                                                                     log_var.float()), mu, log_var


def vae_loss(model: VAE, x: torch.Tensor, beta: float = 1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """The training loss per image, averaged over the batch: ``rec + beta * KL`` (KL added)."""
    rec, kl, _, _ = neg_elbo_terms(model, x, generator)
    return (rec + beta * kl).mean()


@torch.no_grad()
def grey_neg_elbo(model: VAE, x: torch.Tensor, generator: torch.Generator | None = None,
                  batch_size: int = 2000) -> dict[str, float]:
    """pytorch/examples' test loss per image on grey levels ``x (N, 784)`` in [0, 1], one
    ``z`` per image: ``{"neg_elbo", "rec", "kl"}`` means in nats. Not a normalized
    likelihood (module docstring)."""
    model.eval()
    rec_sum = kl_sum = 0.0
    for i in range(0, len(x), batch_size):
        rec, kl, _, _ = neg_elbo_terms(model, x[i:i + batch_size], generator)
        rec_sum += float(rec.double().sum())
        kl_sum += float(kl.double().sum())
    n = len(x)
    return {"neg_elbo": (rec_sum + kl_sum) / n, "rec": rec_sum / n, "kl": kl_sum / n}


@torch.no_grad()
def log_importance_weights(model: VAE, x: torch.Tensor, k: int,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """``log p(x|z_j) + log p(z_j) - log q(z_j|x)`` for ``z_j ~ q(z|x)``: ``(k, N)``."""
    mu, log_var = model.encode(x)
    z = reparameterize(mu.expand(k, *mu.shape), log_var.expand(k, *log_var.shape), generator)
    log_px_z = bernoulli_log_likelihood(model.decode(z), x.expand(k, *x.shape))
    log_pz = -0.5 * (LOG_2PI + z.square()).sum(-1)
    return log_px_z + log_pz - gaussian_log_density(z, mu, log_var)


@torch.no_grad()
def iwae_bound(model: VAE, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
               images_per_batch: int = 100, samples_per_chunk: int = 100) -> torch.Tensor:
    """``IWAE_k(x) = log (1/k) sum_j w_j`` per image, ``(N,)`` nats: a lower bound on
    ``log p(x)`` for binary ``x (N, 784)``. Samples are drawn in chunks and combined with
    ``logsumexp``, so any ``k`` fits in memory; ``k = 1`` is a one-sample ELBO."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    model.eval()
    out = []
    for i in range(0, len(x), images_per_batch):
        xb = x[i:i + images_per_batch]
        if k <= samples_per_chunk:
            out.append(iwae_from_log_weights(log_importance_weights(model, xb, k, generator)))
            continue
        parts = [torch.logsumexp(log_importance_weights(
            model, xb, min(samples_per_chunk, k - j), generator), dim=0)
            for j in range(0, k, samples_per_chunk)]
        out.append(torch.logsumexp(torch.stack(parts), dim=0) - math.log(k))
    return torch.cat(out)


@torch.no_grad()
def elbo_bound(model: VAE, x: torch.Tensor, samples: int = 10,
               generator: torch.Generator | None = None, batch_size: int = 1000
               ) -> torch.Tensor:
    """The ELBO per image ``E_q[log p(x|z)] - KL`` (KL in closed form, the expectation over
    ``samples`` draws), ``(N,)`` nats; ``<= IWAE_k`` for every ``k`` in expectation."""
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        mu, log_var = model.encode(xb)
        z = reparameterize(mu.expand(samples, *mu.shape),
                           log_var.expand(samples, *log_var.shape), generator)
        rec = bernoulli_log_likelihood(model.decode(z), xb.expand(samples, *xb.shape)).mean(0)
        out.append(rec - gaussian_kl(mu, log_var))
    return torch.cat(out)


@torch.no_grad()
def posterior_means(model: VAE, x: torch.Tensor, batch_size: int = 2000
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder ``(mu, log_var)`` of every image of ``x``."""
    model.eval()
    parts = [model.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


@torch.no_grad()
def sample_images(model: VAE, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` images ``sigmoid(decode(z))``, ``z ~ N(0, I)``: Bernoulli means ``(n, 784)``."""
    model.eval()
    z = torch.randn(n, model.latent, generator=generator)
    return torch.sigmoid(model.decode(z))


@torch.no_grad()
def interpolate(model: VAE, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10
                ) -> torch.Tensor:
    """Decoded means along the straight line between the posterior means of two images:
    ``(steps, 784)``."""
    model.eval()
    mu_a, _ = model.encode(x_a[None])
    mu_b, _ = model.encode(x_b[None])
    t = torch.linspace(0, 1, steps)[:, None]
    return torch.sigmoid(model.decode((1 - t) * mu_a + t * mu_b))
