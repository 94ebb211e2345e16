"""deepnotes.info against scipy, plus invariants (KL >= 0, JSD symmetric and <= 1 bit, ...)."""

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from deepnotes import info

# ----------------------------------------------------------------------------- strategies


@st.composite
def distributions(draw, k=None, zeros=True):
    """A probability vector in float64, possibly with exact zeros."""
    k = k or draw(st.integers(1, 12))
    low = 0.0 if zeros else 1e-3
    w = draw(st.lists(st.floats(low, 10.0), min_size=k, max_size=k))
    w = np.asarray(w, dtype=np.float64)
    if w.sum() <= 0:
        w[draw(st.integers(0, k - 1))] = 1.0
    return torch.from_numpy(w / w.sum())


@st.composite
def pairs(draw, zeros=True):
    k = draw(st.integers(1, 12))
    return draw(distributions(k, zeros)), draw(distributions(k, zeros))


# ----------------------------------------------------------------------------- scipy parity


@pytest.mark.parametrize("base", [2.0, math.e, 10.0])
def test_entropy_matches_scipy(base):
    g = torch.Generator().manual_seed(0)
    p = torch.rand(7, 5, generator=g, dtype=torch.float64)
    p[0, 2] = 0.0  # an exact zero: 0 log 0 = 0
    p = p / p.sum(-1, keepdim=True)
    ours = info.entropy(p, base=base)
    ref = scipy.stats.entropy(p.numpy(), base=base, axis=-1)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-12)
    assert ours.shape == (7,)


@pytest.mark.parametrize("base", [2.0, math.e])
def test_kl_and_cross_entropy_match_scipy(base):
    g = torch.Generator().manual_seed(1)
    p = torch.rand(4, 3, 6, generator=g, dtype=torch.float64)
    q = torch.rand(4, 3, 6, generator=g, dtype=torch.float64)
    p[..., 0] = 0.0
    p, q = p / p.sum(-1, keepdim=True), q / q.sum(-1, keepdim=True)
    kl_ref = scipy.special.rel_entr(p.numpy(), q.numpy()).sum(-1) / math.log(base)
    np.testing.assert_allclose(info.kl_divergence(p, q, base).numpy(), kl_ref, rtol=1e-12)
    np.testing.assert_allclose(info.kl_divergence(p, q, base).numpy(),
                               scipy.stats.entropy(p.numpy(), q.numpy(), base=base, axis=-1),
                               rtol=1e-12)
    ce_ref = -(scipy.special.xlogy(p.numpy(), q.numpy())).sum(-1) / math.log(base)
    np.testing.assert_allclose(info.cross_entropy(p, q, base).numpy(), ce_ref, rtol=1e-12)


def test_js_matches_scipy():
    g = torch.Generator().manual_seed(2)
    p = torch.rand(5, 8, generator=g, dtype=torch.float64)
    q = torch.rand(5, 8, generator=g, dtype=torch.float64)
    p[1, :4] = 0.0
    q[1, 4:] = 0.0  # disjoint supports: JSD = 1 bit exactly
    p, q = p / p.sum(-1, keepdim=True), q / q.sum(-1, keepdim=True)
    # scipy returns the Jensen-Shannon *distance*, the square root of the divergence.
    ref = jensenshannon(p.numpy(), q.numpy(), base=2, axis=-1) ** 2
    np.testing.assert_allclose(info.js_divergence(p, q).numpy(), ref, rtol=1e-10, atol=1e-15)
    assert info.js_divergence(p[1], q[1]).item() == pytest.approx(1.0, abs=1e-12)


def test_known_values_from_the_notes_example():
    # Example 1.1: boxes of 4 balls, RRRR / RRRB / RRBB.
    boxes = torch.tensor([[1.0, 0.0], [0.75, 0.25], [0.5, 0.5]], dtype=torch.float64)
    h = info.entropy(boxes)
    torch.testing.assert_close(h, torch.tensor([0.0, 0.8112781244591328, 1.0],
                                               dtype=torch.float64))
    assert info.entropy(boxes, base=math.e)[2].item() == pytest.approx(math.log(2))


