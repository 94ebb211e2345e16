"""LTI systems as circulant matrices, the convolution theorem, and notes Examples 4.1-4.2."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.conv import lti
from deepnotes.conv.invariance import normalize_to_circle, project_to_simplex

signals = st.integers(min_value=1, max_value=24).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, 2**31 - 1)))


def _pair(n, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, dtype=torch.float64, generator=g),
            torch.randn(n, dtype=torch.float64, generator=g))


@settings(max_examples=60, deadline=None)
@given(signals)
def test_circulant_direct_and_fft_agree(case):
    n, seed = case
    f, g = _pair(n, seed)
    direct = lti.cyclic_convolve(f, g)
    torch.testing.assert_close(lti.circulant(g) @ f, direct, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lti.fft_convolve(f, g), direct, rtol=1e-10, atol=1e-10)
    # Commutative, and the same as the textbook double loop.
    torch.testing.assert_close(lti.cyclic_convolve(g, f), direct, rtol=1e-12, atol=1e-12)
    loop = [sum(f[s].item() * g[(y - s) % n].item() for s in range(n)) for y in range(n)]
    torch.testing.assert_close(direct, torch.tensor(loop, dtype=torch.float64))


@settings(max_examples=40, deadline=None)
@given(signals, st.integers(-30, 30))
def test_convolution_commutes_with_shifts(case, t):
    n, seed = case
    f, g = _pair(n, seed)
    torch.testing.assert_close(lti.cyclic_convolve(lti.shift(f, t), g),
                               lti.shift(lti.cyclic_convolve(f, g), t))
    assert lti.circulant_deviation(lti.circulant(g)).item() < 1e-12


def test_convolution_is_associative_and_distributive():
    g = torch.Generator().manual_seed(1)
    f, a, b = (torch.randn(9, dtype=torch.float64, generator=g) for _ in range(3))
    torch.testing.assert_close(lti.cyclic_convolve(f, lti.cyclic_convolve(a, b)),
                               lti.cyclic_convolve(lti.cyclic_convolve(f, a), b))
    torch.testing.assert_close(lti.cyclic_convolve(f, a + b),
                               lti.cyclic_convolve(f, a) + lti.cyclic_convolve(f, b))


def test_kernel_is_response_to_delta_and_projection_recovers_it():
    g = torch.tensor([0.5, -1.0, 2.0, 0.0, 3.0], dtype=torch.float64)
    delta = torch.zeros(5, dtype=torch.float64)
    delta[0] = 1
    torch.testing.assert_close(lti.cyclic_convolve(delta, g), g)
    G = lti.circulant(g)
    torch.testing.assert_close(lti.kernel_of(G), g)
    torch.testing.assert_close(lti.nearest_circulant_kernel(G), g)
    # A non-circulant matrix is not: positive deviation, and the projection is idempotent.
    M = torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert lti.circulant_deviation(M).item() > 0.3
    k = lti.nearest_circulant_kernel(M)
    torch.testing.assert_close(lti.nearest_circulant_kernel(lti.circulant(k)), k)


def test_example_4_1_recomputed():
    """Notes Example 4.1: f = delta at 3, g = (0, 0, 0, 1, -1, 0) on 6 samples."""
    f = torch.tensor([0, 0, 0, 1, 0, 0], dtype=torch.float64)
    g = torch.tensor([0, 0, 0, 1, -1, 0], dtype=torch.float64)
    h = lti.cyclic_convolve(f, g)
    # Convolving with a delta at 3 shifts g by 3: h(y) = g(y - 3).
    torch.testing.assert_close(h, torch.tensor([1, -1, 0, 0, 0, 0], dtype=torch.float64))
    # h(6) = sum_s f(s) g(6 - s) = f(3) g(3) = +1 (cyclic: h(6) = h(0)); the notes say -1.
    h6 = sum(f[s].item() * g[(6 - s) % 6].item() for s in range(6))
    assert h6 == 1.0 and h[0].item() == 1.0
    # The notes' matrix has first row g: it is the correlation matrix, G^T, and its product
    # (1, 0, 0, 0, 0, -1) is the cross-correlation, not f * g.
    notes_matrix = torch.tensor([[0, 0, 0, 1, -1, 0], [0, 0, 0, 0, 1, -1], [-1, 0, 0, 0, 0, 1],
                                 [1, -1, 0, 0, 0, 0], [0, 1, -1, 0, 0, 0], [0, 0, 1, -1, 0, 0]],
                                dtype=torch.float64)
    torch.testing.assert_close(lti.correlation_matrix(g), notes_matrix)
    torch.testing.assert_close(notes_matrix @ f,
                               torch.tensor([1, 0, 0, 0, 0, -1], dtype=torch.float64))
    assert not torch.equal(notes_matrix @ f, h)
    torch.testing.assert_close(lti.circulant(g) @ f, h)


def test_difference_filter_is_a_derivative():
    """Example 4.2: the forward difference over spacing dx approximates f' with error O(dx)."""
    errors = []
    for n in (64, 128, 256):
        dx = 2 * math.pi / n
        x = torch.arange(n, dtype=torch.float64) * dx
        approx = lti.forward_difference(torch.sin(x)) / dx
        errors.append((approx - torch.cos(x)).abs().max().item())
    # First order: halving dx halves the error (ratio -> 2), and it is below dx/2 * max|f''|.
    assert 1.9 < errors[0] / errors[1] < 2.1 and 1.9 < errors[1] / errors[2] < 2.1
    assert errors[-1] <= 0.5 * (2 * math.pi / 256) + 1e-12
    # The notes' kernel (-1, 1) at indices (0, 1): its *convolution* is f(x-1) - f(x)...
    f = torch.tensor([0.0, 1.0, 4.0, 9.0, 16.0], dtype=torch.float64)
    g = torch.tensor([-1.0, 1.0, 0, 0, 0], dtype=torch.float64)
    torch.testing.assert_close(lti.cyclic_convolve(f, g), torch.roll(f, 1) - f)
    # ...and its cross-correlation (what conv1d computes) is f(x+1) - f(x), the notes' claim.
    xcorr = torch.nn.functional.conv1d(f.view(1, 1, -1), g[:2].view(1, 1, 2)).flatten()
    torch.testing.assert_close(xcorr, f[1:] - f[:-1])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="equal lengths"):
        lti.cyclic_convolve(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="square"):
        lti.nearest_circulant_kernel(torch.zeros(2, 3))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=2, max_size=8), st.floats(0.01, 100),
       st.floats(-20, 20))
