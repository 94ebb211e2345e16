"""Deterministic auto-encoders of notes 7.1: undercomplete (MLP and convolutional), sparse,
contractive and denoising.

    h = E(x),   x^ = D(h),   minimize over theta_E, theta_D:  1/N sum_i ||D(E(x_i)) - x_i||^2

(the mean is over the data set; the notes' Def. 7.1.1 also minimizes over the input I, which
is solved by any fixed point of any AE: see docs/ERRATA.md, 7.1). Without a constraint the
identity D o E = I solves it (remark R of 7.1); what keeps an auto-encoder from copying:

* a bottleneck: a code smaller than the input (:class:`MLPAutoEncoder`, :class:`ConvAutoEncoder`);
* a sparsity penalty on the codes: ``lambda ||h||_1`` (:func:`l1_sparsity`, the notes'
  Phi), or ``beta sum_j KL(rho || rho^_j)`` toward a target activation rate ``rho``
  (:func:`kl_sparsity`; Ng's sparse auto-encoder notes);
* the contractive penalty ``lambda ||J_E(x)||_F^2``, ``J_E = dh/dx`` (Rifai et al. 2011). For
  one sigmoid layer ``h = sigmoid(W x + b)``, ``dh_j/dx_i = h_j (1 - h_j) W_ji`` and

      ||J_E(x)||_F^2 = sum_j (h_j (1 - h_j))^2 ||W_j||^2      (W_j: row j of W)

  (:func:`sigmoid_jacobian_frobenius_sq`; :func:`jacobian_frobenius_sq` is the autograd form
  for any encoder);
* denoising (Vincent et al. 2008): reconstruct the clean ``x`` from a corrupted copy,
  ``||D(E(x~)) - x||^2`` with ``x~ = x + eta``, ``eta ~ N(0, sigma^2)`` (the notes'), or
  masking noise (each pixel set to 0 with probability ``p``).

:func:`linear_probe_accuracy` is the one fixed recipe that scores a representation (pixels
or codes) by how well a softmax regression on it classifies. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.nn import MLP
from deepnotes.nn.activations import get_activation


class AEOutput(NamedTuple):
    code: torch.Tensor  # (N, code_features)
    reconstruction: torch.Tensor  # (N, in_features) for the MLP; (N, 1, 28, 28) for the conv


class MLPAutoEncoder(nn.Module):
    """``x -> h = E(x) -> x^ = D(h)`` with MLP encoder and decoder.

    Args:
        in_features: input width (784 for flattened 28x28 images).
        code_features: code width; below ``in_features`` it is a bottleneck (undercomplete),
            above it overcomplete.
        hidden: widths of the encoder's hidden layers (the decoder mirrors them).
        activation: hidden non-linearity of both MLPs.
        code_activation: applied to the code (``"sigmoid"`` for the contractive closed form
            and the KL sparsity; ``"identity"`` for a linear AE).
        output_activation: applied to the reconstruction (``"sigmoid"`` for pixels in [0, 1]).
        tied: the decoder's weight is the encoder's transposed, ``x^ = phi(W^T h + c)``
            (Rifai et al.: without it the contractive penalty is met by shrinking ``W`` and
            growing the decoder); needs ``hidden=()``.
        bias: biases in every layer.
        fused: torch's fused activation kernels (same functions, see :class:`deepnotes.nn.MLP`).
    Shapes: ``(N, in_features) -> AEOutput(code (N, code_features), reconstruction
        (N, in_features))``.
    """

    def __init__(self, in_features: int = 784, code_features: int = 64,
                 hidden: Sequence[int] = (), activation: str = "relu",
                 code_activation: str = "sigmoid", output_activation: str = "sigmoid",
                 tied: bool = False, bias: bool = True, fused: bool = False) -> None:
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        if tied and hidden:
            raise ValueError(f"tied weights need a single layer (hidden=()), got {hidden}")
        self.in_features, self.code_features, self.hidden = in_features, code_features, hidden
        self.tied = tied
        self.encoder = MLP([in_features, *hidden, code_features], activation=activation,
                           output_activation=code_activation, bias=bias, fused=fused)
        if tied:
            self.decoder = None
            self.decoder_bias = nn.Parameter(torch.zeros(in_features)) if bias else None
            phi_out = get_activation(output_activation)
            self._phi_out = phi_out.kernel if fused else phi_out.fn
        else:
            self.decoder = MLP([code_features, *reversed(hidden), in_features],
                               activation=activation, output_activation=output_activation,
                               bias=bias, fused=fused)
        self.architecture = {"in_features": in_features, "code_features": code_features,
                             "hidden": list(hidden), "activation": activation,
                             "code_activation": code_activation,
                             "output_activation": output_activation, "tied": tied,
                             "bias": bias, "fused": fused}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (N, code)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        if self.decoder is not None:
            return self.decoder(h)
        weight = self.encoder.linears[0].weight  # (code, in): decode with W^T
        return self._phi_out(F.linear(h, weight.t(), self.decoder_bias))  # (N, in)

    def forward(self, x: torch.Tensor) -> AEOutput:
        h = self.encode(x)
        return AEOutput(h, self.decode(h))


class ConvAutoEncoder(nn.Module):
    """Convolutional undercomplete auto-encoder for ``(N, 1, 28, 28)`` images.

    Encoder: conv 3x3 stride 2 (1 -> c, 28 -> 14), ReLU, conv 3x3 stride 2 (c -> 2c, 14 -> 7),
    ReLU, linear ``2c*7*7 -> code_features``; the decoder mirrors it with transposed
    convolutions and ends in a sigmoid (pixels in [0, 1]).
    """

    def __init__(self, code_features: int = 32, channels: int = 16) -> None:
        super().__init__()
        c = channels
        self.code_features, self.channels = code_features, channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 3, stride=2, padding=1), nn.ReLU(),  # (N, c, 14, 14)
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ReLU(),  # (N, 2c, 7, 7)
            nn.Flatten(), nn.Linear(2 * c * 49, code_features))  # (N, code)
        self.decoder = nn.Sequential(
            nn.Linear(code_features, 2 * c * 49), nn.ReLU(), nn.Unflatten(1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),  # (N, c, 14, 14)
            nn.ConvTranspose2d(c, 1, 3, stride=2, padding=1, output_padding=1),
            nn.Sigmoid())  # (N, 1, 28, 28)
        self.architecture = {"code_features": code_features, "channels": channels}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"ConvAutoEncoder expects (N, 1, 28, 28), got {tuple(x.shape)}")
        return self.encoder(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> AEOutput:
        h = self.encode(x)
        return AEOutput(h, self.decode(h))


def pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 images ``(N, 28, 28)`` -> grey levels ``(N, 784)`` in [0, 1]."""
    return images.reshape(len(images), -1).float().div_(255.0)