# ----------------------------------------------------------------------------- zeros, infinities


def test_zero_handling():
    p = torch.tensor([0.5, 0.5, 0.0])
    q = torch.tensor([1.0, 0.0, 0.0])
    assert info.entropy(q).item() == 0.0
    assert info.cross_entropy(p, q).item() == math.inf
    assert info.kl_divergence(p, q).item() == math.inf
    # q covers p's support: finite; p is zero where q is: 0 log 0 contributes nothing
    assert info.kl_divergence(q, p).item() == pytest.approx(1.0)
    assert info.cross_entropy(q, p).item() == pytest.approx(1.0)
    assert math.isfinite(info.js_divergence(p, q).item())


# ----------------------------------------------------------------------------- invalid inputs


@pytest.mark.parametrize(
    "p, match",
    [
        ([0.5, 0.6], "sum to 1"),
        ([1.2, -0.2], "negative"),
        ([float("nan"), 1.0], "NaN"),
        (0.5, "scalar"),
        (torch.zeros(3, 0), "empty"),
    ],
)
def test_invalid_distributions_raise(p, match):
    with pytest.raises(ValueError, match=match):
        info.entropy(p)


def test_shape_mismatch_and_bad_base_raise():
    with pytest.raises(ValueError, match="same shape"):
        info.kl_divergence([0.5, 0.5], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="same shape"):
        info.cross_entropy_from_logits([0.5, 0.5], [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="base"):
        info.entropy([0.5, 0.5], base=1.0)
    with pytest.raises(ValueError, match="logits"):
        info.entropy_from_logits([0.0, float("nan")])


def test_integer_counts_are_not_silently_normalized():
    with pytest.raises(ValueError, match="sum to 1"):
        info.entropy([3, 1])


# ----------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(pairs())
def test_kl_nonnegative_and_ce_is_entropy_plus_kl(pq):
    p, q = pq
    kl = info.kl_divergence(p, q)
    assert kl.item() >= 0.0
    ce = info.cross_entropy(p, q)
    if math.isfinite(ce.item()):
        assert ce.item() == pytest.approx((info.entropy(p) + kl).item(), rel=1e-9, abs=1e-9)
    else:
        assert kl.item() == math.inf


@settings(max_examples=60, deadline=None)
@given(pairs())
def test_js_symmetric_and_at_most_one_bit(pq):
    p, q = pq
    a, b = info.js_divergence(p, q).item(), info.js_divergence(q, p).item()
    assert a == pytest.approx(b, abs=1e-12)
    # js_divergence clamps to [0, log 2], so check the bound on the definition itself,
    # 1/2 D(p || m) + 1/2 D(q || m) (not clamped above), and that js_divergence equals it.
    m = 0.5 * (p + q)
    direct = 0.5 * (info.kl_divergence(p, m) + info.kl_divergence(q, m)).item()
    assert a == pytest.approx(direct, abs=1e-12)
    assert -1e-12 <= direct <= 1.0 + 1e-12


@settings(max_examples=40, deadline=None)
@given(distributions())
def test_entropy_bounds_and_self_divergence(p):
    h = info.entropy(p).item()
    assert -1e-12 <= h <= math.log2(p.numel()) + 1e-9
    assert info.kl_divergence(p, p).item() == pytest.approx(0.0, abs=1e-12)
    assert info.js_divergence(p, p).item() == pytest.approx(0.0, abs=1e-12)
    assert info.cross_entropy(p, p).item() == pytest.approx(h, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-30, 30), min_size=2, max_size=10), st.data())
