"""Degradations y = A(x) + n and their Gaussian likelihoods (notes 8.14.1).

Each operator is linear, has its adjoint Aᵀ (tested: ⟨Ax, y⟩ = ⟨x, Aᵀy⟩), and observes
y = A x + σ ε with ε ~ N(0, I). The negative log-likelihood is then, up to a constant,

    -log p(y | x) = ‖y − A x‖² / (2 σ²),

the data term of every MAP restoration in 8.14-8.16. Images are (..., H, W) tensors; the
operators act on the last two dimensions (or, for :class:`GaussianMeasurements`, on the
flattened image).
"""

from __future__ import annotations

import math

import torch


class LinearDegradation:
    """y = A x + σ ε. Subclasses define :meth:`forward` (A) and :meth:`adjoint` (Aᵀ)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def observe(self, x: torch.Tensor, sigma: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """y = A x + σ ε, the noise drawn on the CPU from ``generator`` (same on any device)."""
        if sigma < 0:
            raise ValueError(f"noise level sigma must be >= 0, got {sigma}")
        clean = self.forward(x)
        noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
        return clean + sigma * noise.to(clean.device)

    def negative_log_likelihood(self, x: torch.Tensor, y: torch.Tensor,
                                sigma: float) -> torch.Tensor:
        """‖y − A x‖² / (2σ²), summed over everything: -log p(y|x) up to a constant."""
        if sigma <= 0:
            raise ValueError(f"the likelihood needs sigma > 0, got {sigma}")
        return (y - self.forward(x)).pow(2).sum() / (2 * sigma ** 2)


class Denoising(LinearDegradation):
    """A = I: additive white Gaussian noise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y


def uniform_kernel(size: int) -> torch.Tensor:
    """The size×size box blur (each weight 1/size²), float64."""
    if size < 1:
        raise ValueError(f"kernel size must be >= 1, got {size}")
    return torch.full((size, size), 1.0 / size ** 2, dtype=torch.float64)


def gaussian_kernel(size: int, std: float) -> torch.Tensor:
    """A size×size Gaussian blur normalized to sum 1, float64."""
    if size < 1 or std <= 0:
        raise ValueError(f"need size >= 1 and std > 0, got size={size}, std={std}")
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * std ** 2))
    k = g[:, None] * g[None, :]
    return k / k.sum()


class Blur(LinearDegradation):
    """Circular convolution with a known kernel, computed in the FFT domain.

    A x = F⁻¹(K̂ · F x) and Aᵀ y = F⁻¹(conj(K̂) · F y), with K̂ the transfer function of the
    kernel centred at pixel (0, 0). Circular boundaries make A diagonal in Fourier space,
    which is what lets Wiener filtering and ADMM's x-step be solved in closed form.

    Args:
        kernel: (k, k) blur kernel (it is used as given; normalize it to sum 1 yourself).
        shape: (H, W) of the images it will blur.
    """

    def __init__(self, kernel: torch.Tensor, shape: tuple[int, int]) -> None:
        if kernel.dim() != 2:
            raise ValueError(f"kernel must be 2-D (k, k), got shape {tuple(kernel.shape)}")
        height, width = shape
        kh, kw = kernel.shape
        if kh > height or kw > width:
            raise ValueError(f"kernel {kh}x{kw} is larger than the image {height}x{width}")
        padded = torch.zeros(height, width, dtype=torch.float64)
        padded[:kh, :kw] = kernel.double()
        padded = torch.roll(padded, shifts=(-(kh // 2), -(kw // 2)), dims=(0, 1))
        self.kernel = kernel
        self.shape = (height, width)
        self.transfer = torch.fft.rfft2(padded)  # K̂, (H, W//2+1) complex128

    def _check(self, x: torch.Tensor) -> None:
        if tuple(x.shape[-2:]) != self.shape:
            raise ValueError(f"this Blur was built for {self.shape} images, got "
                             f"{tuple(x.shape[-2:])}; build one per image size")

    def filter(self, x: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
        """F⁻¹(transfer · F x): any diagonal-in-Fourier operator, in x's dtype."""
        self._check(x)
        spectrum = torch.fft.rfft2(x.double()) * transfer.to(x.device)
        return torch.fft.irfft2(spectrum, s=self.shape).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.filter(x, self.transfer)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.filter(y, self.transfer.conj())


class Inpainting(LinearDegradation):
    """A x = m ⊙ x with a 0/1 mask m (1 = observed); A is its own adjoint."""

    def __init__(self, mask: torch.Tensor) -> None:
        if not torch.all((mask == 0) | (mask == 1)):
            raise ValueError("the inpainting mask must hold only 0 (missing) and 1 (observed)")
        self.mask = mask

    @classmethod
    def random(cls, shape: tuple[int, ...], keep: float,
               generator: torch.Generator | None = None) -> Inpainting:
        """Each pixel observed independently with probability ``keep``."""
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"keep must be in (0, 1], got {keep}")
        return cls((torch.rand(shape, generator=generator) < keep).double())

    @classmethod
    def box(cls, shape: tuple[int, int], top: int, left: int, height: int,
            width: int) -> Inpainting:
        """Everything observed except one rectangle."""
        mask = torch.ones(shape, dtype=torch.float64)
        mask[top:top + height, left:left + width] = 0.0
        return cls(mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask.to(x.device, x.dtype)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.forward(y)


class GaussianMeasurements(LinearDegradation):
    """Compressed sensing: y = A x with A an (m, n) matrix of i.i.d. N(0, 1/m) entries.

    Acts on (..., H, W) images flattened to n = H·W pixels and returns (..., m). The 1/m
    variance makes E‖A x‖² = ‖x‖² (the scaling of Bora et al., 2017).

    Args:
        measurements: m.
        shape: (H, W) of the images.
        generator: the CPU stream that draws A.
    """

    def __init__(self, measurements: int, shape: tuple[int, int],
                 generator: torch.Generator | None = None) -> None:
        if measurements < 1:
            raise ValueError(f"need at least one measurement, got {measurements}")
        self.shape = tuple(shape)
        pixels = self.shape[0] * self.shape[1]
        self.matrix = torch.randn(measurements, pixels, generator=generator,
                                  dtype=torch.float64) / math.sqrt(measurements)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.shape:
            raise ValueError(f"expected (..., {self.shape[0]}, {self.shape[1]}) images, got "
                             f"shape {tuple(x.shape)}")
        return x.flatten(-2) @ self.matrix.to(x.device, x.dtype).T  # (..., m)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        flat = y @ self.matrix.to(y.device, y.dtype)  # (..., n)
        return flat.unflatten(-1, self.shape)
