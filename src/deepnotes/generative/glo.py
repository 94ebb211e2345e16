"""GLO, IMLE and GLANN: non-adversarial generators (notes 8.12, 8.13).

**GLO** (Bojanowski et al. 2018), "an encoder-less auto-encoder": every training image
``x_i`` owns a learnable code ``z_i`` (:class:`LatentCodes`, 64-d by default), kept on the
unit sphere (or inside a ball of radius r) by projecting after every step
(:func:`project_codes`); codes and generator minimize ``||G(z_i) - x_i||^2`` together, with an
optional perceptual term ``||phi(G(z_i)) - phi(x_i)||^2`` on a frozen CNN's features
(:class:`PerceptualLoss`), and the codes get their own learning rate: one optimizer, two
parameter groups (:func:`glo_optimizer`). The generator is chapter 8's
:class:`~deepnotes.generative.dcgan.DCGANGenerator` (tanh images in [-1, 1]). Sampling: a
full-covariance Gaussian fitted to the codes (:func:`fit_gaussian`), its draws projected like
the codes (:class:`GLOSampler`).

**IMLE** (Li & Malik 2018): draw many samples of a mapper ``M``, find for every data point its
nearest sample (:func:`nearest_neighbours`: exact, chunked over the candidates, in torch),
then take an SGD step on ``||M(e_j(i)) - x_i||^2`` for those pairs (:func:`imle_select`,
:func:`imle_loss`). The search costs about ``2 n m d`` FLOPs for ``n`` data points, ``m``
candidates and dimension ``d`` (:func:`nn_search_flops`): linear in ``d``, the notes' reason
why IMLE in pixel space (784) is costly.

**GLANN** (Hoshen, Li & Malik 2019): IMLE in GLO's latent space, a mapper from noise to codes
(:class:`LatentMapper`, an MLP whose output is projected like the codes), then GLO's
generator (:class:`GLANNSampler`).

FLOP convention of :func:`nn_search_flops`: a multiply and an add count one each (a
length-``d`` dot product is ``2d``), a comparison counts one. Math only, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deepnotes.data import FASHION_MEAN, FASHION_STD
from deepnotes.generative.dcgan import DCGANGenerator
from deepnotes.metrics.distances import gaussian_moments
from deepnotes.nn import MLP

PROJECTIONS = ("sphere", "ball")


def _architecture(module: nn.Module) -> dict:
    return {"class": f"{type(module).__module__}.{type(module).__name__}",
            "kwargs": dict(module.architecture_kwargs)}


# --- GLO ---------------------------------------------------------------------------------------
def project_codes(z: torch.Tensor, mode: str = "sphere", radius: float = 1.0) -> torch.Tensor:
    """Rows of ``z (N, d)`` onto the sphere of ``radius`` (``"sphere"``) or into the ball of
    that radius (``"ball"``: only rows longer than ``radius`` are shrunk)."""
    if mode not in PROJECTIONS:
        raise ValueError(f"mode must be one of {PROJECTIONS}, got {mode!r}")
    if radius <= 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    norms = z.norm(dim=-1, keepdim=True)
    floor = radius if mode == "ball" else torch.finfo(z.dtype).tiny
    return z * (radius / norms.clamp_min(floor))


class LatentCodes(nn.Module):
    """One learnable code per training image, ``weight (num, dim)``, kept projected.

    ``forward(index) -> codes (len(index), dim)``; call :meth:`project_` after each optimizer
    step (on the rows that moved). Initialized by :meth:`reset_` (Gaussian or PCA codes).
    """

    def __init__(self, num: int, dim: int = 64, mode: str = "sphere", radius: float = 1.0
                 ) -> None:
        super().__init__()
        if num < 1 or dim < 1:
            raise ValueError(f"need num >= 1 and dim >= 1, got {num}, {dim}")
        project_codes(torch.ones(1, 1), mode, radius)  # validates mode and radius
        self.mode, self.radius = mode, radius
        self.weight = nn.Parameter(torch.zeros(num, dim))

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.weight[index]

    @torch.no_grad()
    def reset_(self, init: torch.Tensor) -> LatentCodes:
        """Copy ``init (num, dim)`` in, projected."""
        if init.shape != self.weight.shape:
            raise ValueError(f"expected init of shape {tuple(self.weight.shape)}, got "
                             f"{tuple(init.shape)}")
        self.weight.copy_(project_codes(init.to(self.weight), self.mode, self.radius))
        return self

    @torch.no_grad()
    def project_(self, index: torch.Tensor | None = None) -> None:
        """Project the rows ``index`` (default: all) back onto the sphere / into the ball."""
        if index is None:
            self.weight.copy_(project_codes(self.weight, self.mode, self.radius))
        else:
            self.weight[index] = project_codes(self.weight[index], self.mode, self.radius)


def gaussian_codes(num: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """``N(0, I)`` draws ``(num, dim)``: the notes' initialization (then projected)."""
    return torch.randn(num, dim, generator=generator)


