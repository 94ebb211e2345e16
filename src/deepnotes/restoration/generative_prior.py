"""Deep generative priors (notes 8.16; Bora, Jalal, Price & Dimakis 2017): restore y = A(x) + n
by searching the latent space of a trained generator G, and the Lasso baselines.

The estimate is ``x̂ = G(ẑ)`` with

    ẑ = argmin_z ‖y − A(G(z))‖² + λ ‖z‖² + λ_D · L_gan(G(z)),

minimized by Adam over z alone (G frozen, eval mode) from ``restarts`` random starts
z₀ ~ N(0, I); each image keeps the restart whose *measurement* residual ‖y − A(G(ẑ))‖² is the
lowest (the clean image is never looked at).

Signs (the notes' objective, erratum 8.16): the prior term of a minimization is
−log p_z(z), which for z ~ N(0, I_k) is ‖z‖²/2 + (k/2) log 2π (:func:`standard_normal_nll`);
the notes' ``L_z = log p_z(z)`` would reward improbable latents. ``λ ‖z‖²`` is Bora et al.'s
form of it (2·(−log p_z) up to a constant; λ absorbs the 2). The discriminator term keeps the
notes' ``L_gan = log(1 − D(G(z))) − log D(G(z))``, which *is* right for a minimization: with
D = sigmoid(l) it equals −l, and it falls as D calls G(z) real (:func:`discriminator_term`).

Generators: any callable ``(B, k) -> (B, 1, 28, 28)`` in [0, 1]; :class:`UnitRange` wraps
the zoo's DCGAN (tanh output in [-1, 1]), :class:`VAEDecoderImages` the chapter-7 VAE's
decoder (Bernoulli logits -> means ``sigmoid``).

Baselines (Bora et al.'s): the Lasso (``sklearn.linear_model.Lasso``, objective
``‖y − Φ w‖² / (2 m) + α ‖w‖₁``) in the pixel domain (Φ = A, w = x) and in the orthonormal
2-D DCT basis (Φ = A Ψ, x = Ψ w, ``Ψ w = idctn(w, norm="ortho")``, :func:`dct_basis`).
Both methods pick their regularization weight from grids of the same length by the error on
held-out validation images (:func:`choose`). Math only, no I/O.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.fft import idctn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso
from torch import nn

Generator = Callable[[torch.Tensor], torch.Tensor]
Operator = Callable[[torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------- generators


class UnitRange(nn.Module):
    """``(G(z) + 1) / 2``: a tanh generator (images in [-1, 1]) as images in [0, 1]."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.latent = generator.latent

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (self.generator(z) + 1) / 2


class VAEDecoderImages(nn.Module):
    """The VAE's decoder as a generator: ``sigmoid(decode(z))`` as ``(B, 1, 28, 28)``."""

    def __init__(self, vae: nn.Module, shape: tuple[int, int] = (28, 28)) -> None:
        super().__init__()
        self.vae = vae
        self.latent = vae.latent
        self.shape = tuple(shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.vae.decode(z)).reshape(len(z), 1, *self.shape)


# ----------------------------------------------------------------- the objective


def standard_normal_nll(z: torch.Tensor) -> torch.Tensor:
    """``−log p_z(z) = ‖z‖²/2 + (k/2) log 2π`` per row of ``z (B, k)``, z ~ N(0, I_k)."""
    return 0.5 * z.square().sum(-1) + 0.5 * z.shape[-1] * math.log(2 * math.pi)


def discriminator_term(logit: torch.Tensor) -> torch.Tensor:
    """The notes' ``L_gan = log(1 − D) − log D`` for ``D = sigmoid(logit)``, per image ``(B,)``.

    ``log(1 − σ(l)) − log σ(l) = −softplus(l) + softplus(−l) = −l`` exactly: minimizing it
    raises D's belief that G(z) is real. (Bora et al. use ``log(1 − D)`` alone; the notes add
    the non-saturating ``−log D``, same direction.)
    """
    return -logit.reshape(len(logit), -1).sum(1)


def measurement_residual(y: torch.Tensor, operator: Operator, images: torch.Tensor
                         ) -> torch.Tensor:
    """``‖y − A(x)‖²`` per image ``(B,)``."""
    return (y - operator(images)).reshape(len(images), -1).square().sum(1)