def test_logit_helpers_agree_with_probability_versions(logits, data):
    z = torch.tensor(logits, dtype=torch.float64)
    q = torch.softmax(z, dim=-1)
    p = data.draw(distributions(len(logits)))
    torch.testing.assert_close(info.cross_entropy_from_logits(p, z),
                               info.cross_entropy(p, q), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(info.kl_divergence_from_logits(p, z),
                               info.kl_divergence(p, q), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(info.entropy_from_logits(z), info.entropy(q),
                               rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------- logits, gradients


def test_cross_entropy_from_logits_matches_torch_in_nats_with_gradients():
    g = torch.Generator().manual_seed(3)
    z = (10 * torch.randn(6, 4, generator=g, dtype=torch.float64)).requires_grad_()
    labels = torch.tensor([0, 3, 1, 2, 2, 0])
    p = torch.nn.functional.one_hot(labels, 4).double()
    ours = info.cross_entropy_from_logits(p, z, base=math.e).mean()
    (g_ours,) = torch.autograd.grad(ours, z)
    ref = torch.nn.functional.cross_entropy(z, labels)
    (g_ref,) = torch.autograd.grad(ref, z)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(g_ours, g_ref)


def test_logit_helpers_finite_for_extreme_and_masked_logits():
    z = torch.tensor([[1000.0, -1000.0, 0.0], [0.0, -math.inf, 0.0]], requires_grad=True)
    p = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5]])
    ce = info.cross_entropy_from_logits(p, z)
    h = info.entropy_from_logits(z)
    torch.testing.assert_close(ce, torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(h, torch.tensor([0.0, 1.0]))
    (grad,) = torch.autograd.grad(ce.sum() + h.sum(), z)
    assert torch.isfinite(grad).all()


# ----------------------------------------------------------------------------- notes errata


def test_minimizing_cross_entropy_not_its_negative():
    """Erratum sec. 1.1.1: the last line reads argmin_w -E_p log(1/q) = H(p, q). But
    -E_p log(1/q) = E_p log q = -H(p, q); its argmin maximizes the cross-entropy. The MLE is
    argmin_w E_p log(1/q) = argmin_w H(p, q)."""
    p = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    q = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    notes_objective = -(p * torch.log2(1 / q)).sum()
    assert notes_objective.item() == pytest.approx(-info.cross_entropy(p, q).item())

    def descend(sign):
        theta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        for _ in range(2000):
            ce = info.cross_entropy_from_logits(p, theta)
            (g,) = torch.autograd.grad(sign * ce, theta)
            with torch.no_grad():
                theta -= 1.0 * g
        return torch.softmax(theta.detach(), 0)

    torch.testing.assert_close(descend(+1.0), p, rtol=0, atol=1e-8)  # argmin H(p, q) = p
    q_notes = descend(-1.0)  # argmin -H(p, q): runs away from the data
    assert info.cross_entropy(p, q_notes).item() > 10 * info.entropy(p).item()
    assert q_notes.argmax().item() == p.argmin().item()


def _huffman_lengths(p: list[float]) -> list[int]:
    """Code-word lengths of a binary Huffman code (reference algorithm, tiny alphabets)."""
    import heapq

    heap = [(pi, i, [i]) for i, pi in enumerate(p)]
    heapq.heapify(heap)
    lengths = [0] * len(p)
    counter = len(p)
    while len(heap) > 1:
        a, _, sa = heapq.heappop(heap)
        b, _, sb = heapq.heappop(heap)
        for s in sa + sb:
            lengths[s] += 1
        heapq.heappush(heap, (a + b, counter, sa + sb))
        counter += 1
    return lengths


@pytest.mark.parametrize("p", [[0.9, 0.1], [0.5, 0.25, 0.125, 0.125], [0.4, 0.3, 0.2, 0.1]])
def test_entropy_bounds_the_code_length_but_is_not_it(p):
    """Erratum sec. 1.1: data "can only be compressed to a size that is exactly the entropy".
    The source-coding theorem gives H <= expected length < H + 1 for the best symbol code;
    equality needs dyadic probabilities (the middle case), e.g. p = (0.9, 0.1) has H = 0.47
    bits but every code spends at least 1 bit per symbol."""
    lengths = _huffman_lengths(p)
    expected = sum(pi * li for pi, li in zip(p, lengths, strict=True))
    h = info.entropy(torch.tensor(p, dtype=torch.float64)).item()
    assert h - 1e-12 <= expected < h + 1
    dyadic = all(math.log2(pi).is_integer() for pi in p)
    assert (abs(expected - h) < 1e-12) == dyadic
