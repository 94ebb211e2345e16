"""Linear translation-invariant (LTI) systems are convolutions (notes sec. 4.1).

An LTI operator ``L`` is fixed by its impulse response ``g = L[delta]``:

    (f * g)(y) = sum_s f(s) g(y - s).

On ``n`` samples with periodic (cyclic) boundary, indices are taken mod ``n`` and the operator
is the *circulant* matrix

    G[y, s] = g((y - s) mod n),    h = G f,

whose rows are cyclic shifts of one another. Three routes compute the same ``h``: the
direct double sum, the matrix ``G``, and the convolution theorem
``f * g = IDFT(DFT(f) . DFT(g))``. Deep-learning "convolution" layers compute the
cross-correlation ``sum_s g(s) f(y + s)`` instead (the kernel flipped); the notes' matrix in
sec. 4.1.2 has that orientation (see ``docs/ERRATA.md``).

All functions act on the last dimension and broadcast over leading ones.
"""

from __future__ import annotations

import torch


def _check_signals(f: torch.Tensor, g: torch.Tensor) -> None:
    if f.dim() < 1 or g.dim() < 1:
        raise ValueError(f"signals need at least one dimension, got {tuple(f.shape)} and "
                         f"{tuple(g.shape)}")
    if f.shape[-1] != g.shape[-1]:
        raise ValueError(f"cyclic convolution needs equal lengths; got f of length "
                         f"{f.shape[-1]} and g of length {g.shape[-1]} (pad g with zeros to n)")


def circulant(g: torch.Tensor) -> torch.Tensor:
    """The circulant matrix of cyclic convolution with ``g``: ``G[y, s] = g((y - s) mod n)``.

    Args:
        g: kernel ``(..., n)``.
    Returns:
        ``(..., n, n)``; ``circulant(g) @ f == cyclic_convolve(f, g)``.
    """
    if g.dim() < 1 or g.shape[-1] < 1:
        raise ValueError(f"g must have a non-empty last dimension, got {tuple(g.shape)}")
    n = g.shape[-1]
    y = torch.arange(n, device=g.device)
    index = (y[:, None] - y[None, :]) % n  # (n, n): (y - s) mod n
    return g[..., index]


def correlation_matrix(g: torch.Tensor) -> torch.Tensor:
    """The matrix of cyclic cross-correlation, ``C[y, s] = g((s - y) mod n)``.

    This is the matrix the notes write in sec. 4.1.2 (first row ``g(0), g(1), ..., g(n-1)``);
    it equals ``circulant(g).T`` and computes ``sum_s g(s - y) f(s)``, not ``f * g``.

    Args:
        g: kernel ``(..., n)``.
    Returns:
        ``(..., n, n)``.
    """
    return circulant(g).transpose(-1, -2)


def cyclic_convolve(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Cyclic convolution by the direct sum ``h(y) = sum_s f(s) g((y - s) mod n)``.

    O(n^2); the reference the other two routes are tested against.

    Args:
        f, g: ``(..., n)``, broadcastable in the leading dimensions.
    Returns:
        ``h`` of shape ``(..., n)``.
    """
    _check_signals(f, g)
    n = f.shape[-1]
    y = torch.arange(n, device=f.device)
    index = (y[:, None] - y[None, :]) % n  # (y, s)
    return (f[..., None, :] * g[..., index]).sum(-1)


def fft_convolve(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Cyclic convolution by the convolution theorem: ``IDFT(DFT(f) * DFT(g))``.

    O(n log n). Real inputs give a real output.

    Args:
        f, g: ``(..., n)``.
    Returns:
        ``(..., n)``.
    """
    _check_signals(f, g)
    if f.is_complex() or g.is_complex():
        return torch.fft.ifft(torch.fft.fft(f) * torch.fft.fft(g))
    n = f.shape[-1]
    return torch.fft.irfft(torch.fft.rfft(f) * torch.fft.rfft(g), n=n)


def shift(f: torch.Tensor, t: int) -> torch.Tensor:
    """Cyclic translation ``(S_t f)(x) = f(x - t)`` along the last dimension."""
    return torch.roll(f, shifts=t, dims=-1)


def kernel_of(matrix: torch.Tensor) -> torch.Tensor:
    """The impulse response ``g = L[delta_0]``: the first column of an operator's matrix.

    Args:
        matrix: ``(..., n, n)`` acting on column vectors.
    Returns:
        ``(..., n)``.
    """
    if matrix.dim() < 2 or matrix.shape[-1] != matrix.shape[-2]:
        raise ValueError(f"expected square matrices (..., n, n), got {tuple(matrix.shape)}")
    return matrix[..., :, 0]


def nearest_circulant_kernel(matrix: torch.Tensor) -> torch.Tensor:
    """Kernel of the circulant closest to ``matrix`` in Frobenius norm.

    Circulants are the matrices constant along each wrapped diagonal ``(y - s) mod n = k``;
    the orthogonal projection averages each such diagonal:
    ``g(k) = mean_y M[y, (y - k) mod n]``.

    Args:
        matrix: ``(..., n, n)``.
    Returns:
        ``(..., n)``; ``circulant`` of it is the projection.
    """
    if matrix.dim() < 2 or matrix.shape[-1] != matrix.shape[-2]:
        raise ValueError(f"expected square matrices (..., n, n), got {tuple(matrix.shape)}")
    n = matrix.shape[-1]
    y = torch.arange(n, device=matrix.device)
    k = torch.arange(n, device=matrix.device)
    cols = (y[None, :] - k[:, None]) % n  # (k, y): the column on diagonal k in row y
    return matrix[..., y[None, :], cols].mean(-1)


def circulant_deviation(matrix: torch.Tensor) -> torch.Tensor:
    """``||M - P(M)||_F / ||M||_F``, where ``P`` projects onto circulant matrices.

    Zero exactly when ``M`` commutes with cyclic shifts (is LTI on the ring).
    """
    projection = circulant(nearest_circulant_kernel(matrix))
    return torch.linalg.matrix_norm(matrix - projection) / torch.linalg.matrix_norm(matrix)


def forward_difference(f: torch.Tensor) -> torch.Tensor:
    """``f(x + 1) - f(x)`` (cyclic): convolution with ``g(-1) = 1, g(0) = -1`` (notes Ex. 4.2).

    With the notes' kernel ``g = (-1, 1)`` placed at indices 0, 1 a true convolution gives
    ``f(x - 1) - f(x)``; ``f(x + 1) - f(x)`` is its cross-correlation (what ``conv1d``
    computes), or the convolution with the kernel flipped. Divided by the sample spacing it
    approximates ``f'`` with error O(spacing).
    """
    n = f.shape[-1]
    g = torch.zeros(n, dtype=f.dtype, device=f.device)
    g[0], g[-1] = -1.0, 1.0  # g(0) = -1, g(-1) = g(n-1) = 1
    return cyclic_convolve(f, g)
