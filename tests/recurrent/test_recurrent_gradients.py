"""The Elman network's hand-written gradients (notes sec. 5.3): RTRL (the notes' forward
recursion) and BPTT against autograd and finite differences in float64; the notes' unrolled
formula and loss gradient; and the costs, counted on the running code."""

import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from deepnotes.recurrent import RNN
from deepnotes.recurrent.gradients import (
    ElmanParams,
    bptt,
    elman_forward,
    gradient_costs,
    readout_squared_error,
    rtrl,
)

DT = torch.float64
METHODS = {"rtrl": rtrl, "bptt": bptt}


def _problem(T: int, H: int, D: int, seed: int = 0, requires_grad: bool = False):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, D, dtype=DT, generator=gen)
    h_0 = torch.randn(H, dtype=DT, generator=gen)
    params = ElmanParams(*(torch.randn(s, dtype=DT, generator=gen) / H ** 0.5
                           for s in [(H, D), (H, H), (H,), (H,)]))
    if requires_grad:
        params = ElmanParams(*(p.requires_grad_(True) for p in params))
    grad_h = torch.randn(T, H, dtype=DT, generator=gen)
    return x, h_0, params, grad_h


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("T,H,D", [(1, 3, 2), (6, 4, 3), (12, 2, 5)])
def test_hand_gradients_match_autograd_float64(method, T, H, D):
    x, h_0, params, grad_h = _problem(T, H, D, requires_grad=True)
    h_0.requires_grad_(True)
    (elman_forward(x, h_0, params) * grad_h).sum().backward()
    ours = METHODS[method](x, h_0, ElmanParams(*(p.detach() for p in params)), grad_h)
    for name, p in zip(ElmanParams._fields, params, strict=True):
        torch.testing.assert_close(getattr(ours, name), p.grad, rtol=1e-12, atol=1e-13)
    if method == "bptt":
        torch.testing.assert_close(ours.h_0, h_0.grad, rtol=1e-12, atol=1e-13)
    else:
        assert ours.h_0 is None


def _with_hand_backward(method):
    """``L(theta) = sum_t <g_t, h_t>`` as an autograd Function whose backward is ``method``,
    so that gradcheck compares the hand gradient with finite differences."""

    class ElmanLoss(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, h_0, grad_h, *params):
            ctx.save_for_backward(x, h_0, grad_h, *params)
            return (elman_forward(x, h_0, ElmanParams(*params)) * grad_h).sum()

        @staticmethod
        def backward(ctx, upstream):
            x, h_0, grad_h, *params = ctx.saved_tensors
            grads = method(x, h_0, ElmanParams(*params), grad_h)
            return (None, None, None, *(upstream * g for g in grads[:4]))

    return ElmanLoss.apply


@pytest.mark.parametrize("method", list(METHODS))
def test_hand_gradients_pass_gradcheck(method):
    x, h_0, params, grad_h = _problem(5, 3, 2, seed=1)
    params = tuple(p.requires_grad_(True) for p in params)
    assert torch.autograd.gradcheck(lambda *p: _with_hand_backward(METHODS[method])(
        x, h_0, grad_h, *p), params)


def test_elman_forward_is_torchs_rnn():
    x, h_0, params, _ = _problem(7, 4, 3, seed=2)
    rnn = RNN(3, 4).double()
    rnn.load_state_dict(dict(zip(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"],
                                 params, strict=True)))
    torch.testing.assert_close(elman_forward(x, h_0, params), rnn(x, h_0[None])[0].detach())


# The notes' formulas (sec. 5.3) -----------------------------------------------------------


def _flat(params) -> torch.Tensor:
    """theta = (vec W_ih, vec W_hh, b) with b = b_ih = b_hh (they enter as a sum)."""
    return torch.cat([params.weight_ih.reshape(-1), params.weight_hh.reshape(-1),
                      params.bias_ih])


def _step_of(theta, h_prev, x_t, H, D):
    """N_h(theta, h_{t-1}, x_t) with theta flat."""
    w_ih = theta[:H * D].view(H, D)
    w_hh = theta[H * D:H * (D + H)].view(H, H)
    return torch.tanh(w_ih @ x_t + w_hh @ h_prev + theta[H * (D + H):])


