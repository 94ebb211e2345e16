"""Distillation losses (notes 8.3): values against the written-out formula, the closed-form
gradient, the T^2 scaling and its high-temperature limit (matching logits)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from deepnotes.nn.distillation import distillation_loss, soft_gradient_norm, soft_target_loss


def _logits(n=6, k=5, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g, dtype=torch.float64) * scale
    v = torch.randn(n, k, generator=g, dtype=torch.float64) * scale
    return z, v


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0, 20.0])
def test_soft_loss_is_t2_times_kl_written_out_per_example(temperature):
    z, v = _logits()
    direct = 0.0
    for zi, vi in zip(z.tolist(), v.tolist(), strict=True):
        p = [math.exp(a / temperature) for a in vi]
        q = [math.exp(a / temperature) for a in zi]
        p = [a / sum(p) for a in p]
        q = [a / sum(q) for a in q]
        direct += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    direct /= len(z)
    got = soft_target_loss(z, v, temperature)
    assert got.item() == pytest.approx(temperature ** 2 * direct, rel=1e-12)
    assert soft_target_loss(z, v, temperature, scale_by_t2=False).item() == pytest.approx(
        direct, rel=1e-12)
    assert soft_target_loss(z, v, temperature, reduction="sum").item() == pytest.approx(
        temperature ** 2 * direct * len(z), rel=1e-12)


def test_soft_loss_matches_torch_kl_div_and_cross_entropy_up_to_teacher_entropy():
    z, v = _logits()
    t = 3.0
    log_p = F.log_softmax(v / t, dim=1)
    kl = F.kl_div(F.log_softmax(z / t, dim=1), log_p, log_target=True, reduction="batchmean")
    assert soft_target_loss(z, v, t).item() == pytest.approx(t * t * kl.item(), rel=1e-12)
    ce = F.cross_entropy(z / t, log_p.exp())  # Hinton et al.'s soft cross-entropy
    entropy = -(log_p.exp() * log_p).sum(1).mean()
    assert soft_target_loss(z, v, t).item() == pytest.approx(t * t * (ce - entropy).item(),
                                                             rel=1e-12)
    assert soft_target_loss(v, v, t).item() == pytest.approx(0.0, abs=1e-14)


def test_soft_loss_gradient_is_t_times_q_minus_p_over_batch_and_gradchecks():
    z, v = _logits()
    t = 2.5
    z.requires_grad_(True)
    soft_target_loss(z, v, t).backward()
    q, p = torch.softmax(z.detach() / t, 1), torch.softmax(v / t, 1)
    assert torch.allclose(z.grad, t * (q - p) / len(z), rtol=1e-12, atol=1e-15)
    assert torch.allclose(soft_gradient_norm(z.detach(), v, t), (z.grad * len(z)).norm(dim=1),
                          rtol=1e-12)
    assert torch.autograd.gradcheck(lambda a: soft_target_loss(a, v, t),
                                    (z.detach().clone().requires_grad_(True),))


def test_teacher_logits_receive_no_gradient():
    z, v = _logits()
    v.requires_grad_(True)
    z.requires_grad_(True)
    soft_target_loss(z, v, 2.0).backward()
    assert v.grad is None and z.grad is not None


@pytest.mark.parametrize("temperature", [100.0, 1000.0])
def test_high_temperature_gradient_tends_to_logit_difference_over_classes(temperature):
    # Zero-mean logits: dL/dz -> (z - v) / K per example (Hinton et al. eq. 3 with T^2).
    z, v = _logits(k=7)
    z, v = z - z.mean(1, keepdim=True), v - v.mean(1, keepdim=True)
    z.requires_grad_(True)
    soft_target_loss(z, v, temperature, reduction="sum").backward()
    limit = (z.detach() - v) / z.shape[1]
    # The next term of the expansion is O(|z|^2 / T): the error falls as 1/T (here
    # err * T -> 2.37 for these logits, so the bound cannot hold at a fixed tolerance).
    err = ((z.grad - limit).norm() / limit.norm()).item()
    assert err < 4.0 / temperature
    # The loss itself tends to ||z - v||^2 / (2K) per example (logit matching).
    loss = soft_target_loss(z.detach(), v, temperature, reduction="sum").item()
    assert loss == pytest.approx(((z.detach() - v) ** 2).sum().item() / (2 * z.shape[1]),
                                 rel=1.0 / temperature)


def test_t2_keeps_gradient_magnitude_while_plain_kl_falls_as_one_over_t2():
    z, v = _logits(n=200, k=10, scale=2.0, seed=1)
    temps = [4.0, 8.0, 16.0, 32.0, 64.0]
    scaled = [soft_gradient_norm(z, v, t).mean().item() for t in temps]
    plain = [soft_gradient_norm(z, v, t, scale_by_t2=False).mean().item() for t in temps]
    assert max(scaled) / min(scaled) < 1.1
    for t, s, u in zip(temps, scaled, plain, strict=True):
        assert u == pytest.approx(s / t ** 2, rel=1e-12)


def test_mixed_loss_weights_soft_and_hard_parts_with_labels_or_teacher_argmax():
    z, v = _logits()
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    t, alpha = 4.0, 0.7
    out = distillation_loss(z, v, y, t, alpha)
    assert out.soft.item() == pytest.approx(soft_target_loss(z, v, t).item(), rel=1e-12)
    assert out.hard.item() == pytest.approx(F.cross_entropy(z, y).item(), rel=1e-12)
    assert out.total.item() == pytest.approx(alpha * out.soft.item()
                                             + (1 - alpha) * out.hard.item(), rel=1e-12)
    hard = distillation_loss(z, v, None, t, alpha, hard_targets="teacher")
    assert hard.hard.item() == pytest.approx(F.cross_entropy(z, v.argmax(1)).item(), rel=1e-12)
    assert distillation_loss(z, v, y, t, 1.0).total.item() == pytest.approx(out.soft.item())
    assert distillation_loss(z, v, y, t, 0.0).total.item() == pytest.approx(out.hard.item())


@pytest.mark.parametrize("call, match", [
    (lambda z, v, y: soft_target_loss(z, v[:, :3], 1.0), "logits"),
    (lambda z, v, y: soft_target_loss(z, v, 0.0), "temperature"),
    (lambda z, v, y: soft_target_loss(z, v, 1.0, reduction="none"), "reduction"),
    (lambda z, v, y: distillation_loss(z, v, y, 2.0, 1.5), "alpha"),
    (lambda z, v, y: distillation_loss(z, v, y, 2.0, 0.5, hard_targets="argmax"), "hard"),
    (lambda z, v, y: distillation_loss(z, v, None, 2.0, 0.5), "labels"),
])
def test_bad_inputs_raise_value_error_naming_the_problem(call, match):
    z, v = _logits()
    with pytest.raises(ValueError, match=match):
        call(z, v, torch.zeros(6, dtype=torch.long))
