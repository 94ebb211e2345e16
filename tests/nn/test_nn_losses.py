"""Losses of sec. 2.4 against torch (values and gradients), and the 0-1 loss erratum."""

import pytest
import torch
import torch.nn.functional as F

from deepnotes.nn import losses


def _grad(fn, x):
    x = x.clone().requires_grad_()
    out = fn(x)
    (g,) = torch.autograd.grad(out, x)
    return out.detach(), g


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_l2_loss_is_per_example_squared_norm(reduction):
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(6, 3, generator=g, dtype=torch.float64)
    y = torch.randn(6, 3, generator=g, dtype=torch.float64)
    ours, g_ours = _grad(lambda p: losses.l2_loss(p, y, reduction).sum(), pred)
    # torch's mse_loss averages over all 18 entries; the notes average over the 6 examples.
    ref_fn = {"mean": lambda p: F.mse_loss(p, y, reduction="sum") / 6,
              "sum": lambda p: F.mse_loss(p, y, reduction="sum"),
              "none": lambda p: F.mse_loss(p, y, reduction="none").sum()}[reduction]
    ref, g_ref = _grad(ref_fn, pred)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(g_ours, g_ref)
    assert losses.l2_loss(pred, y, "none").shape == (6,)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_parity_including_extreme_logits(reduction):
    z = torch.tensor([-1e4, -50.0, -3.0, 0.0, 2.5, 50.0, 1e4], dtype=torch.float64)
    y = torch.tensor([0.0, 1.0, 0.3, 1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    ours, g_ours = _grad(lambda t: losses.binary_cross_entropy_with_logits(
        t, y, reduction).sum(), z)
    ref, g_ref = _grad(lambda t: F.binary_cross_entropy_with_logits(
        t, y, reduction=reduction).sum(), z)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(g_ours, g_ref)
    assert torch.isfinite(ours).all()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_parity_labels_and_probabilities(reduction):
    g = torch.Generator().manual_seed(1)
    z = 20 * torch.randn(8, 5, generator=g, dtype=torch.float64)
    z[0, 0] = 1e4
    labels = torch.randint(0, 5, (8,), generator=g)
    probs = torch.softmax(torch.randn(8, 5, generator=g, dtype=torch.float64), 1)
    for target in (labels, probs):
        ours, g_ours = _grad(lambda t, tg=target: losses.cross_entropy(t, tg, reduction).sum(), z)
        ref, g_ref = _grad(lambda t, tg=target: F.cross_entropy(t, tg, reduction=reduction)
                           .sum(), z)
        torch.testing.assert_close(ours, ref)
        torch.testing.assert_close(g_ours, g_ref)


def test_binary_ce_is_the_notes_formula_with_labels_as_targets():
    # Def. 2.4.3 (corrected): -[y log h + (1 - y) log(1 - h)], h = sigmoid(z), y the TRUE label.
    z = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    h = torch.sigmoid(z)
    notes = -(y * torch.log(h) + (1 - y) * torch.log(1 - h)).mean()
    torch.testing.assert_close(losses.binary_cross_entropy_with_logits(z, y), notes)
    # The notes' hat-y (the network output) in the target slot is not a probability of the
    # label; the loss refuses targets outside [0, 1] rather than computing something else.
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        losses.binary_cross_entropy_with_logits(z, z)


def test_zero_one_loss_counts_mistakes_not_hits():
    """Erratum Def. 2.4.2: the indicator must be 1(h(x) != y)."""
    y = torch.tensor([0, 1, 2, 1, 0])
    perfect = y.clone()
    wrong = (y + 1) % 3
    notes = lambda h, t: (h == t).double().mean()  # noqa: E731 (the notes' formula as written)
    assert losses.zero_one_loss(perfect, y).item() == 0.0
    assert losses.zero_one_loss(wrong, y).item() == 1.0
    # The notes' version rates the perfect classifier worst: it is the accuracy, not a loss.
    assert notes(perfect, y).item() == 1.0 and notes(wrong, y).item() == 0.0
    half = torch.tensor([0, 1, 0, 0, 0])
    assert losses.zero_one_loss(half, y).item() == pytest.approx(2 / 5)


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="same shape"):
        losses.l2_loss(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        losses.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        losses.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="labels for"):
        losses.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="label vectors"):
        losses.zero_one_loss(torch.zeros(2, 3), torch.zeros(2, 3))