def test_notes_unrolled_sensitivity_needs_the_newest_jacobian_on_the_left():
    """a_t = b_t + sum_{i<t} (prod_{j=i+1}^t c_j) b_i holds with the product ordered
    c_t c_{t-1} ... c_{i+1}; read left to right (c_{i+1} ... c_t) it is wrong, since the
    Jacobians c_j = diag(tanh') W_hh do not commute."""
    T, H, D = 5, 3, 2
    x, h_0, params, _ = _problem(T, H, D, seed=3)
    theta = _flat(params)
    h = [h_0]
    for t in range(T):
        h.append(_step_of(theta, h[-1], x[t], H, D))
    jac = torch.autograd.functional.jacobian
    b = [None] + [jac(lambda th, t=t: _step_of(th, h[t - 1], x[t - 1], H, D), theta)
                  for t in range(1, T + 1)]  # b_t, (H, P)
    c = [None] + [jac(lambda hp, t=t: _step_of(theta, hp, x[t - 1], H, D), h[t - 1])
                  for t in range(1, T + 1)]  # c_t, (H, H)
    truth = jac(lambda th: elman_forward(x, h_0, ElmanParams(
        th[:H * D].view(H, D), th[H * D:H * (D + H)].view(H, H), th[H * (D + H):],
        torch.zeros(H, dtype=DT)))[-1], theta)  # dh_T/dtheta
    newest_left, oldest_left = b[T].clone(), b[T].clone()
    for i in range(1, T):
        prod_newest, prod_oldest = torch.eye(H, dtype=DT), torch.eye(H, dtype=DT)
        for j in range(i + 1, T + 1):
            prod_newest = c[j] @ prod_newest  # c_t ... c_{i+1}
            prod_oldest = prod_oldest @ c[j]  # c_{i+1} ... c_t
        newest_left += prod_newest @ b[i]
        oldest_left += prod_oldest @ b[i]
    torch.testing.assert_close(newest_left, truth)
    assert (oldest_left - truth).abs().max() > 1e-3


def test_notes_loss_gradient_misses_the_readout_parameters():
    """dL/dtheta = 1/T sum_t dl/do_t do_t/dh_t dh_t/dtheta (sec. 5.3) is the whole gradient for
    the recurrent parameters, but o_t = W_o h_t + b_o depends on W_o, b_o directly: for them
    dh_t/dtheta = 0, the formula gives 0, and the direct term is all there is."""
    T, H, D, O = 6, 4, 3, 2
    x, h_0, params, _ = _problem(T, H, D, seed=4, requires_grad=True)
    gen = torch.Generator().manual_seed(5)
    w_o = torch.randn(O, H, dtype=DT, generator=gen, requires_grad=True)
    b_o = torch.randn(O, dtype=DT, generator=gen, requires_grad=True)
    y = torch.randn(T, O, dtype=DT, generator=gen)
    h = elman_forward(x, h_0, params)
    loss = 0.5 * ((h @ w_o.T + b_o - y) ** 2).sum(1).mean()
    loss.backward()
    readout = readout_squared_error(h.detach(), w_o.detach(), b_o.detach(), y)
    torch.testing.assert_close(readout.loss, loss.detach())
    for method in METHODS.values():
        grads = method(x, h_0, ElmanParams(*(p.detach() for p in params)), readout.grad_h)
        for ours, p in zip(grads[:4], params, strict=True):
            torch.testing.assert_close(ours, p.grad)
    torch.testing.assert_close(readout.weight, w_o.grad)
    torch.testing.assert_close(readout.bias, b_o.grad)
    assert w_o.grad.abs().max() > 0.1  # what the notes' formula (dh_t/dW_o = 0) would miss


# Costs ------------------------------------------------------------------------------------

ATEN = torch.ops.aten
NO_MULTIPLY = {ATEN.add.Tensor, ATEN.add_.Tensor, ATEN.rsub.Scalar, ATEN.tanh.default,
               ATEN.clone.default, ATEN.diagonal.default, ATEN.new_zeros.default,
               ATEN.zeros_like.default, ATEN.select.int, ATEN.slice.Tensor, ATEN.view.default,
               ATEN.unsqueeze.default, ATEN.squeeze_.dim, ATEN.permute.default,
               ATEN.unbind.int, ATEN.t.default, ATEN.transpose.int}