def test_output_normalizations(values, scale, constant):
    """Sec. 4.3: circle normalization ignores positive scale; softmax ignores added constants."""
    v = torch.tensor(values, dtype=torch.float64)
    if v.norm() > 1e-6:
        on_circle = normalize_to_circle(v)
        assert abs(on_circle.norm().item() - 1) < 1e-12
        torch.testing.assert_close(normalize_to_circle(scale * v), on_circle)
    p = torch.softmax(v, -1)
    assert (p > 0).all() and abs(p.sum().item() - 1) < 1e-12
    torch.testing.assert_close(torch.softmax(v + constant, -1), p)
    q = project_to_simplex(v)
    assert (q >= 0).all() and abs(q.sum().item() - 1) < 1e-9
    torch.testing.assert_close(project_to_simplex(q), q)  # a projection is idempotent


def test_softmax_is_not_the_euclidean_projection():
    v = torch.tensor([2.0, 0.5, -1.0], dtype=torch.float64)
    q = project_to_simplex(v)
    torch.testing.assert_close(q, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    p = torch.softmax(v, -1)
    assert (p - q).abs().max() > 0.1
    # Softmax applied twice moves again; the projection does not.
    assert (torch.softmax(p, -1) - p).abs().max() > 0.1
    # Brute-force check of the projection against points of a fine simplex grid.
    grid = torch.stack(torch.meshgrid(torch.linspace(0, 1, 101, dtype=torch.float64),
                                      torch.linspace(0, 1, 101, dtype=torch.float64),
                                      indexing="ij"), -1).reshape(-1, 2)
    grid = grid[grid.sum(1) <= 1]
    points = torch.cat([grid, 1 - grid.sum(1, keepdim=True)], 1)
    best = points[(points - v).norm(dim=1).argmin()]
    assert (v - q).norm() <= (v - best).norm() + 1e-12
    with pytest.raises(ValueError, match="zero vector"):
        normalize_to_circle(torch.zeros(2))