def prior_objective(z: torch.Tensor, y: torch.Tensor, generator: Generator,
                    operator: Operator, lam: float | torch.Tensor,
                    discriminator: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    lam_gan: float | torch.Tensor = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(objective, residual)`` per image ``(B,)``: the objective is
    ``‖y − A(G(z))‖² + λ‖z‖² [+ λ_D L_gan(G(z))]``; λ (and λ_D) a number or one per image.

    ``discriminator`` takes G's images (as ``generator`` returns them) to logits.
    """
    images = generator(z)
    residual = measurement_residual(y, operator, images)
    objective = residual + torch.as_tensor(lam, dtype=z.dtype) * z.square().sum(1)
    if discriminator is not None:
        objective = objective + (torch.as_tensor(lam_gan, dtype=z.dtype)
                                 * discriminator_term(discriminator(images)))
    return objective, residual


@dataclass(frozen=True)
class PriorFit:
    """The chosen restart per image: ``z (N, k)``, ``images`` G(z), ``residual`` and
    ``objective`` ``(N,)``, ``restart (N,)`` its index; ``residuals (R, N)`` every restart's."""

    z: torch.Tensor
    images: torch.Tensor
    residual: torch.Tensor
    objective: torch.Tensor
    restart: torch.Tensor
    residuals: torch.Tensor


def best_restart(residuals: torch.Tensor) -> torch.Tensor:
    """Index ``(N,)`` of the restart with the lowest measurement residual, ``residuals (R, N)``."""
    return residuals.argmin(0)


class _Frozen:
    """G's parameters without gradients and G in eval mode, restored on exit."""

    def __init__(self, module: object) -> None:
        self.module = module if isinstance(module, nn.Module) else None

    def __enter__(self) -> None:
        if self.module is None:
            return
        self.was = self.module.training
        self.params = list(self.module.parameters())
        self.needs = [p.requires_grad for p in self.params]
        self.module.eval()
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc: object) -> None:
        if self.module is None:
            return
        for p, n in zip(self.params, self.needs, strict=True):
            p.requires_grad_(n)
        self.module.train(self.was)


def recover(generator: Generator, operator: Operator, y: torch.Tensor, latent: int, *,
            lam: float | torch.Tensor = 0.0, restarts: int = 1, steps: int = 200,
            lr: float = 0.1, rng: torch.Generator | None = None,
            z0: torch.Tensor | None = None,
            discriminator: Callable[[torch.Tensor], torch.Tensor] | None = None,
            lam_gan: float | torch.Tensor = 0.0) -> PriorFit:
    """ẑ per image by Adam on :func:`prior_objective` from ``restarts`` starts.

    Args:
        generator: ``(B, k) -> images``; an ``nn.Module`` is frozen (eval) while it runs.
        operator: A, applied to G's images (e.g. a :mod:`~deepnotes.restoration.degradations`
            operator).
        y: measurements ``(N, ...)``, as ``operator`` returns them for N images.
        latent: k.
        lam, lam_gan: weights, a number or ``(N,)`` (one per image: a grid in one batch).
        restarts: R; the starts are ``z0 (R, N, k)`` or drawn from N(0, I) with ``rng``
            (in ``y``'s dtype).
        steps, lr: Adam's budget. All R·N problems run in one batch; the loss is their sum, so
            each z moves as if alone (Adam's update is per coordinate).
    Returns:
        :class:`PriorFit` with the restart of lowest measurement residual for each image.
    """
    n = len(y)
    if restarts < 1 or steps < 0:
        raise ValueError(f"need restarts >= 1 and steps >= 0, got {restarts}, {steps}")
    if z0 is None:
        z0 = torch.randn(restarts, n, latent, generator=rng, dtype=y.dtype)
    if z0.shape != (restarts, n, latent):
        raise ValueError(f"z0 must be (restarts, N, latent) = {(restarts, n, latent)}, "
                         f"got {tuple(z0.shape)}")
    lam_all = (torch.as_tensor(lam, dtype=z0.dtype).expand(n).repeat(restarts)
               if torch.as_tensor(lam).dim() else lam)
    gan_all = (torch.as_tensor(lam_gan, dtype=z0.dtype).expand(n).repeat(restarts)
               if torch.as_tensor(lam_gan).dim() else lam_gan)
    y_all = y.repeat(restarts, *([1] * (y.dim() - 1)))
    with _Frozen(generator), _Frozen(discriminator):
        z = z0.reshape(restarts * n, latent).detach().clone().requires_grad_()
        optimizer = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            objective, _ = prior_objective(z, y_all, generator, operator, lam_all,
                                           discriminator, gan_all)
            optimizer.zero_grad(set_to_none=True)
            objective.sum().backward()
            optimizer.step()
        with torch.no_grad():
            z = z.detach()
            objective, residual = prior_objective(z, y_all, generator, operator, lam_all,
                                                  discriminator, gan_all)
            images = generator(z)
    residuals = residual.reshape(restarts, n)
    pick = best_restart(residuals)
    index = pick * n + torch.arange(n)
    return PriorFit(z=z[index], images=images[index], residual=residual[index],
                    objective=objective[index], restart=pick, residuals=residuals)


