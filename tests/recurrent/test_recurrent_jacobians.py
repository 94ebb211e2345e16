"""Jacobian products through time (notes 5.4): the Elman Jacobian by hand against autograd,
the spectral-radius tools, the bounds the vanishing-gradient experiment relies on, and the
LSTM cell path that decides the notes' "passes unchanged" (docs/ERRATA.md, 5.4.1)."""

import math

import pytest
import torch

from deepnotes.recurrent.cells import lstm_step
from deepnotes.recurrent.jacobians import (
    elman_jacobians,
    fitted_slope,
    product_norms,
    random_orthogonal,
    rescale_spectral_radius,
    spectral_radius,
    step_jacobians,
    step_log_norms,
    submultiplicative_gap,
    trajectory,
)

DT = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_elman_jacobian_by_hand_equals_autograd_float64():
    g = _gen()
    H, T = 5, 7
    w = torch.randn(H, H, generator=g, dtype=DT) / H ** 0.5
    u = torch.randn(T, H, generator=g, dtype=DT)
    run = elman_jacobians(u, w)
    def step(u_s, h):
        return torch.tanh(w @ h + u_s)

    starts = trajectory(step, u, torch.zeros(H, dtype=DT))
    torch.testing.assert_close(starts[1:], run.h[:-1], rtol=0, atol=0)  # the same states
    auto = step_jacobians(step, u, starts)
    torch.testing.assert_close(run.jacobians, auto, rtol=1e-12, atol=1e-12)


def test_product_norms_are_the_norms_of_dh_T_dh_t_by_autograd():
    g = _gen(1)
    H, T = 4, 6
    w = 1.3 * torch.randn(H, H, generator=g, dtype=DT) / H ** 0.5
    u = 0.5 * torch.randn(T, H, generator=g, dtype=DT)
    run = elman_jacobians(u, w)
    norms = product_norms(run.jacobians)
    states = torch.cat([torch.zeros(1, H, dtype=DT), run.h])  # h_0..h_T
    for k in range(1, T + 1):
        t = T - k

        def h_T(h_t, t=t):
            h = h_t
            for u_s in u[t:]:
                h = torch.tanh(w @ h + u_s)
            return h

        jac = torch.autograd.functional.jacobian(h_T, states[t])
        assert math.isclose(float(norms[k - 1]), float(torch.linalg.matrix_norm(jac, ord=2)),
                            rel_tol=1e-10)


def test_rescaled_matrix_has_the_requested_spectral_radius():
    g = _gen(2)
    w = torch.randn(20, 20, generator=g, dtype=DT)
    for rho in (0.5, 1.0, 1.5):
        assert math.isclose(spectral_radius(rescale_spectral_radius(w, rho)), rho, rel_tol=1e-10)
    with pytest.raises(ValueError, match="positive"):
        rescale_spectral_radius(w, 0.0)
    with pytest.raises(ValueError, match="square"):
        spectral_radius(torch.ones(2, 3))


def test_random_orthogonal_has_unit_singular_values():
    q = random_orthogonal(16, _gen(3))
    torch.testing.assert_close(q.T @ q, torch.eye(16, dtype=DT), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.svdvals(q), torch.ones(16, dtype=DT))


def test_linear_regime_orthogonal_product_norm_is_exactly_rho_to_the_k():
    """At h = 0 with no drive tanh' = 1: dh_T/dh_t = W^k, whose norm is rho^k for rho * Q."""
    w = 1.5 * random_orthogonal(8, _gen(4))
    run = elman_jacobians(torch.zeros(10, 8, dtype=DT), w)
    logs = product_norms(run.jacobians).log()
    torch.testing.assert_close(logs, torch.arange(1, 11, dtype=DT) * math.log(1.5))
    assert math.isclose(fitted_slope(logs), math.log(1.5), rel_tol=1e-10)


def test_non_normal_matrix_grows_like_its_spectral_radius_not_its_norm():
    """Gelfand: ||W^k||^(1/k) -> rho(W) <= ||W||; for a Gaussian W, ||W|| ~ 2 rho."""
    w = rescale_spectral_radius(torch.randn(64, 64, generator=_gen(5), dtype=DT), 1.0)
    run = elman_jacobians(torch.zeros(200, 64, dtype=DT), w)
    slope = fitted_slope(product_norms(run.jacobians).log()[100:])
    assert abs(slope) < 0.01  # log rho = 0
    assert float(step_log_norms(run.jacobians).mean()) > 0.5  # log ||W|| ~ log 2


