"""Plug-and-Play ADMM, RED and MAP restoration (notes 8.14-8.15).

The notes write MAP restoration ``x̂ = argmin_x ℓ(y, x) + β s(x)`` with the Gaussian
likelihood ``ℓ(y, x) = ‖y − A x‖² / (2σ²)`` and split it with ``x = v`` into the scaled
augmented Lagrangian

    L_λ(x, v, u) = ℓ(y, x) + β s(v) + λ/2 ‖x − v + u‖² − λ/2 ‖u‖²,

minimized by three steps per iteration (:func:`admm`):

1. ``x̂ = argmin_x ℓ(y, x) + λ/2 ‖x − x̃‖²`` with ``x̃ = v − u``: closed form for denoising
   (``A = I``) and one FFT filter for a circular blur (:func:`data_prox`);
2. ``v̂ = argmin_v λ/2 ‖ṽ − v‖² + β s(v)`` with ``ṽ = x + u``: a Gaussian denoising of ``ṽ``
   at noise level ``sqrt(β/λ)``. Plug-and-Play puts any denoiser here (:func:`pnp_admm`);
3. ``u = u + (x̂ − v̂)``, the scaled dual update.

Each iteration records the primal residual ``‖x − v‖`` and the dual residual
``λ ‖v − v_prev‖`` (both RMS per pixel, Boyd et al. 2011, §3.3).

RED (Romano, Elad, Milanfar 2017) uses the regularizer ``λ/2 · xᵀ(x − D(x))``. If ``D`` is
locally homogeneous and its Jacobian is symmetric, its gradient is ``λ (x − D(x))``
(Reehorst & Schniter 2019), and the stationarity condition
``Aᵀ(Ax − y)/σ² + λ (x − D(x)) = 0`` gives the fixed-point iteration of
:func:`red_fixed_point`. :func:`jacobian_symmetry` measures how far a denoiser is from that
condition; :func:`red_gradient_mismatch` how far ``x − D(x)`` is from the true gradient.

MAP with a simple prior (:class:`GaussianPrior`, :class:`TVPrior`) connects 8.14 to 8.15: the
same energy is minimized by gradient descent (:func:`map_gradient_descent`) and by ADMM with
the prior's proximal operator as the v-step (:func:`map_admm`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from deepnotes.restoration.classical import (
    circular_gradient,
    fourier,
    gradient_transfer,
    tv_denoise,
)
from deepnotes.restoration.degradations import Blur, Denoising, LinearDegradation

Denoiser = Callable[[torch.Tensor, float], torch.Tensor]  # D(noisy, noise std) -> clean


def _rms(x: torch.Tensor) -> float:
    return float(x.detach().double().pow(2).mean().sqrt())


def _check_sigma(sigma: float) -> None:
    if sigma <= 0:
        raise ValueError(f"the likelihood needs a noise level sigma > 0, got {sigma}")


def data_prox(operator: LinearDegradation, y: torch.Tensor, sigma: float, rho: float,
              target: torch.Tensor) -> torch.Tensor:
    """ADMM's x-step: ``argmin_x ‖y − A x‖²/(2σ²) + ρ/2 ‖x − target‖²``.

    Denoising: ``(y + ρσ² t) / (1 + ρσ²)``. Blur: ``(AᵀA + ρσ² I) x = Aᵀy + ρσ² t``, diagonal
    in Fourier space: ``x = F⁻¹[(conj(K̂) Ŷ + c T̂) / (|K̂|² + c)]`` with ``c = ρσ²``.
    """
    _check_sigma(sigma)
    if rho <= 0:
        raise ValueError(f"the ADMM penalty rho (the notes' λ) must be > 0, got {rho}")
    c = rho * sigma ** 2
    if isinstance(operator, Denoising):
        return (y + c * target) / (1 + c)
    if isinstance(operator, Blur):
        k = operator.transfer
        denominator = k.abs() ** 2 + c
        return operator.filter(y, k.conj() / denominator) + operator.filter(target,
                                                                            c / denominator)
    raise TypeError(f"no closed-form x-step for {type(operator).__name__}: "
                    f"only Denoising and Blur")


@dataclass
class ADMMResult:
    """The final iterates and, per iteration, the primal ``‖x − v‖`` and dual
    ``λ‖v − v_prev‖`` residuals (RMS per pixel)."""

    x: torch.Tensor
    v: torch.Tensor
    u: torch.Tensor
    primal: list[float] = field(default_factory=list)
    dual: list[float] = field(default_factory=list)


def admm(y: torch.Tensor, operator: LinearDegradation, sigma: float,
         v_step: Callable[[torch.Tensor], torch.Tensor], rho: float, iterations: int,
         x0: torch.Tensor | None = None,
         callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None
         ) -> ADMMResult:
    """The notes' three ADMM steps; ``v_step(ṽ)`` solves ``argmin_v λ/2‖ṽ − v‖² + β s(v)``.

    Starts at ``x = v = x0`` (default ``Aᵀy``) and ``u = 0``; ``callback(k, x, v)`` runs after
    each iteration ``k``.
    """
    if iterations < 1:
        raise ValueError(f"need at least one iteration, got {iterations}")
    x = operator.adjoint(y) if x0 is None else x0.clone()
    v, u = x.clone(), torch.zeros_like(x)
    result = ADMMResult(x, v, u)
    for k in range(iterations):
        x = data_prox(operator, y, sigma, rho, v - u)       # 1. x̃ = v − u
        v_prev = v
        v = v_step(x + u)                                   # 2. ṽ = x + u
        u = u + (x - v)                                     # 3. dual update
        result.primal.append(_rms(x - v))
        result.dual.append(rho * _rms(v - v_prev))
        if callback is not None:
            callback(k, x, v)
    result.x, result.v, result.u = x, v, u
    return result


def pnp_admm(y: torch.Tensor, operator: LinearDegradation, sigma: float, denoiser: Denoiser,
             rho: float, iterations: int, beta: float = 1.0, x0: torch.Tensor | None = None,
             callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None
             ) -> ADMMResult:
    """Plug-and-Play ADMM: the v-step is ``denoiser(ṽ, sqrt(β/λ))``, the noise level of the
    denoising problem ``argmin_v λ/2‖ṽ − v‖² + β s(v)`` when ``s = −log p``."""
    strength = math.sqrt(beta / rho)
    return admm(y, operator, sigma, lambda t: denoiser(t, strength), rho, iterations, x0,
                callback)


# --- RED ------------------------------------------------------------------------------------
def red_regularizer(x: torch.Tensor, denoised: torch.Tensor, lam: float) -> torch.Tensor:
    """RED's ``λ/2 · xᵀ(x − D(x))`` given ``denoised = D(x)``."""
    return 0.5 * lam * (x * (x - denoised)).sum()