def fraction_unexplained(reconstruction: torch.Tensor, x: torch.Tensor) -> float:
    """``sum ||x^ - x||^2 / sum ||x - mean(x)||^2`` (per-feature mean over the set): 0 for a
    perfect copy, 1 for predicting the mean image."""
    return float((reconstruction - x).double().square().sum()
                 / (x.double() - x.double().mean(0)).square().sum())


# ----------------------------------------------------------------- losses and penalties
def reconstruction_mse(reconstruction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, averaged over the batch (a scalar), the loss of 7.1."""
    if reconstruction.shape != x.shape:
        raise ValueError(f"reconstruction {tuple(reconstruction.shape)} and target "
                         f"{tuple(x.shape)} differ in shape")
    return (reconstruction - x).square().mean()


def l1_sparsity(code: torch.Tensor) -> torch.Tensor:
    """The notes' ``Phi[E[I]] = ||E[I]||_1``: ``(N, code) -> (N,)``."""
    return code.abs().sum(-1)


def kl_sparsity(code: torch.Tensor, rho: float, eps: float = 1e-6) -> torch.Tensor:
    """``sum_j KL(Bernoulli(rho) || Bernoulli(rho^_j))``, ``rho^_j`` the mean activation of
    unit ``j`` over the batch: a scalar, 0 iff every unit fires at rate ``rho``.

    Args:
        code: ``(N, code)`` activations in [0, 1] (a sigmoid code).
        rho: target rate in (0, 1).
    """
    if not 0.0 < rho < 1.0:
        raise ValueError(f"target activation rate rho must be in (0, 1), got {rho}")
    if code.min() < 0 or code.max() > 1:
        raise ValueError("kl_sparsity needs activations in [0, 1] (a sigmoid code), got "
                         f"range [{float(code.min()):.3g}, {float(code.max()):.3g}]")
    rho_hat = code.mean(0).clamp(eps, 1 - eps)  # (code,)
    return (rho * torch.log(rho / rho_hat)
            + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def sigmoid_jacobian_frobenius_sq(code: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``||dh/dx||_F^2 = sum_j (h_j (1 - h_j))^2 ||W_j||^2`` for ``h = sigmoid(W x + b)``.

    Args:
        code: ``h``, ``(N, code)``.
        weight: ``W``, ``(code, in)``.
    Returns:
        ``(N,)``, one squared Frobenius norm per sample.
    """
    if code.shape[-1] != weight.shape[0]:
        raise ValueError(f"code width {code.shape[-1]} != rows of W {weight.shape[0]}")
    return (code * (1 - code)).square() @ weight.square().sum(1)  # (N, code) @ (code,)


def jacobian_frobenius_sq(encoder: Callable[[torch.Tensor], torch.Tensor],
                          x: torch.Tensor) -> torch.Tensor:
    """``||dE(x)/dx||_F^2`` per sample by autograd (``torch.func.jacrev`` under ``vmap``);
    ``encoder`` maps ``(N, D) -> (N, code)``. Returns ``(N,)``."""
    def single(xi: torch.Tensor) -> torch.Tensor:
        return encoder(xi.unsqueeze(0)).squeeze(0)  # (code,)

    jac = torch.func.vmap(torch.func.jacrev(single))(x)  # (N, code, *x.shape[1:])
    return jac.square().flatten(1).sum(1)


# ----------------------------------------------------------------- corruptions
def mask_noise(x: torch.Tensor, p: float, generator: torch.Generator | None = None
               ) -> torch.Tensor:
    """Masking noise: each entry set to 0 independently with probability ``p``."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"masking probability p must be in [0, 1), got {p}")
    keep = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) >= p
    return x * keep


def gaussian_noise(x: torch.Tensor, sigma: float, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """``x + eta``, ``eta ~ N(0, sigma^2)`` entrywise (the notes' denoising corruption)."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    eta = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + sigma * eta


# ----------------------------------------------------------------- evaluation
@torch.no_grad()
def encode_all(model: nn.Module, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """Codes of ``x`` in eval mode, in batches: ``(N, ...) -> (N, code)``."""
    was_training = model.training
    model.eval()
    codes = torch.cat([model.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return codes


@torch.no_grad()
def reconstruct_all(model: nn.Module, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """``D(E(x))`` in eval mode, in batches."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch_size]).reconstruction
                     for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def linear_probe_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor,
                          test_features: torch.Tensor, test_labels: torch.Tensor,
                          steps: int = 300, lr: float = 0.05, weight_decay: float = 1e-4,
                          classes: int = 10) -> float:
    """Test accuracy of a softmax regression on fixed features, one recipe for every
    representation: features standardized with the training mean and std, weights from 0,
    ``steps`` full-batch Adam steps on cross-entropy + ``weight_decay/2 ||W||^2``. No
    randomness: the same features give the same number."""
    if train_features.dim() != 2 or test_features.shape[1:] != train_features.shape[1:]:
        raise ValueError(f"features must be (N, d) with one d; got {tuple(train_features.shape)}"
                         f" and {tuple(test_features.shape)}")
    with torch.no_grad():
        mean = train_features.mean(0)
        std = train_features.std(0).clamp_min(1e-6)  # constant pixels stay 0, not NaN
        a = ((train_features - mean) / std).float()
        b = ((test_features - mean) / std).float()
    with torch.enable_grad():
        weight = torch.zeros(a.shape[1], classes, requires_grad=True)
        bias = torch.zeros(classes, requires_grad=True)
        optimizer = torch.optim.Adam([weight, bias], lr=lr)
        for _ in range(steps):
            loss = (F.cross_entropy(a @ weight + bias, train_labels)
                    + 0.5 * weight_decay * weight.square().sum())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return float(((b @ weight + bias).argmax(1) == test_labels).float().mean())
