"""Batch normalization (notes sec. 2.6.1; Ioffe & Szegedy 2015), written out.

Training mode, per feature/channel ``k`` over the mini-batch ``B`` (and spatial positions):

    mu_B = 1/m sum_i x_i,    sigma_B^2 = 1/m sum_i (x_i - mu_B)^2          (biased)
    x^_i = (x_i - mu_B) / sqrt(sigma_B^2 + eps),     BN(x_i) = gamma x^_i + beta

and the running estimates used in eval mode are updated with the *unbiased* variance:

    running_mean <- (1 - momentum) running_mean + momentum mu_B
    running_var  <- (1 - momentum) running_var  + momentum sigma_B^2 m / (m - 1)

(``momentum=None``: a cumulative average, ``momentum = 1 / num_batches_tracked``). Eval mode
normalizes with the running estimates, so an example's output no longer depends on its batch.
Argument, parameter and buffer names are torch's (``weight`` = gamma, ``bias`` = beta), so
``load_state_dict`` works in both directions.

Erratum (sec. 2.6.1): the notes divide by ``sqrt(sigma_B^2)``; without the ``eps`` a feature
that is constant over the batch gives ``0 / 0 = NaN``. Decided by
``tests/test_nn_normalization.py::test_eps_is_needed_for_a_constant_feature``.
"""

from __future__ import annotations

import torch
from torch import nn


class _BatchNorm(nn.Module):
    """Shared implementation; subclasses fix the accepted input ranks."""

    _ranks: tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1] or None, got {momentum}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        factory = {"device": device, "dtype": dtype}
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, **factory))  # gamma
            self.bias = nn.Parameter(torch.zeros(num_features, **factory))  # beta
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
            self.register_buffer("num_batches_tracked",
                                 torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() not in self._ranks or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) expects input of shape "
                             f"{self._layout} with C={self.num_features}, got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        dims = [d for d in range(x.dim()) if d != 1]  # all but the channel dimension
        shape = [1, self.num_features] + [1] * (x.dim() - 2)  # broadcast (C,) over x
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            m = x.numel() // self.num_features  # values per channel
            if self.training and m < 2:
                raise ValueError(f"{type(self).__name__} in training mode needs more than one "
                                 f"value per channel, got input of shape {tuple(x.shape)}")
            mu = x.mean(dim=dims)  # (C,)
            var = x.var(dim=dims, correction=0)  # (C,), biased: used to normalize
            if self.training and self.track_running_stats:
                self._update_running_stats(mu, var, m)
        else:
            mu, var = self.running_mean, self.running_var
        x_hat = (x - mu.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            return x_hat * self.weight.view(shape) + self.bias.view(shape)
        return x_hat

    @torch.no_grad()
    def _update_running_stats(self, mu: torch.Tensor, var: torch.Tensor, m: int) -> None:
        self.num_batches_tracked += 1
        factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                  else self.momentum)
        unbiased = var * (m / (m - 1))
        self.running_mean.mul_(1 - factor).add_(factor * mu)
        self.running_var.mul_(1 - factor).add_(factor * unbiased)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization over ``(N, C)`` or ``(N, C, L)`` inputs (statistics per ``C``).

    Args:
        num_features: ``C``.
        eps: added to the variance before the square root.
        momentum: weight of the new batch in the running estimates (``None``: cumulative).
        affine: learn ``gamma`` (``weight``) and ``beta`` (``bias``).
        track_running_stats: keep running estimates and use them in eval mode; if False,
            batch statistics are used in both modes.
    """

    _ranks = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization over ``(N, C, H, W)`` images (statistics per channel ``C`` over N,H,W).

    Args: as :class:`BatchNorm1d`.
    """

    _ranks = (4,)
    _layout = "(N, C, H, W)"


__all__ = ["BatchNorm1d", "BatchNorm2d"]