@pytest.mark.parametrize("seed", range(5))
def test_norm_of_product_never_exceeds_product_of_norms(seed):
    g = _gen(seed)
    w = 1.5 * torch.randn(6, 6, generator=g, dtype=DT) / 6 ** 0.5
    run = elman_jacobians(torch.randn(15, 6, generator=g, dtype=DT), w)
    assert submultiplicative_gap(run.jacobians) <= 1e-12
    # and each factor's norm is at most ||W|| since 0 < tanh' <= 1
    assert float(step_log_norms(run.jacobians).max()) <= float(
        torch.linalg.matrix_norm(w, ord=2).log()) + 1e-12


def test_fitted_slope_of_a_line_and_of_averaged_rows():
    k = torch.arange(1, 11, dtype=DT)
    assert math.isclose(fitted_slope(3.0 - 0.25 * k), -0.25, rel_tol=1e-12)
    rows = torch.stack([-0.5 * k, -1.5 * k + 2])
    assert math.isclose(fitted_slope(rows), -1.0, rel_tol=1e-12)


def _lstm(H, D, forget_bias, seed=0):
    g = _gen(seed)
    bound = 1 / H ** 0.5
    w_ih, w_hh = ((torch.rand(4 * H, n, generator=g, dtype=DT) * 2 - 1) * bound for n in (D, H))
    b = (torch.rand(4 * H, generator=g, dtype=DT) * 2 - 1) * bound
    b[H:2 * H] = forget_bias  # b_ih + b_hh of the forget gate; b_hh = 0
    return w_ih, w_hh, b, torch.zeros(4 * H, dtype=DT)


@pytest.mark.parametrize("forget_bias", [1.0, 30.0])
def test_lstm_cell_path_is_diag_f_and_unchanged_only_when_f_is_one(forget_bias):
    """Erratum 5.4.1: with h_{t-1} held fixed, dc_t/dc_{t-1} = diag(f_t) exactly. The notes'
    "passes without changing" holds only where f_t = 1: with forget bias 1 the path shrinks
    geometrically (like 0.73^k); with a saturated forget gate (bias 30) it is the identity."""
    H, D, T = 6, 3, 20
    w_ih, w_hh, b_ih, b_hh = _lstm(H, D, forget_bias)
    g = _gen(7)
    h, c = torch.zeros(H, dtype=DT), torch.zeros(H, dtype=DT)
    path = torch.ones(H, dtype=DT)
    for _ in range(T):
        x = torch.randn(D, generator=g, dtype=DT)
        jac = torch.autograd.functional.jacobian(
            lambda c_prev, x=x, h=h: lstm_step(x, h, c_prev, w_ih, w_hh, b_ih, b_hh)[1], c)
        f = torch.sigmoid(w_ih[H:2 * H] @ x + w_hh[H:2 * H] @ h + b_ih[H:2 * H])
        torch.testing.assert_close(jac, torch.diag(f), rtol=0, atol=1e-14)
        path = path * f
        h, c = lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh)
    if forget_bias == 1.0:
        assert float(path.max()) < 0.01  # changed: shrunk by more than 100x over 20 steps
    else:
        torch.testing.assert_close(path, torch.ones(H, dtype=DT), rtol=0, atol=1e-9)


def test_lstm_cell_state_depends_on_the_parameters():
    """Erratum 5.4.1: the notes' dc_t/dtheta = 0 is false; c_t is a function of every gate's
    parameters (here: its gradient with respect to the biases is far from 0)."""
    H, D = 4, 3
    w_ih, w_hh, b_ih, b_hh = _lstm(H, D, 1.0)
    b_ih.requires_grad_(True)
    g = _gen(8)
    h, c = torch.zeros(H, dtype=DT), torch.zeros(H, dtype=DT)
    for _ in range(5):
        h, c = lstm_step(torch.randn(D, generator=g, dtype=DT), h, c, w_ih, w_hh, b_ih, b_hh)
    (grad,) = torch.autograd.grad(c.sum(), b_ih)
    assert float(grad.abs().max()) > 0.1
