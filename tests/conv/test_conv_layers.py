"""Written-out conv2d, pooling, LRN and transposed convolution against torch (values and
gradients, float64), the output-size formula, and the notes' transposed-convolution example."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.conv import functional as CF
from deepnotes.conv import layers

DT = torch.float64


def _grads(fn, *tensors):
    """Output of ``fn(*tensors)`` and gradients of a random projection of it."""
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves)
    probe = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(7))
    (out * probe).sum().backward()
    return out.detach(), [t.grad for t in leaves]


def _assert_same(ours, theirs, *tensors):
    out_a, grads_a = _grads(ours, *tensors)
    out_b, grads_b = _grads(theirs, *tensors)
    torch.testing.assert_close(out_a, out_b)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(ga, gb)


CONV_CASES = [
    # (C_in, C_out, H, W, k, stride, padding, dilation, groups)
    (1, 4, 9, 9, 3, 1, 0, 1, 1),
    (3, 6, 10, 8, 3, 2, 1, 1, 1),
    (4, 6, 11, 12, (3, 5), (2, 1), (1, 2), 1, 2),
    (2, 5, 12, 12, 3, 1, 2, 2, 1),
    (6, 6, 7, 9, 3, 3, 1, 1, 6),  # depthwise
    (3, 2, 8, 8, 1, 1, 0, 1, 1),
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_parity(case, bias):
    c_in, c_out, h, w, k, s, p, d, g = case
    kh, kw = (k, k) if isinstance(k, int) else k
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, c_in, h, w, dtype=DT, generator=gen)
    weight = torch.randn(c_out, c_in // g, kh, kw, dtype=DT, generator=gen)
    b = torch.randn(c_out, dtype=DT, generator=gen)
    if bias:
        _assert_same(lambda x, w_, b_: CF.conv2d(x, w_, b_, s, p, d, g),
                     lambda x, w_, b_: F.conv2d(x, w_, b_, s, p, d, g), x, weight, b)
    else:
        _assert_same(lambda x, w_: CF.conv2d(x, w_, None, s, p, d, g),
                     lambda x, w_: F.conv2d(x, w_, None, s, p, d, g), x, weight)


def test_conv2d_module_copies_torch_weights_and_init():
    torch.manual_seed(3)
    ours = layers.Conv2d(3, 5, 3, stride=2, padding=1).double()
    torch.manual_seed(3)
    ref = torch.nn.Conv2d(3, 5, 3, stride=2, padding=1).double()
    # Same init scheme and RNG order: the same weights.
    torch.testing.assert_close(ours.weight, ref.weight)
    torch.testing.assert_close(ours.bias, ref.bias)
    x = torch.randn(4, 3, 9, 9, dtype=DT, requires_grad=True)
    (ours(x) ** 2).sum().backward()
    grad_ours = (x.grad.clone(), ours.weight.grad.clone(), ours.bias.grad.clone())
    x.grad = None
    (ref(x) ** 2).sum().backward()
    for a, b in zip(grad_ours, (x.grad, ref.weight.grad, ref.bias.grad), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kernel,stride,padding", [(2, None, 0), (3, 2, 1), (3, 1, 1),
                                                   ((2, 3), (2, 1), (1, 0))])
def test_pooling_parity(kernel, stride, padding):
    x = torch.randn(2, 3, 9, 10, dtype=DT, generator=torch.Generator().manual_seed(1))
    _assert_same(lambda t: CF.max_pool2d(t, kernel, stride, padding),
                 lambda t: F.max_pool2d(t, kernel, stride, padding), x)
    for include in (True, False):
        _assert_same(lambda t, i=include: CF.avg_pool2d(t, kernel, stride, padding, i),
                     lambda t, i=include: F.avg_pool2d(t, kernel, stride, padding,
                                                       count_include_pad=i), x)
    torch.testing.assert_close(layers.MaxPool2d(kernel, stride, padding)(x),
                               torch.nn.MaxPool2d(kernel, stride, padding)(x))
    torch.testing.assert_close(layers.AvgPool2d(kernel, stride, padding)(x),
                               torch.nn.AvgPool2d(kernel, stride, padding)(x))


def test_max_pool_ties_route_the_gradient_like_torch():
    """Flat regions (image background) tie; the gradient goes to one input, as in torch."""
    x = torch.zeros(1, 1, 4, 6, dtype=DT)
    x[0, 0, 1, 1] = 1.0
    _assert_same(lambda t: CF.max_pool2d(t, 2), lambda t: F.max_pool2d(t, 2), x)
    _assert_same(lambda t: CF.max_pool2d(t, 3, 1, 1), lambda t: F.max_pool2d(t, 3, 1, 1), x)


@pytest.mark.parametrize("size,alpha,beta,k", [(5, 1e-4, 0.75, 2.0), (3, 0.5, 0.5, 1.0),
                                                (4, 1.0, 1.0, 0.1), (1, 0.2, 0.75, 1.0)])
@pytest.mark.parametrize("shape", [(2, 7, 5, 4), (3, 6, 5)])
def test_local_response_norm_parity(size, alpha, beta, k, shape):
    x = 3 * torch.randn(*shape, dtype=DT, generator=torch.Generator().manual_seed(2))
    _assert_same(lambda t: CF.local_response_norm(t, size, alpha, beta, k),
                 lambda t: F.local_response_norm(t, size, alpha, beta, k), x)
    torch.testing.assert_close(layers.LocalResponseNorm(size, alpha, beta, k)(x),
                               torch.nn.LocalResponseNorm(size, alpha, beta, k)(x))


def test_lrn_needs_the_square():
    """Notes sec. 4.3 write (c + alpha sum_j R_j)^beta: with negative responses the base is
    negative and a fractional power is NaN; the squared sum (AlexNet, torch) stays finite."""
    x = -torch.ones(1, 4, 2, 2, dtype=DT)
    c, alpha, beta = 1.0, 1.0, 0.75
    notes_form = x / (c + alpha * x.sum(1, keepdim=True)) ** beta
    assert torch.isnan(notes_form).all()
    assert torch.isfinite(CF.local_response_norm(x, 4, alpha, beta, c)).all()


def test_gradcheck_own_layers():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 2, 5, 5, dtype=DT, generator=gen, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=DT, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: CF.conv2d(a, b, stride=2, padding=1), (x, w))
    assert torch.autograd.gradcheck(lambda a: CF.local_response_norm(a, 2, 0.3, 0.75, 1.0), (x,))
    assert torch.autograd.gradcheck(lambda a: CF.avg_pool2d(a, 2, 1, 1), (x,))


@pytest.mark.parametrize("stride,padding,output_padding,dilation",
                         [(2, 0, 0, 1), (2, 1, 1, 1), (3, 1, 2, 1), (1, 0, 0, 2)])
def test_conv_transpose2d_parity(stride, padding, output_padding, dilation):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 4, 5, dtype=DT, generator=gen)
    w = torch.randn(3, 2, 3, 3, dtype=DT, generator=gen)
    b = torch.randn(2, dtype=DT, generator=gen)
    _assert_same(lambda x_, w_, b_: CF.conv_transpose2d(x_, w_, b_, stride, padding,
                                                        output_padding, dilation),
                 lambda x_, w_, b_: F.conv_transpose2d(x_, w_, b_, stride, padding,
                                                       output_padding, 1, dilation), x, w, b)


def test_transposed_convolution_example_of_notes_8_6():
    """Input = kernel = [[0, 1], [2, 3]], stride 2: each input pixel paints a kernel copy."""
    k = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    expected = torch.tensor([[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]],
                            dtype=torch.float32)
    torch_out = F.conv_transpose2d(k.view(1, 1, 2, 2), k.view(1, 1, 2, 2), stride=2)
    assert torch.equal(torch_out[0, 0], expected)
    assert torch.equal(CF.conv_transpose2d(k.view(1, 1, 2, 2), k.view(1, 1, 2, 2), stride=2
                                           )[0, 0], expected)
    # The sum of the four painted copies, as the notes write it.
    copies = torch.zeros(4, 4)
    for i, j in itertools.product(range(2), range(2)):
        copies[2 * i:2 * i + 2, 2 * j:2 * j + 2] += k[i, j] * k
    assert torch.equal(copies, expected)


def test_transposed_convolution_is_the_adjoint_of_convolution():
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(1, 2, 9, 9, dtype=DT, generator=gen)
    y = torch.randn(1, 3, 4, 4, dtype=DT, generator=gen)
    w = torch.randn(3, 2, 3, 3, dtype=DT, generator=gen)
    lhs = (CF.conv2d(x, w, stride=2) * y).sum()
    rhs = (x * CF.conv_transpose2d(y, w, stride=2)).sum()
    torch.testing.assert_close(lhs, rhs)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 20), st.integers(1, 5), st.integers(1, 3), st.integers(0, 2),
       st.integers(1, 2))
def test_output_size_formula_matches_torch(size, k, s, p, d):
    span = d * (k - 1) + 1
    if size + 2 * p < span:
        with pytest.raises(ValueError, match="does not fit"):
            CF.output_size(size, k, s, p, d)
        return
    out = F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s, padding=p,
                   dilation=d)
    assert out.shape[-1] == CF.output_size(size, k, s, p, d)
    if p == 0 and s == 1 and d == 1:
        assert CF.output_size(size, k) == size - k + 1  # notes sec. 4.2.2
    t = F.conv_transpose2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s,
                           dilation=d)
    assert t.shape[-1] == CF.transposed_output_size(size, k, s, 0, 0, d)


def test_notes_figure_4_1_shapes():
    """32x32x3 -> 5x5x3x6 -> 28x28x6 -> 5x5x6x10 -> 24x24x10 (no padding)."""
    x = torch.zeros(1, 3, 32, 32)
    first, second = layers.Conv2d(3, 6, 5), layers.Conv2d(6, 10, 5)
    h = first(x)
    assert h.shape == (1, 6, 28, 28)
    assert second(torch.relu(h)).shape == (1, 10, 24, 24)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="groups"):
        CF.conv2d(torch.zeros(1, 3, 5, 5), torch.zeros(4, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        CF.conv2d(torch.zeros(3, 5, 5), torch.zeros(4, 3, 3, 3))
    with pytest.raises(ValueError, match="half the kernel"):
        CF.max_pool2d(torch.zeros(1, 1, 5, 5), 2, padding=2)
    with pytest.raises(ValueError, match="Conv2d expects"):
        layers.Conv2d(3, 4, 3)(torch.zeros(1, 2, 5, 5))
