"""Loss functions of notes sec. 2.4 (natural logarithms, like torch).

    l2:          ER = 1/m sum_i ||N(x_i) - y_i||_2^2                         (sec. 2.4.1)
    0-1:         L01 = 1/m sum_i 1[h(x_i) != y_i]                            (Def. 2.4.2)
    binary CE:   -1/m sum_i [y_i log s(z_i) + (1 - y_i) log(1 - s(z_i))],  s = sigmoid
    multi-class: -1/m sum_i sum_c y_i^c log softmax(z_i)_c                  (Def. 2.4.3)

Erratum (Def. 2.4.2): the notes write the indicator as ``1(h(x_i) = y_i)``, which counts the
*correct* predictions (that is the accuracy, maximal for a perfect classifier); the loss counts
mistakes, ``1(h(x_i) != y_i)``. Decided by ``tests/test_nn_losses.py::
test_zero_one_loss_counts_mistakes_not_hits``.

Erratum (Def. 2.4.3): the target in the cross-entropy is the true label ``y_i`` (one-hot
``y_i^c``), not the network output ``\\hat y_i`` as written; ``h(x_i)`` is the network's
probability. The sums are also averaged (1/m) here, as in the empirical risk of Def. 2.4.1.

The cross-entropies take **logits** ``z`` and never form ``sigmoid(z)``/``softmax(z)``, so
they stay finite for any finite logits.
"""

from __future__ import annotations

import torch

from deepnotes.nn.activations import log_softmax

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    return per_example


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def l2_loss(prediction: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
            ) -> torch.Tensor:
    """Squared Euclidean error per example, ``||prediction_i - target_i||^2``, averaged.

    Args:
        prediction: ``(N,)`` or ``(N, D)``.
        target: same shape.
        reduction: ``mean`` over examples (the notes' ER), ``sum``, or ``none`` -> ``(N,)``.
    Note:
        ``torch.nn.functional.mse_loss`` averages over all N*D entries; this is D times it.
    """
    _check_reduction(reduction)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction and target must have the same shape, got "
                         f"{tuple(prediction.shape)} and {tuple(target.shape)}")
    if prediction.dim() == 0:
        raise ValueError("l2_loss needs a batch dimension, got scalars")
    diff = (prediction - target).reshape(prediction.shape[0], -1)  # (N, D)
    return _reduce((diff * diff).sum(dim=1), reduction)


def zero_one_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Misclassification rate ``1/m sum 1[h(x_i) != y_i]`` (Def. 2.4.2, corrected).

    Args:
        predicted: ``(N,)`` predicted labels (e.g. ``logits.argmax(1)`` or ``sign(score)``).
        target: ``(N,)`` true labels.
    Returns:
        scalar in ``[0, 1]`` (float); not differentiable, which is why training uses CE.
    """
    if predicted.shape != target.shape or predicted.dim() != 1:
        raise ValueError(f"predicted and target must both be label vectors of shape (N,), got "
                         f"{tuple(predicted.shape)} and {tuple(target.shape)}")
    if predicted.numel() == 0:
        raise ValueError("zero_one_loss of an empty batch is undefined")
    return (predicted != target).double().mean()


def binary_cross_entropy_with_logits(logits: torch.Tensor, target: torch.Tensor,
                                     reduction: str = "mean") -> torch.Tensor:
    """Binary cross-entropy of ``sigmoid(logits)`` against targets in ``[0, 1]``.

    Uses ``-[y log s(z) + (1-y) log(1 - s(z))] = softplus(z) - y z`` with the stable
    ``softplus(z) = max(z, 0) + log(1 + exp(-|z|))``.

    Args:
        logits: ``(N,)`` or ``(N, ...)`` real scores.
        target: same shape, values in ``[0, 1]`` (labels 0/1 or soft targets).
        reduction: ``mean`` / ``sum`` over all entries, or ``none``.
    """
    _check_reduction(reduction)
    if logits.shape != target.shape:
        raise ValueError(f"logits and target must have the same shape, got "
                         f"{tuple(logits.shape)} and {tuple(target.shape)}")
    target = target.to(logits.dtype)
    if ((target < 0) | (target > 1)).any():
        raise ValueError("binary cross-entropy targets must lie in [0, 1] (labels 0/1); "
                         "got values outside; map labels -1/+1 with (y + 1) / 2")
    # max(z, 0) and -|z| written with `where` so that autograd's derivative at z = 0 is 1/2.
    positive = logits >= 0
    zero = torch.zeros((), dtype=logits.dtype, device=logits.device)
    softplus = (torch.where(positive, logits, zero)
                + torch.log1p(torch.exp(torch.where(positive, -logits, logits))))
    return _reduce(softplus - target * logits, reduction)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
                  ) -> torch.Tensor:
    """Multi-class cross-entropy of ``softmax(logits)`` (Def. 2.4.3, averaged over examples).

    Args:
        logits: ``(N, C)`` scores.
        target: ``(N,)`` class indices in ``[0, C)``, or ``(N, C)`` target probabilities.
        reduction: ``mean`` / ``sum`` over examples, or ``none`` -> ``(N,)``.
    """
    _check_reduction(reduction)
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (N, C), got {tuple(logits.shape)}")
    log_q = log_softmax(logits, dim=1)  # (N, C)
    if target.dim() == 1 and not target.is_floating_point():
        if target.shape[0] != logits.shape[0]:
            raise ValueError(f"{target.shape[0]} labels for {logits.shape[0]} rows of logits")
        if target.numel() and (target.min() < 0 or target.max() >= logits.shape[1]):
            raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got "
                             f"[{target.min().item()}, {target.max().item()}]")
        per_example = -log_q.gather(1, target.long()[:, None]).squeeze(1)
    elif target.shape == logits.shape:
        per_example = -(target.to(log_q.dtype) * log_q).sum(dim=1)
    else:
        raise ValueError(f"target must be (N,) integer labels or (N, C) probabilities matching "
                         f"logits {tuple(logits.shape)}, got {tuple(target.shape)} "
                         f"({target.dtype})")
    return _reduce(per_example, reduction)


__all__ = ["l2_loss", "zero_one_loss", "binary_cross_entropy_with_logits", "cross_entropy"]
