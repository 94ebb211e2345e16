"""Knowledge distillation losses (notes sec. 8.3; Hinton, Vinyals & Dean 2015).

A teacher's logits ``v`` and a student's logits ``z`` are softened at temperature ``T``,

    p_i = softmax(v / T)_i,    q_i = softmax(z / T)_i,

and the student is trained towards ``p`` (the *soft targets*). The soft loss here is

    L_soft = T^2 KL(p || q) = T^2 sum_i p_i (log p_i - log q_i),

Hinton et al.'s cross-entropy ``-T^2 sum_i p_i log q_i`` less the teacher's entropy (a
constant in ``z``: the same gradient, and 0 when the student matches the teacher). Its
gradient with respect to one example's student logits is

    dL_soft / dz_i = T (q_i - p_i),

and the ``T^2`` is there so that this stays about the same size whatever ``T`` is: without
it the gradient shrinks as ``1 / T^2``. For ``T`` large against the logits, and logits of
zero mean over the ``K`` classes, ``q_i ~ (1 + z_i / T) / K``, so

    dL_soft / dz_i -> (z_i - v_i) / K,

the gradient of ``||z - v||^2 / (2K)``: at high temperature distillation is matching the
logits (Hinton et al. sec. 2.1; Caruana's logit regression).

The *mixed* loss of Fig. 8.1 adds the student's ordinary cross-entropy on hard targets,

    L = alpha L_soft + (1 - alpha) CE(z, y),

with ``y`` the true labels (Hinton et al.), or the teacher's argmax (the notes' "hard
distillation": classify and misclassify as the teacher does).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

HARD_TARGETS = ("labels", "teacher")


class DistillationLoss(NamedTuple):
    """The mixed loss and its two parts (each a scalar tensor)."""

    total: torch.Tensor
    soft: torch.Tensor
    hard: torch.Tensor


def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                  temperature: float) -> None:
    if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits must both be (N, K), got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     temperature: float, scale_by_t2: bool = True,
                     reduction: str = "mean") -> torch.Tensor:
    """``T^2 KL(softmax(v/T) || softmax(z/T))``, averaged (or summed) over the batch.

    Args:
        student_logits: ``z``, ``(N, K)``.
        teacher_logits: ``v``, ``(N, K)``; no gradient flows into them.
        temperature: ``T > 0``.
        scale_by_t2: multiply by ``T^2`` (Hinton et al.); ``False`` gives the plain KL, whose
            gradient falls as ``1 / T^2`` (for comparison).
        reduction: ``"mean"`` (over examples) or ``"sum"``.
    Returns:
        A scalar tensor.
    """
    _check_logits(student_logits, teacher_logits, temperature)
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    log_q = F.log_softmax(student_logits / temperature, dim=1)  # (N, K)
    log_p = F.log_softmax(teacher_logits.detach() / temperature, dim=1)  # (N, K)
    per_example = (log_p.exp() * (log_p - log_q)).sum(dim=1)  # (N,)
    loss = per_example.mean() if reduction == "mean" else per_example.sum()
    return loss * temperature ** 2 if scale_by_t2 else loss


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor | None, temperature: float, alpha: float,
                      hard_targets: str = "labels") -> DistillationLoss:
    """The mixed loss ``alpha L_soft + (1 - alpha) CE(z, y)`` of Fig. 8.1.

    Args:
        student_logits, teacher_logits: ``(N, K)``.
        labels: true classes ``(N,)`` (int64); may be ``None`` with ``hard_targets="teacher"``.
        temperature: ``T`` of the soft part (the hard part is at ``T = 1``).
        alpha: weight of the soft part, in ``[0, 1]``.
        hard_targets: ``"labels"`` (the true labels, Hinton et al.) or ``"teacher"`` (the
            teacher's argmax: hard distillation).
    Returns:
        :class:`DistillationLoss` ``(total, soft, hard)``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if hard_targets not in HARD_TARGETS:
        raise ValueError(f"hard_targets must be one of {HARD_TARGETS}, got {hard_targets!r}")
    soft = soft_target_loss(student_logits, teacher_logits, temperature)
    if hard_targets == "teacher":
        targets = teacher_logits.detach().argmax(dim=1)
    else:
        if labels is None or labels.shape != student_logits.shape[:1]:
            got = None if labels is None else tuple(labels.shape)
            raise ValueError(f"labels must be ({student_logits.shape[0]},) class indices, "
                             f"got {got}")
        targets = labels
    hard = F.cross_entropy(student_logits, targets)
    return DistillationLoss(alpha * soft + (1.0 - alpha) * hard, soft, hard)


def soft_gradient_norm(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       temperature: float, scale_by_t2: bool = True) -> torch.Tensor:
    """Per-example norm of ``dL_soft / dz``, ``(N,)``, from the closed form
    ``T^a (q - p) / T`` with ``a = 2`` (scaled) or ``0`` (plain KL); tested against autograd."""
    _check_logits(student_logits, teacher_logits, temperature)
    q = torch.softmax(student_logits / temperature, dim=1)
    p = torch.softmax(teacher_logits / temperature, dim=1)
    scale = temperature if scale_by_t2 else 1.0 / temperature
    return (scale * (q - p)).norm(dim=1)


__all__ = ["HARD_TARGETS", "DistillationLoss", "soft_target_loss", "distillation_loss",
           "soft_gradient_norm"]