def pca_codes(x: torch.Tensor, dim: int) -> torch.Tensor:
    """The first ``dim`` principal coordinates of data ``x (N, D)`` (float64 covariance,
    float32 result): the GLO paper's initialization (then projected). Eigenvector signs are
    fixed (largest entry positive) so the codes are a function of the data alone."""
    if x.ndim != 2 or not 1 <= dim <= x.shape[1]:
        raise ValueError(f"expected data (N, D >= dim) and 1 <= dim, got {tuple(x.shape)}, {dim}")
    x = x.double()
    centred = x - x.mean(0)
    _, vectors = torch.linalg.eigh(centred.T @ centred)
    top = vectors[:, -dim:].flip(1)  # (D, dim), decreasing variance
    signs = torch.sign(top.gather(0, top.abs().argmax(0, keepdim=True)))
    return (centred @ (top * signs)).float()


def glo_optimizer(generator: nn.Module, codes: LatentCodes, lr_generator: float,
                  lr_codes: float, betas: tuple[float, float] = (0.5, 0.999)
                  ) -> torch.optim.Adam:
    """Adam with two parameter groups, ``"generator"`` and ``"codes"``, each its own rate."""
    if lr_generator <= 0 or lr_codes <= 0:
        raise ValueError(f"learning rates must be > 0, got {lr_generator}, {lr_codes}")
    return torch.optim.Adam([
        {"params": list(generator.parameters()), "lr": lr_generator, "name": "generator"},
        {"params": list(codes.parameters()), "lr": lr_codes, "name": "codes"}], betas=betas)


class PerceptualLoss(nn.Module):
    """``mean ||phi(a) - phi(b)||^2 / d`` on a frozen CNN's ``embed`` features (the zoo CNN's
    penultimate layer, :data:`deepnotes.metrics.generative.LAYER`), for images in [-1, 1],
    standardized as the CNN was trained. Gradients flow into ``a`` only."""

    def __init__(self, cnn: nn.Module, mean: float = FASHION_MEAN, std: float = FASHION_STD
                 ) -> None:
        super().__init__()
        net = cnn.folded() if hasattr(cnn, "folded") else cnn
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.mean, self.std = mean, std

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.embed(((images + 1) / 2 - self.mean) / self.std)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(real)
        return (self.features(fake) - target).square().mean()