def red_gradient(x: torch.Tensor, y: torch.Tensor, operator: LinearDegradation, sigma: float,
                 denoised: torch.Tensor, lam: float) -> torch.Tensor:
    """RED's gradient as Romano et al. use it: ``Aᵀ(Ax − y)/σ² + λ (x − D(x))`` (exact only
    for a locally homogeneous D with a symmetric Jacobian)."""
    _check_sigma(sigma)
    return operator.adjoint(operator(x) - y) / sigma ** 2 + lam * (x - denoised)


@dataclass
class REDResult:
    """The last iterate and, per iteration, the stationarity residual
    ``‖Aᵀ(Ax − y)/σ² + λ(x − D(x))‖ / ‖Aᵀy/σ²‖`` and the step ``‖x_k − x_{k−1}‖`` (RMS)."""

    x: torch.Tensor
    stationarity: list[float] = field(default_factory=list)
    change: list[float] = field(default_factory=list)


def red_stationarity(x: torch.Tensor, y: torch.Tensor, operator: LinearDegradation,
                     sigma: float, denoised: torch.Tensor, lam: float) -> float:
    """Relative norm of RED's gradient at ``x``; 0 at a fixed point."""
    scale = (operator.adjoint(y) / sigma ** 2).norm()
    return float(red_gradient(x, y, operator, sigma, denoised, lam).norm() / scale)


