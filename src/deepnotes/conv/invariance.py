"""Translations of images and the invariances of notes sec. 4.1 and 4.3.

* Equivariance: a map ``Phi`` is shift-equivariant when ``Phi(S_t x) = S_t Phi(x)``; a
  convolution with circular padding is exactly so, with zero padding only away from the border
  (the receptive field of a border output reaches the padding).
* Invariance: ``Phi(S_t x) = Phi(x)``; pooling and global averaging buy approximate invariance.
* Output normalizations (sec. 4.3): ``v / ||v||`` lands on the unit circle and is invariant to
  positive scaling; softmax lands in the open simplex and is invariant to adding a constant.
  Softmax is not the Euclidean projection onto the simplex (:func:`project_to_simplex`, Duchi
  et al. 2008), which is idempotent where softmax is not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_images(x: torch.Tensor, name: str) -> None:
    if x.dim() < 2:
        raise ValueError(f"{name} expects images (..., H, W), got shape {tuple(x.shape)}")


def roll_images(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Circular translation: ``out[..., i, j] = x[..., (i - dy) mod H, (j - dx) mod W]``."""
    _check_images(x, "roll_images")
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def shift_images(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Translation with zero fill: content moves by ``(dy, dx)``, uncovered pixels become 0.

    Args:
        x: ``(..., H, W)``, any dtype.
        dy, dx: shift down and right (negative: up and left), ``|dy| < H``, ``|dx| < W``.
    """
    _check_images(x, "shift_images")
    h, w = x.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        raise ValueError(f"shift ({dy}, {dx}) must be smaller than the image {h}x{w}")
    out = torch.zeros_like(x)
    src_rows = slice(max(0, -dy), h - max(0, dy))
    dst_rows = slice(max(0, dy), h - max(0, -dy))
    src_cols = slice(max(0, -dx), w - max(0, dx))
    dst_cols = slice(max(0, dx), w - max(0, -dx))
    out[..., dst_rows, dst_cols] = x[..., src_rows, src_cols]
    return out


def border_mask(h: int, w: int, margin: int, device=None) -> torch.Tensor:
    """Boolean ``(h, w)`` mask, True at least ``margin`` pixels from every edge."""
    if margin < 0 or 2 * margin >= min(h, w):
        raise ValueError(f"margin must be in [0, {min(h, w) // 2}), got {margin}")
    mask = torch.zeros(h, w, dtype=torch.bool, device=device)
    mask[margin:h - margin, margin:w - margin] = True
    return mask


def relative_error(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None
                   ) -> float:
    """``||a - b|| / ||b||`` over the positions where ``mask`` (broadcast on ``H, W``) holds."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    diff, ref = (a - b).double(), b.double()
    if mask is not None:
        diff, ref = diff[..., mask], ref[..., mask]
    return float(diff.norm() / ref.norm().clamp_min(1e-300))


def normalize_to_circle(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``v / ||v||`` along the last dimension (notes sec. 4.3): every ray maps to one point.

    Args:
        v: ``(..., d)``; rows with norm below ``eps`` raise (their direction is undefined).
    """
    norm = v.norm(dim=-1, keepdim=True)
    if bool((norm < eps).any()):
        raise ValueError("normalize_to_circle got a zero vector; its direction is undefined")
    return v / norm


def project_to_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each row onto ``{p : p >= 0, sum p = 1}`` (Duchi et al. 2008).

    ``p = max(v - tau, 0)`` with the threshold ``tau`` found from the sorted entries.

    Args:
        v: ``(..., d)``.
    Returns:
        ``(..., d)``.
    """
    if v.dim() < 1 or v.shape[-1] < 1:
        raise ValueError(f"expected (..., d) with d >= 1, got {tuple(v.shape)}")
    d = v.shape[-1]
    u, _ = torch.sort(v, dim=-1, descending=True)
    cumulative = u.cumsum(-1) - 1  # (..., d)
    ks = torch.arange(1, d + 1, dtype=v.dtype, device=v.device)
    support = u - cumulative / ks > 0  # True for the first rho entries
    rho = support.sum(-1, keepdim=True)  # (..., 1), >= 1
    tau = cumulative.gather(-1, rho - 1) / rho.to(v.dtype)
    return F.relu(v - tau)


DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))


@torch.no_grad()
def shift_agreement(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                    prepare, max_shift: int, batch_size: int = 500
                    ) -> dict[int, dict[str, float]]:
    """Prediction agreement and accuracy on images moved by ``s = 1..max_shift`` pixels.

    Each image is moved with zero fill (:func:`shift_images`) in the four axis directions;
    ``agreement`` is the fraction of (image, direction) pairs whose predicted class equals the
    prediction for the unmoved image.

    Args:
        model: a classifier of ``prepare(images)``.
        images, labels: ``(N, H, W)`` (uint8 or float) and ``(N,)``.
        prepare: the model's input conversion, e.g. standardize and add a channel axis.
        batch_size: images per forward pass (small batches: fewer page faults on a CPU).
    Returns:
        ``{s: {"agreement": ..., "accuracy": ...}}``, ``s = 0`` being the unmoved images.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device

    def predict(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([model(prepare(x[i:i + batch_size]).to(device)).argmax(1).cpu()
                          for i in range(0, len(x), batch_size)])

    base = predict(images)
    rows = {0: {"agreement": 1.0, "accuracy": (base == labels).float().mean().item()}}
    for s in range(1, max_shift + 1):
        agree, correct = [], []
        for dy, dx in DIRECTIONS:
            pred = predict(shift_images(images, s * dy, s * dx))
            agree.append((pred == base).float().mean().item())
            correct.append((pred == labels).float().mean().item())
        rows[s] = {"agreement": sum(agree) / len(agree), "accuracy": sum(correct) / len(correct)}
    model.train(was_training)
    return rows
