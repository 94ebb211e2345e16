"""``nn.Module`` wrappers of :mod:`deepnotes.conv.functional` (notes sec. 4.2-4.3).

Argument names and parameter shapes copy ``torch.nn`` (``in_channels``, ``kernel_size``,
``weight``, ``bias``...), so tests copy weights across and compare. Initialization follows
torch's default for ``nn.Conv2d`` (Kaiming-uniform with ``a = sqrt(5)``, bias uniform in
``+-1/sqrt(fan_in)``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepnotes.conv import functional as CF
from deepnotes.conv.functional import Size2, _pair


class Conv2d(nn.Module):
    """2-D convolution layer: ``C_out`` learned kernels of size ``C_in/groups x kh x kw``.

    A fully connected map between ``H x W`` images needs ``(HW)^2`` weights; this one needs
    ``C_out * C_in / groups * kh * kw`` shared by every output position (notes sec. 4.2.1).

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, padding, dilation: ints or pairs.
        groups: channel groups.
        bias: learn a bias per output channel.
    Shape:
        ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Size2,
                 stride: Size2 = 1, padding: Size2 = 0, dilation: Size2 = 1, groups: int = 1,
                 bias: bool = True) -> None:
        super().__init__()
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels={in_channels} and out_channels={out_channels} must "
                             f"both be divisible by groups={groups}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride, self.padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
        self.dilation, self.groups = _pair(dilation, "dilation", 1), groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups,
                                               *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d expects (N, {self.in_channels}, H, W), got "
                             f"{tuple(x.shape)}")
        return CF.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                         self.groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={self.bias is not None}")


class MaxPool2d(nn.Module):
    """Max pooling over ``kernel_size`` windows (stride defaults to the window)."""

    def __init__(self, kernel_size: Size2, stride: Size2 | None = None,
                 padding: Size2 = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return CF.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(nn.Module):
    """Average pooling over ``kernel_size`` windows (stride defaults to the window)."""

    def __init__(self, kernel_size: Size2, stride: Size2 | None = None, padding: Size2 = 0,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.count_include_pad = count_include_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return CF.avg_pool2d(x, self.kernel_size, self.stride, self.padding,
                             self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class LocalResponseNorm(nn.Module):
    """Local response normalization across ``size`` neighbouring channels (notes sec. 4.3).

    ``b_c = a_c / (k + alpha/size * sum_{window} a^2) ** beta``; see
    :func:`deepnotes.conv.functional.local_response_norm`.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1.0) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return CF.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class ConvTranspose2d(nn.Module):
    """Transposed convolution (notes sec. 8.6), weight ``(C_in, C_out, kh, kw)`` as in torch."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Size2,
                 stride: Size2 = 1, padding: Size2 = 0, output_padding: Size2 = 0,
                 bias: bool = True, dilation: Size2 = 1) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride, self.padding = stride, padding
        self.output_padding, self.dilation = output_padding, dilation
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return CF.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                   self.output_padding, self.dilation)