def red_fixed_point(y: torch.Tensor, operator: LinearDegradation, sigma: float,
                    denoise: Callable[[torch.Tensor], torch.Tensor], lam: float,
                    iterations: int, x0: torch.Tensor | None = None) -> REDResult:
    """RED's fixed-point iteration: set the gradient to zero with ``D(x)`` frozen at the
    current iterate, ``(AᵀA/σ² + λ I) x_{k+1} = Aᵀy/σ² + λ D(x_k)``, i.e.
    ``x_{k+1} = data_prox(A, y, σ, λ, D(x_k))``. ``denoise`` is D at its fixed strength."""
    if iterations < 1:
        raise ValueError(f"need at least one iteration, got {iterations}")
    x = operator.adjoint(y) if x0 is None else x0.clone()
    result = REDResult(x)
    denoised = denoise(x)
    for _ in range(iterations):
        x_new = data_prox(operator, y, sigma, lam, denoised)
        result.change.append(_rms(x_new - x))
        x = x_new
        denoised = denoise(x)
        result.stationarity.append(red_stationarity(x, y, operator, sigma, denoised, lam))
    result.x = x
    return result


# --- MAP with a simple prior ----------------------------------------------------------------
@dataclass(frozen=True)
class GaussianPrior:
    """``s(x) = γ/2 ‖∇x‖²`` (circular forward differences): a Gaussian smoothness prior
    ``p(x) ∝ exp(−s(x))``. Its MAP estimate under a blur is Tikhonov deconvolution."""

    gamma: float

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        dh, dw = circular_gradient(x)
        return 0.5 * self.gamma * (dh.pow(2).sum() + dw.pow(2).sum())

    def lipschitz(self) -> float:
        return 8.0 * self.gamma  # max of γ|D̂|²

    def prox(self, target: torch.Tensor, rho: float) -> torch.Tensor:
        """``argmin_v ρ/2 ‖target − v‖² + s(v)``: ``F⁻¹[ρ T̂ / (ρ + γ|D̂|²)]``."""
        shape = tuple(target.shape[-2:])
        return fourier(shape).filter(target, rho / (rho + self.gamma * gradient_transfer(shape)))


@dataclass(frozen=True)
class TVPrior:
    """``s(x) = w · TV(x)``. Gradient descent uses the smoothed isotropic TV
    ``w Σ sqrt(|∇x|² + ε²)`` (circular differences); ADMM's v-step Chambolle's exact prox of
    ``w/ρ · TV`` (scikit-image, replicated boundaries), so the two agree only up to ε and the
    boundary."""

    weight: float
    eps: float = 1e-3

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        dh, dw = circular_gradient(x)
        return self.weight * (dh.pow(2) + dw.pow(2) + self.eps ** 2).sqrt().sum()

    def lipschitz(self) -> float:
        return 8.0 * self.weight / self.eps

    def prox(self, target: torch.Tensor, rho: float) -> torch.Tensor:
        return tv_denoise(target, self.weight / rho)


Prior = GaussianPrior | TVPrior


def _lipschitz_likelihood(operator: LinearDegradation, sigma: float) -> float:
    if isinstance(operator, Denoising):
        return 1.0 / sigma ** 2
    if isinstance(operator, Blur):
        return float(operator.transfer.abs().max() ** 2) / sigma ** 2
    raise TypeError(f"no Lipschitz bound for {type(operator).__name__}")


def map_energy(x: torch.Tensor, y: torch.Tensor, operator: LinearDegradation, sigma: float,
               prior: Prior) -> torch.Tensor:
    """``−log p(y|x) − log p(x)`` up to constants: ``‖y − Ax‖²/(2σ²) + s(x)``."""
    return operator.negative_log_likelihood(x, y, sigma) + prior.energy(x)