class CountMultiplies(TorchDispatchMode):
    """Counts the scalar multiplications of every aten op; an op it does not know fails."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is ATEN.mm.default:
            (m, k), n = args[0].shape, args[1].shape[1]
            self.count += m * k * n
        elif func is ATEN.mv.default:
            self.count += args[0].numel()
        elif func is ATEN.mul.Tensor:
            self.count += out.numel()
        elif func not in NO_MULTIPLY:
            raise AssertionError(f"uncounted op {func}")
        return out


class PeakNumbers(TorchDispatchMode):
    """The peak count of numbers held in storages created inside the mode (inputs made before
    it are not counted); a storage is released when Python frees it."""

    def __init__(self):
        super().__init__()
        self.live, self.peak, self._seen = 0, 0, set()

    def _release(self, key, numbers):
        self.live -= numbers
        self._seen.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key in self._seen or key in inputs:
                continue
            numbers = storage.nbytes() // t.element_size()
            self._seen.add(key)
            self.live += numbers
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._release, key, numbers)
        return out


@pytest.mark.parametrize("T,H,D", [(1, 1, 1), (3, 2, 5), (7, 4, 3), (4, 6, 2)])
def test_counted_multiplications_equal_gradient_costs(T, H, D):
    x, h_0, params, grad_h = _problem(T, H, D)
    costs = gradient_costs(T, H, D)
    for name, method in METHODS.items():
        with CountMultiplies() as counter:
            method(x, h_0, params, grad_h)
        assert counter.count == getattr(costs, name).multiply_adds, name


def test_rtrl_memory_is_constant_in_T_and_bptt_grows_by_H_per_step():
    H, D = 4, 3
    peaks = {name: [] for name in METHODS}
    for T in (8, 16, 32):
        x, h_0, params, grad_h = _problem(T, H, D)
        for name, method in METHODS.items():
            with PeakNumbers() as tracker:
                grads = method(x, h_0, params, grad_h)
                del grads
            peaks[name].append(tracker.peak)
    P = H * (D + H + 1)
    rtrl_peak, bptt_peak = peaks["rtrl"], peaks["bptt"]
    assert rtrl_peak[0] == rtrl_peak[1] == rtrl_peak[2]
    assert H * P <= rtrl_peak[0] <= 4 * H * P  # a_t plus a few temporaries of its size
    assert bptt_peak[1] - bptt_peak[0] == 8 * H and bptt_peak[2] - bptt_peak[1] == 16 * H
    stored = [gradient_costs(T, H, D) for T in (8, 16, 32)]
    assert stored[0].rtrl.stored == stored[2].rtrl.stored
    assert stored[1].bptt.stored - stored[0].bptt.stored == 8 * H


def test_costs_scale_like_t_h_p_for_rtrl_and_t_h_squared_for_bptt():
    for T, H, D in [(10, 8, 4), (100, 32, 16)]:
        P = H * (D + H + 1)
        one, two = gradient_costs(T, H, D), gradient_costs(2 * T, H, D)
        assert two.rtrl.multiply_adds == 2 * one.rtrl.multiply_adds
        assert two.bptt.multiply_adds == 2 * one.bptt.multiply_adds
        assert two.rtrl.stored == one.rtrl.stored  # O(H P), no T
        assert two.bptt.stored - one.bptt.stored == T * H  # O(T H)
        assert 1 < one.rtrl.multiply_adds / (T * H * H * P) < 1 + 3 / H
        assert 1 < one.bptt.multiply_adds / (T * (3 * H * H + 2 * H * D)) < 1 + 1 / H
    # RTRL / BPTT ~ H P / (3H + 2D): ~P/3 when D << H; 410x at H = 32, D = 16.
    T, H, D = 100, 32, 16
    costs = gradient_costs(T, H, D)
    ratio = costs.rtrl.multiply_adds / costs.bptt.multiply_adds
    predicted = H * H * (D + H + 1) / (3 * H + 2 * D)
    assert 1 < ratio / predicted < 1 + 3 / H


def test_bad_inputs_raise():
    x, h_0, params, grad_h = _problem(4, 3, 2)
    with pytest.raises(ValueError, match=r"grad_h of shape \(4, 3\), got \(3, 3\)"):
        rtrl(x, h_0, params, grad_h[:3])
    with pytest.raises(ValueError, match=r"expected x \(T, D\) and h_0 \(H,\)"):
        bptt(x[None], h_0, params, grad_h)
    with pytest.raises(ValueError, match="expected parameter shapes"):
        bptt(x, h_0, params._replace(weight_hh=torch.zeros(3, 2, dtype=DT)), grad_h)
    with pytest.raises(ValueError, match="T, H, D >= 1"):
        gradient_costs(0, 3, 2)
