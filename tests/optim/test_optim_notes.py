"""Where the notes' formulas differ from the standard ones: each test decides one erratum.

See docs/ERRATA.md. The default of every optimizer is the standard form (tested against
torch in test_optim.py); the notes' forms are explicit options, tested here to do what the
notes write.
"""

from __future__ import annotations

import math

import pytest
import torch

from deepnotes.optim import SGD, AdaGrad, Adam


# --------------------------------------------------------------------------- 9.3.1 momentum
def _quadratic_grad(theta):
    return theta.detach().clone()  # gradient of f = |theta|^2 / 2


def test_notes_two_line_momentum_equals_torch_form_for_constant_lr():
    a = torch.linspace(-1, 1, 7, dtype=torch.float64).requires_grad_()
    b = a.detach().clone().requires_grad_()
    ours_notes = SGD([a], lr=0.05, momentum=0.9, notes_velocity=True)
    reference = torch.optim.SGD([b], lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        noise = torch.randn(7, generator=g, dtype=torch.float64)
        a.grad, b.grad = _quadratic_grad(a) + noise, _quadratic_grad(b) + noise
        ours_notes.step()
        reference.step()
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_momentum_forms_differ_once_lr_changes():
    """Velocity in parameter units (notes) or gradient units (torch): a schedule splits them."""
    thetas = [torch.ones(3, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    opts = [SGD([thetas[0]], lr=0.1, momentum=0.9, notes_velocity=True),
            SGD([thetas[1]], lr=0.1, momentum=0.9)]
    for t in range(20):
        for theta, opt in zip(thetas, opts, strict=True):
            if t == 10:
                opt.param_groups[0]["lr"] = 0.01
            theta.grad = _quadratic_grad(theta)
            opt.step()
    assert (thetas[0] - thetas[1]).abs().max() > 1e-3


def test_notes_combined_momentum_line_climbs_the_loss():
    """'theta = theta - alpha*delta + eta*grad' (the notes' one-liner) ascends a convex bowl;
    the two-line form it claims to summarize, 'theta + alpha*delta - eta*grad', descends."""
    alpha, eta = 0.9, 0.05

    def run(sign):
        theta = torch.tensor([1.0, -2.0], dtype=torch.float64)
        delta = torch.zeros(2, dtype=torch.float64)
        for _ in range(100):
            new = theta + sign * (alpha * delta - eta * theta)  # grad of |theta|^2/2 is theta
            delta, theta = new - theta, new
        return 0.5 * theta.pow(2).sum().item()

    start = 0.5 * 5.0
    assert run(sign=-1) > 10 * start  # notes: both signs flipped -> the loss grows
    assert run(sign=+1) < start / 10  # the correct line
    # ... and the correct line is exactly the two-line recursion implemented by SGD.
    theta = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = SGD([theta], lr=eta, momentum=alpha, notes_velocity=True)
    for _ in range(100):
        theta.grad = _quadratic_grad(theta)
        opt.step()
    assert 0.5 * theta.detach().pow(2).sum().item() == pytest.approx(run(sign=+1), rel=1e-10)


# --------------------------------------------------------------------------- 9.3.3 AdaGrad
def _adagrad_effective_steps(make, grads):
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = make([theta])
    steps = []
    for g in grads:
        before = theta.detach().clone()
        theta.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        steps.append(((before - theta.detach()) / g).item())  # lr / (sqrt(G) + eps)
    return steps


GRADS = [5.0] + [0.1] * 20  # one large gradient, then small ones


def test_adagrad_effective_step_never_increases():
    """Duchi et al.: G sums all past squared gradients, so lr/(sqrt(G)+eps) is non-increasing."""
    steps = _adagrad_effective_steps(lambda p: AdaGrad(p, lr=0.1), GRADS)
    assert all(b <= a * (1 + 1e-12) for a, b in zip(steps, steps[1:], strict=False))
    assert steps[-1] == pytest.approx(0.1 / math.sqrt(25.0 + 20 * 0.01), rel=1e-9)


def test_notes_window_is_not_adagrad():
    """A window of t steps forgets the large gradient: the effective step jumps back up."""
    window = _adagrad_effective_steps(lambda p: AdaGrad(p, lr=0.1, window=5), GRADS)
    assert max(window[5:]) > 10 * window[4]
    # A window longer than the run is the full sum, i.e. AdaGrad itself.
    full = _adagrad_effective_steps(lambda p: AdaGrad(p, lr=0.1), GRADS)
    long = _adagrad_effective_steps(lambda p: AdaGrad(p, lr=0.1, window=100), GRADS)
    assert long == pytest.approx(full, rel=1e-12)


def test_adagrad_eps_place():
    """torch/Duchi: g / (sqrt(G) + eps). Notes: g / sqrt(eps + G). Checked against both formulas."""
    g, lr, eps = 1e-3, 0.1, 1e-4
    outside = _adagrad_effective_steps(lambda p: AdaGrad(p, lr=lr, eps=eps), [g])[0]
    inside = _adagrad_effective_steps(
        lambda p: AdaGrad(p, lr=lr, eps=eps, eps_inside_sqrt=True), [g])[0]
    assert outside == pytest.approx(lr / (abs(g) + eps), rel=1e-12)
    assert inside == pytest.approx(lr / math.sqrt(eps + g * g), rel=1e-12)
    assert inside < outside / 5  # for tiny gradients the two differ by a large factor


# --------------------------------------------------------------------------- 9.3.4 Adam
def _adam_steps(notes, gradient=0.5, steps=300, lr=1e-2, betas=(0.9, 0.999), eps=1e-8):
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = Adam([theta], lr=lr, betas=betas, eps=eps, notes_bias_correction=notes)
    sizes = []
    for _ in range(steps):
        before = theta.detach().clone()
        theta.grad = torch.tensor([gradient], dtype=torch.float64)
        opt.step()
        sizes.append((before - theta.detach()).item())
    return sizes


def test_adam_bias_correction_makes_constant_gradient_steps_constant():
    """With 1 - beta^t, m_hat = g and v_hat = g^2 exactly for a constant g: every step is
    lr * g / (|g| + eps). The notes' 1 - beta gives a step that varies from lr up to ~2.1x lr
    (t = 12) and back down to lr*sqrt(1 - beta2)/(1 - beta1) ~ 0.32 lr."""
    lr, g, b1, b2, eps = 1e-2, 0.5, 0.9, 0.999, 1e-8
    correct = _adam_steps(notes=False)
    assert correct == pytest.approx([lr * g / (g + eps)] * len(correct), rel=1e-9)
    notes = _adam_steps(notes=True)
    predicted = [lr * (1 - b1**t) / (1 - b1) * g
                 / (math.sqrt((1 - b2**t) / (1 - b2)) * g + eps) for t in range(1, 301)]
    assert notes == pytest.approx(predicted, rel=1e-9)  # the option does what the notes write
    assert max(notes) > 2.0 * lr and notes[-1] < 0.7 * lr


def test_adam_first_moment_estimate_is_unbiased():
    """E[m_hat_t] = E[g] for i.i.d. gradients, at every t; the notes' version is off by
    (1 - beta1^t) / (1 - beta1) (4.1x at t = 5)."""
    n, t_end, mean = 200_000, 5, 0.3
    lr, eps = 1.0, 1e8  # eps >> sqrt(v_hat) ~ 1: the step is lr * m_hat / eps (to 1e-8)
    gen = torch.Generator().manual_seed(0)
    estimates = {}
    for notes in (False, True):
        theta = torch.zeros(n, dtype=torch.float64, requires_grad=True)  # n independent runs
        opt = Adam([theta], lr=lr, eps=eps, notes_bias_correction=notes)
        gen.manual_seed(0)
        for _ in range(t_end):
            before = theta.detach().clone()
            theta.grad = mean + torch.randn(n, generator=gen, dtype=torch.float64)
            opt.step()
        # read the optimizer's own bias-corrected m_hat off its last step
        m_hat = (before - theta.detach()) * eps / lr
        estimates[notes] = m_hat.mean().item()
    standard_error = 1.0 / math.sqrt(n)  # m_hat has variance < 1 per run
    assert abs(estimates[False] - mean) < 4 * standard_error
    assert estimates[True] == pytest.approx(mean * (1 - 0.9**t_end) / 0.1, rel=0.02)