def map_gradient_descent(y: torch.Tensor, operator: LinearDegradation, sigma: float,
                         prior: Prior, steps: int, lr: float | None = None,
                         x0: torch.Tensor | None = None) -> tuple[torch.Tensor, list[float]]:
    """MAP by gradient descent on :func:`map_energy` (autograd gradient), step ``1/L`` by
    default (``L`` the gradient's Lipschitz constant). Returns ``(x, energies)``."""
    _check_sigma(sigma)
    if lr is None:
        lr = 1.0 / (_lipschitz_likelihood(operator, sigma) + prior.lipschitz())
    x = (operator.adjoint(y) if x0 is None else x0).detach().clone().requires_grad_(True)
    energies = []
    for _ in range(steps):
        energy = map_energy(x, y, operator, sigma, prior)
        (grad,) = torch.autograd.grad(energy, x)
        energies.append(float(energy.detach()))
        with torch.no_grad():
            x -= lr * grad
    return x.detach(), energies


def map_admm(y: torch.Tensor, operator: LinearDegradation, sigma: float, prior: Prior,
             rho: float, iterations: int, x0: torch.Tensor | None = None) -> ADMMResult:
    """The same MAP problem by the notes' ADMM (β = 1): the v-step is the prior's prox."""
    return admm(y, operator, sigma, lambda t: prior.prox(t, rho), rho, iterations, x0)


# --- Jacobian symmetry of a denoiser --------------------------------------------------------
def jacobian_symmetry(denoise: Callable[[torch.Tensor], torch.Tensor],
                      x: torch.Tensor) -> float:
    """``‖J − Jᵀ‖_F / ‖J‖_F`` of ``denoise`` at ``x`` (exact Jacobian by autograd; keep ``x``
    small: the Jacobian has ``x.numel()²`` entries). 0 for a symmetric Jacobian."""
    shape = x.shape

    def flat(z: torch.Tensor) -> torch.Tensor:
        return denoise(z.reshape(shape)).reshape(-1)

    jac = torch.autograd.functional.jacobian(flat, x.detach().reshape(-1), vectorize=True)
    return float((jac - jac.T).norm() / jac.norm())


def jacobian_symmetry_probes(denoise: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                             probes: int, generator: torch.Generator | None = None) -> float:
    """Random-probe estimate of ``‖J − Jᵀ‖_F / ‖J‖_F``: for Gaussian ``u, w``,
    ``E⟨u, (J − Jᵀ) w⟩² = ‖J − Jᵀ‖_F²`` and ``E⟨u, J w⟩² = ‖J‖_F²``. Only vector-Jacobian
    products: ``⟨u, J w⟩ = ⟨Jᵀu, w⟩`` and ``⟨w, J u⟩ = ⟨Jᵀw, u⟩``."""
    if probes < 1:
        raise ValueError(f"need at least one probe, got {probes}")
    z = x.detach().clone().requires_grad_(True)
    out = denoise(z)
    asym, total = 0.0, 0.0
    for _ in range(probes):
        u = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        w = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        jt_u, jt_w = torch.autograd.grad(out, z, torch.stack([u, w]), is_grads_batched=True,
                                         retain_graph=True)[0]
        u_jw = float((jt_u * w).sum())
        w_ju = float((jt_w * u).sum())
        asym += (u_jw - w_ju) ** 2
        total += (u_jw ** 2 + w_ju ** 2) / 2
    return math.sqrt(asym / total)


def red_gradient_mismatch(denoise: Callable[[torch.Tensor], torch.Tensor],
                          x: torch.Tensor) -> float:
    """``‖∇ρ(x) − (x − D(x))‖ / ‖x − D(x)‖`` for ``ρ(x) = ½ xᵀ(x − D(x))``: how wrong RED's
    gradient formula is for this denoiser at ``x`` (the true gradient, by autograd, is
    ``x − ½D(x) − ½J(x)ᵀx``)."""
    z = x.detach().clone().requires_grad_(True)
    denoised = denoise(z)
    (true,) = torch.autograd.grad(0.5 * (z * (z - denoised)).sum(), z)
    formula = (z - denoised).detach()
    return float((true - formula).norm() / formula.norm())