# ----------------------------------------------------------------- Lasso baselines


def dct_basis(shape: tuple[int, int]) -> np.ndarray:
    """Ψ ``(n, n)``, n = H·W, float64 orthonormal: ``x.ravel() = Ψ @ c.ravel()`` for
    ``x = idctn(c, norm="ortho")`` (column j is the inverse DCT of the j-th unit image)."""
    n = shape[0] * shape[1]
    units = np.eye(n).reshape(n, *shape)
    return idctn(units, axes=(1, 2), norm="ortho").reshape(n, n).T


def operator_matrix(operator: Operator, shape: tuple[int, int]) -> np.ndarray:
    """The dense matrix ``(rows, n)`` of a linear operator on ``shape`` images (float64)."""
    n = shape[0] * shape[1]
    units = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    return operator(units).reshape(n, -1).T.numpy()


def lasso_recover(matrix: np.ndarray, y: np.ndarray, alphas: Sequence[float],
                  basis: np.ndarray | None = None, max_iter: int = 1000,
                  tol: float = 1e-4) -> dict[float, np.ndarray]:
    """Lasso estimates of the images for each α: ``{α: x̂ (N, n)}``.

    ``matrix`` is A ``(m, n)``, ``y`` the measurements ``(N, m)``; ``basis`` Ψ (or None: the
    pixel domain). Solves ``min_w ‖y − A Ψ w‖² / (2 m) + α ‖w‖₁`` for all N images at once
    (one target each) and returns ``x̂ = Ψ ŵ``; the α are visited in decreasing order, each
    warm-started from the previous solution (a regularization path, as ``lasso_path`` does).
    Iterations stop at ``max_iter`` without a warning (the budget is the same for every α).
    """
    design = matrix if basis is None else matrix @ basis
    model = Lasso(fit_intercept=False, max_iter=max_iter, tol=tol, warm_start=True)
    targets = np.asarray(y, dtype=np.float64).T  # (m, N)
    out: dict[float, np.ndarray] = {}
    for alpha in sorted(alphas, reverse=True):
        model.set_params(alpha=float(alpha))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(design, targets)
        coef = np.atleast_2d(model.coef_).copy()  # (N, n); fit() reuses coef_ in place
        out[float(alpha)] = coef if basis is None else coef @ basis.T
    return out


def choose(grid: Sequence[float], errors: Sequence[float]) -> float:
    """The grid value of lowest validation error (the first one on ties)."""
    if len(grid) != len(errors) or not len(grid):
        raise ValueError(f"need one error per grid value, got {len(grid)} and {len(errors)}")
    return float(grid[int(np.argmin(np.asarray(errors, dtype=np.float64)))])


def per_pixel_mse(estimate: torch.Tensor | np.ndarray, clean: torch.Tensor | np.ndarray
                  ) -> np.ndarray:
    """Mean squared pixel error per image ``(N,)``, float64."""
    a = np.asarray(estimate, dtype=np.float64).reshape(len(estimate), -1)
    b = np.asarray(clean, dtype=np.float64).reshape(len(clean), -1)
    return ((a - b) ** 2).mean(1)