def glo_loss(generator: nn.Module, z: torch.Tensor, x: torch.Tensor,
             perceptual: PerceptualLoss | None = None, weight: float = 0.0
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(total, l2, perceptual)``: per-pixel mean squared error of ``G(z)`` against ``x``
    (both in [-1, 1]) plus ``weight`` times the perceptual term (0 without one)."""
    fake = generator(z).float()
    l2 = (fake - x).square().mean()
    perc = perceptual(fake, x) if perceptual is not None and weight > 0 else l2.new_zeros(())
    return l2 + weight * perc, l2, perc


def fit_gaussian(codes: torch.Tensor, jitter: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(d,)`` and lower Cholesky factor ``(d, d)`` of the full-covariance Gaussian of
    ``codes (N, d)`` (float64; ``jitter`` times the mean variance added to the diagonal)."""
    mean, cov = (torch.from_numpy(a) for a in gaussian_moments(codes.detach()))
    cov = cov + jitter * float(cov.diagonal().mean()) * torch.eye(len(mean), dtype=cov.dtype)
    return mean, torch.linalg.cholesky(cov)


class GLOSampler(nn.Module):
    """GLO's generator with the Gaussian fitted to its codes: noise ``(N, latent)`` ~ N(0, I)
    -> ``z = mean + L noise``, projected as the codes were -> ``G(z)`` in [-1, 1]."""

    def __init__(self, latent: int = 64, width: int = 32, mode: str = "sphere",
                 radius: float = 1.0) -> None:
        super().__init__()
        self.architecture_kwargs = {"latent": latent, "width": width, "mode": mode,
                                    "radius": radius}
        self.noise_dim, self.mode, self.radius = latent, mode, radius
        self.generator = DCGANGenerator(latent, width)
        self.register_buffer("mean", torch.zeros(latent))
        self.register_buffer("scale_tril", torch.eye(latent))

    @property
    def architecture(self) -> dict:
        return _architecture(self)

    @torch.no_grad()
    def set_gaussian(self, mean: torch.Tensor, scale_tril: torch.Tensor) -> GLOSampler:
        self.mean.copy_(mean)
        self.scale_tril.copy_(scale_tril)
        return self

    def latents(self, noise: torch.Tensor) -> torch.Tensor:
        return project_codes(self.mean + noise @ self.scale_tril.T, self.mode, self.radius)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.generator(self.latents(noise))


class LatentMapper(nn.Module):
    """GLANN's IMLE mapper: noise ``(N, noise_dim)`` -> an MLP -> codes ``(N, latent)``,
    projected as GLO's codes are."""

    def __init__(self, noise_dim: int = 64, hidden: Sequence[int] = (256, 256),
                 latent: int = 64, mode: str = "sphere", radius: float = 1.0) -> None:
        super().__init__()
        self.architecture_kwargs = {"noise_dim": noise_dim, "hidden": tuple(hidden),
                                    "latent": latent, "mode": mode, "radius": radius}
        self.noise_dim, self.mode, self.radius = noise_dim, mode, radius
        self.net = MLP([noise_dim, *hidden, latent], activation="relu", fused=True)

    @property
    def architecture(self) -> dict:
        return _architecture(self)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return project_codes(self.net(noise), self.mode, self.radius)


class GLANNSampler(nn.Module):
    """GLANN: noise -> :class:`LatentMapper` -> GLO's generator, images in [-1, 1]."""

    def __init__(self, latent: int = 64, width: int = 32, noise_dim: int = 64,
                 hidden: Sequence[int] = (256, 256), mode: str = "sphere",
                 radius: float = 1.0) -> None:
        super().__init__()
        self.architecture_kwargs = {"latent": latent, "width": width, "noise_dim": noise_dim,
                                    "hidden": tuple(hidden), "mode": mode, "radius": radius}
        self.noise_dim = noise_dim
        self.mapper = LatentMapper(noise_dim, hidden, latent, mode, radius)
        self.generator = DCGANGenerator(latent, width)

    @property
    def architecture(self) -> dict:
        return _architecture(self)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.generator(self.mapper(noise))


# --- IMLE: exact nearest neighbours and their cost ---------------------------------------------
@torch.no_grad()
def nearest_neighbours(queries: torch.Tensor, candidates: torch.Tensor, chunk: int = 4096
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query ``(n, d)`` its nearest candidate ``(m, d)`` in Euclidean distance:
    ``(indices (n,) long, squared distances (n,))``, exact (no approximation).

    Candidates are taken ``chunk`` at a time (memory ``n x chunk``): ``||q||^2 + ||c||^2 -
    2 q.c`` by one matrix product per chunk, the chunk's minimum, then a running minimum. On
    equal distances the lowest candidate index wins (``argmin`` takes the first; a later chunk
    replaces the running best only when strictly closer), whatever ``chunk`` is.
    """
    if queries.ndim != 2 or candidates.ndim != 2 or queries.shape[1] != candidates.shape[1]:
        raise ValueError(f"expected (n, d) queries and (m, d) candidates with one d, got "
                         f"{tuple(queries.shape)} and {tuple(candidates.shape)}")
    if len(queries) == 0 or len(candidates) == 0 or chunk < 1:
        raise ValueError(f"need n, m >= 1 and chunk >= 1, got {len(queries)}, "
                         f"{len(candidates)}, {chunk}")
    q_norms = (queries * queries).sum(1)
    best = torch.full_like(q_norms, float("inf"))
    best_index = torch.zeros(len(queries), dtype=torch.long, device=queries.device)
    for start in range(0, len(candidates), chunk):
        block = candidates[start:start + chunk]
        d2 = q_norms[:, None] + (block * block).sum(1)[None, :] - 2 * (queries @ block.T)
        index = d2.argmin(1)
        value = d2.gather(1, index[:, None]).squeeze(1)
        closer = value < best
        best = torch.where(closer, value, best)
        best_index = torch.where(closer, index + start, best_index)
    return best_index, best.clamp_min(0)


def nn_search_flops(n_queries: int, n_candidates: int, dim: int) -> int:
    """Counted FLOPs of one :func:`nearest_neighbours` call, for any ``chunk``:
    ``2 n m d`` (the products ``q.c``) ``+ 2 (n + m) d`` (squared norms) ``+ 3 n m`` (the
    scale by 2 and two additions per pair) ``+ n m`` (comparisons: within chunks and against
    the running best, ``m`` per query in all)."""
    n, m, d = int(n_queries), int(n_candidates), int(dim)
    if min(n, m, d) < 1:
        raise ValueError(f"need n, m, d >= 1, got {n}, {m}, {d}")
    return 2 * n * m * d + 2 * (n + m) * d + 4 * n * m


def imle_search_flops(dim: int, n_queries: int, n_candidates: int, steps: int) -> int:
    """Counted FLOPs of IMLE's nearest-neighbour searches over ``steps`` steps, each matching
    ``n_queries`` data points against ``n_candidates`` samples in dimension ``dim``."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    return steps * nn_search_flops(n_queries, n_candidates, dim)


def imle_flops(dim: int, n_queries: int, n_candidates: int, steps: int,
               sample_flops: int = 0) -> int:
    """IMLE's counted FLOPs over ``steps``: the searches plus drawing the candidates
    (``sample_flops`` per candidate, e.g. :func:`forward_flops` of the mapper / generator)."""
    return imle_search_flops(dim, n_queries, n_candidates, steps) + (
        steps * n_candidates * int(sample_flops))


def forward_flops(fn, *args) -> int:
    """FLOPs of ``fn(*args)`` as torch's :class:`FlopCounterMode` counts them (matrix
    products and convolutions, ``2`` per multiply-add; element-wise work is not counted)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn(*args)
    return int(counter.get_total_flops())


# --- IMLE steps ----------------------------------------------------------------------------------
def imle_select(mapper: nn.Module, targets: torch.Tensor, num_candidates: int,
                generator: torch.Generator, chunk: int = 4096
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``num_candidates`` noise vectors (CPU ``generator``), map them without gradient,
    and return for each target ``(n, d)`` the noise of its nearest mapped sample ``(n,
    noise_dim)`` with the squared distances ``(n,)``."""
    noise = torch.randn(num_candidates, mapper.noise_dim, generator=generator)
    device = targets.device
    with torch.no_grad():
        samples = mapper(noise.to(device)).float()
    index, d2 = nearest_neighbours(targets.float(), samples, chunk)
    return noise[index.cpu()].to(device), d2


def imle_loss(mapper: nn.Module, noise: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``mean_i ||M(e_i) - x_i||^2`` over the selected pairs."""
    return (mapper(noise).float() - targets).square().sum(1).mean()


def code_drift(initial: torch.Tensor, final: torch.Tensor) -> dict[str, float]:
    """How far the codes moved: mean Euclidean distance and mean cosine between rows."""
    a, b = initial.double(), final.double()
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-300)
    return {"code_drift_mean": float((a - b).norm(dim=1).mean()),
            "code_cosine_mean": float(cos.mean())}


def to_unit_interval(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> float images in [0, 1], same shape."""
    return ((images.float() + 1) / 2).clamp(0, 1)


__all__ = ["PROJECTIONS", "GLANNSampler", "GLOSampler", "LatentCodes", "LatentMapper",
           "PerceptualLoss", "code_drift", "fit_gaussian", "forward_flops", "gaussian_codes",
           "glo_loss", "glo_optimizer", "imle_flops", "imle_loss", "imle_search_flops",
           "imle_select", "nearest_neighbours", "nn_search_flops", "pca_codes",
           "project_codes", "to_unit_interval"]
