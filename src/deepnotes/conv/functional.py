"""Convolution, pooling, local response normalization and transposed convolution, written out.

These are the teaching versions of the layers of notes sec. 4.2-4.3 and 8.6; experiments that
train use torch's fused kernels, and the tests check these against them (values and
gradients). All use the ``(N, C, H, W)`` layout and PyTorch's argument names.

Convolution by ``im2col``: every ``C_in/groups x kh x kw`` input patch becomes one column
(``F.unfold``), and the layer is one matrix product with the flattened kernels,

    out[n, o, i, j] = b[o] + sum_{c, k, l} w[o, c, k, l] x[n, c, s*i + d*k - p, s*j + d*l - p],

a cross-correlation (deep-learning convention; the notes' Definition 4.1.1 flips the kernel).
The output side length is (notes sec. 4.2.2, generalized to padding/stride/dilation)

    out = floor((in + 2 p - d (k - 1) - 1) / s) + 1,      = in - k + 1 for p = 0, s = d = 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Size2 = int | tuple[int, int]


def _pair(value: Size2, name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair  # type: ignore[return-value]


def _check_4d(x: torch.Tensor, name: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} expects a batch (N, C, H, W), got shape {tuple(x.shape)}")


def output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                dilation: int = 1) -> int:
    """Side length of a convolution or pooling output (formula in the module docstring).

    Raises ``ValueError`` when the (dilated) kernel does not fit in the padded input.
    """
    span = dilation * (kernel_size - 1) + 1
    if min(size, kernel_size, stride, dilation) < 1 or padding < 0:
        raise ValueError(f"need size, kernel_size, stride, dilation >= 1 and padding >= 0; got "
                         f"size={size}, kernel_size={kernel_size}, stride={stride}, "
                         f"padding={padding}, dilation={dilation}")
    if size + 2 * padding < span:
        raise ValueError(f"kernel of span {span} does not fit input {size} with padding "
                         f"{padding}")
    return (size + 2 * padding - span) // stride + 1


def transposed_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                           output_padding: int = 0, dilation: int = 1) -> int:
    """Side length of a transposed convolution: ``(in - 1) s - 2 p + d (k - 1) + op + 1``."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: Size2 = 1, padding: Size2 = 0, dilation: Size2 = 1,
           groups: int = 1) -> torch.Tensor:
    """2-D convolution (cross-correlation) as ``im2col`` + matrix product; see module docstring.

    Args:
        x: ``(N, C_in, H, W)``.
        weight: ``(C_out, C_in / groups, kh, kw)``.
        bias: ``(C_out,)`` or ``None``.
        stride, padding, dilation: ints or ``(h, w)`` pairs; padding adds zeros.
        groups: input and output channels split into this many independent groups.
    Returns:
        ``(N, C_out, H_out, W_out)``.
    """
    _check_4d(x, "conv2d")
    if weight.dim() != 4:
        raise ValueError(f"weight must be (C_out, C_in/groups, kh, kw), got {tuple(weight.shape)}")
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    dilation = _pair(dilation, "dilation", 1)
    n, c_in, h, w = x.shape
    c_out, c_group, kh, kw = weight.shape
    if groups < 1 or c_in % groups or c_out % groups or c_in // groups != c_group:
        raise ValueError(f"with groups={groups}, x has {c_in} channels and weight expects "
                         f"{c_group} per group for {c_out} outputs; need C_in = groups * "
                         f"{c_group} and C_out divisible by groups")
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},), got {tuple(bias.shape)}")
    h_out = output_size(h, kh, stride[0], padding[0], dilation[0])
    w_out = output_size(w, kw, stride[1], padding[1], dilation[1])
    cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    cols = cols.view(n, groups, c_group * kh * kw, h_out * w_out)  # (N, G, C/G*kh*kw, L)
    kernels = weight.reshape(groups, c_out // groups, c_group * kh * kw)  # (G, O/G, C/G*kh*kw)
    out = torch.einsum("gok,ngkl->ngol", kernels, cols).reshape(n, c_out, h_out, w_out)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out


def _windows(x: torch.Tensor, kernel_size: tuple[int, int], stride: tuple[int, int],
             padding: tuple[int, int], fill: float) -> tuple[torch.Tensor, int, int]:
    """Every pooling window of every channel: ``(N, C, kh*kw, H_out*W_out)``."""
    n, c, h, w = x.shape
    (kh, kw), (ph, pw) = kernel_size, padding
    h_out = output_size(h, kh, stride[0], ph)
    w_out = output_size(w, kw, stride[1], pw)
    padded = F.pad(x, (pw, pw, ph, ph), value=fill)
    cols = F.unfold(padded.reshape(n * c, 1, h + 2 * ph, w + 2 * pw), kernel_size, stride=stride)
    return cols.view(n, c, kh * kw, h_out * w_out), h_out, w_out


def _pool_args(x, kernel_size, stride, padding, name):
    _check_4d(x, name)
    kernel = _pair(kernel_size, "kernel_size", 1)
    step = kernel if stride is None else _pair(stride, "stride", 1)
    pad = _pair(padding, "padding", 0)
    if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        raise ValueError(f"padding {pad} must be at most half the kernel {kernel}")
    return kernel, step, pad


def max_pool2d(x: torch.Tensor, kernel_size: Size2, stride: Size2 | None = None,
               padding: Size2 = 0) -> torch.Tensor:
    """Max pooling (notes sec. 4.2.3): the largest value in each window.

    Padding is ``-inf`` so it never wins. The gradient flows to the arg-max only; among tied
    values (flat image regions) to the first in raster order, as torch does.

    Args:
        x: ``(N, C, H, W)``.
        kernel_size: window; stride defaults to it (non-overlapping windows).
    Returns:
        ``(N, C, H_out, W_out)``.
    """
    kernel, step, pad = _pool_args(x, kernel_size, stride, padding, "max_pool2d")
    cols, h_out, w_out = _windows(x, kernel, step, pad, float("-inf"))
    # max(dim) (not amax, which splits the gradient among ties) picks the first maximum.
    return cols.max(dim=2).values.view(x.shape[0], x.shape[1], h_out, w_out)


def avg_pool2d(x: torch.Tensor, kernel_size: Size2, stride: Size2 | None = None,
               padding: Size2 = 0, count_include_pad: bool = True) -> torch.Tensor:
    """Average pooling (notes sec. 4.2.3): the mean of each window.

    Args:
        x: ``(N, C, H, W)``.
        kernel_size: window; stride defaults to it.
        count_include_pad: divide by the window size (zeros of the padding count), as torch
            does by default; else by the number of real pixels in the window.
    Returns:
        ``(N, C, H_out, W_out)``.
    """
    kernel, step, pad = _pool_args(x, kernel_size, stride, padding, "avg_pool2d")
    cols, h_out, w_out = _windows(x, kernel, step, pad, 0.0)
    total = cols.sum(dim=2)  # (N, C, L)
    if count_include_pad:
        mean = total / (kernel[0] * kernel[1])
    else:
        ones = torch.ones(1, 1, *x.shape[2:], dtype=x.dtype, device=x.device)
        counts, _, _ = _windows(ones, kernel, step, pad, 0.0)
        mean = total / counts.sum(dim=2)
    return mean.view(x.shape[0], x.shape[1], h_out, w_out)


def local_response_norm(x: torch.Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> torch.Tensor:
    """Local response normalization across channels (notes sec. 4.3; Krizhevsky et al. 2012).

        b_c = a_c / (k + alpha / size * sum_{c' in window(c)} a_{c'}^2) ** beta,

    the window being ``size`` neighbouring channels ``c - size//2 .. c + (size-1)//2``
    (missing channels count as zero). The notes write the sum without the square; the square
    keeps the base positive, and ``alpha / size`` is torch's scaling (the paper uses
    ``alpha`` alone). See ``docs/ERRATA.md``.

    Args:
        x: ``(N, C, ...)`` with at least one dimension after the channels.
        size: number of channels in each window.
    Returns:
        same shape as ``x``.
    """
    if x.dim() < 3:
        raise ValueError(f"local_response_norm expects (N, C, ...) with >= 3 dims, got "
                         f"{tuple(x.shape)}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    squares = x.pow(2)
    pad = [0, 0] * (x.dim() - 2) + [size // 2, (size - 1) // 2]
    padded = F.pad(squares, pad)  # zero channels before and after
    window_sum = padded.unfold(1, size, 1).sum(-1)  # (N, C, ...): sum over each channel window
    return x / (k + alpha / size * window_sum).pow(beta)


def conv_transpose2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                     stride: Size2 = 1, padding: Size2 = 0, output_padding: Size2 = 0,
                     dilation: Size2 = 1) -> torch.Tensor:
    """Transposed convolution (notes sec. 8.6): each input pixel paints a scaled kernel copy.

    Input pixel ``(i, j)`` adds ``x[i, j] * w`` to the output window whose corner is
    ``(s*i, s*j)``; overlapping copies add up. That is ``col2im`` (``F.fold``) of the products,
    the adjoint of :func:`conv2d`'s ``im2col``; ``padding`` then crops each border.

    Args:
        x: ``(N, C_in, H, W)``.
        weight: ``(C_in, C_out, kh, kw)`` (torch's layout for transposed convolution).
        bias: ``(C_out,)`` or ``None``.
        stride, padding, output_padding, dilation: ints or pairs.
    Returns:
        ``(N, C_out, H_out, W_out)``, sizes from :func:`transposed_output_size`.
    """
    _check_4d(x, "conv_transpose2d")
    if weight.dim() != 4 or weight.shape[0] != x.shape[1]:
        raise ValueError(f"weight must be (C_in={x.shape[1]}, C_out, kh, kw), got "
                         f"{tuple(weight.shape)}")
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    output_padding, dilation = _pair(output_padding, "output_padding", 0), _pair(
        dilation, "dilation", 1)
    n, c_in, h, w = x.shape
    _, c_out, kh, kw = weight.shape
    # Products of every input pixel with every kernel entry: (N, C_out*kh*kw, H*W).
    cols = torch.einsum("nci,cm->nmi", x.reshape(n, c_in, h * w),
                        weight.reshape(c_in, c_out * kh * kw))
    full = [transposed_output_size(size, k, s, 0, op, d) for size, k, s, op, d in
            zip((h, w), (kh, kw), stride, output_padding, dilation, strict=True)]
    out = F.fold(cols, output_size=full, kernel_size=(kh, kw), dilation=dilation, stride=stride)
    out = out[:, :, padding[0]:full[0] - padding[0], padding[1]:full[1] - padding[1]]
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out
