"""Attention as a soft table look-up (6.2): score functions, masks, soft and hard read-out."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.attention import (
    AdditiveScore,
    Attention,
    BilinearScore,
    DotProductScore,
    ScaledDotProductScore,
    hard_attention,
    masked_softmax,
)

B, Q, N, D = 3, 4, 6, 8


def _scores():
    torch.manual_seed(0)
    return {"dot": DotProductScore(), "scaled": ScaledDotProductScore(),
            "additive": AdditiveScore(D, D, 5), "bilinear": BilinearScore(D, D, 7)}


@pytest.mark.parametrize("kind", ["dot", "scaled", "additive", "bilinear"])
def test_every_score_gives_weights_that_sum_to_one_and_read_the_values(kind):
    score = _scores()[kind]
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(B, Q, D, generator=g), torch.randn(B, N, D, generator=g),
               torch.randn(B, N, 5, generator=g))
    out = Attention(score)(q, k, v)
    assert out.alpha.shape == (B, Q, N) and out.output.shape == (B, Q, 5)
    torch.testing.assert_close(out.alpha.sum(-1), torch.ones(B, Q))
    assert (out.alpha >= 0).all()
    torch.testing.assert_close(out.output, torch.einsum("bqn,bnv->bqv", out.alpha, v))
    single = Attention(score)(q[:, 0], k, v)  # one query per row: (B, d_q)
    assert single.output.shape == (B, 5)
    torch.testing.assert_close(single.output, out.output[:, 0])


def test_score_formulas_written_out_per_key():
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(2, D, generator=g, dtype=torch.float64), torch.randn(
        2, N, D, generator=g, dtype=torch.float64)
    dot = torch.stack([torch.stack([k[b, i] @ q[b] for i in range(N)]) for b in range(2)])
    torch.testing.assert_close(DotProductScore()(q, k), dot)
    torch.testing.assert_close(ScaledDotProductScore()(q, k), dot / math.sqrt(D))
    add = AdditiveScore(D, D, 5).double()
    W = torch.cat([add.key_proj.weight, add.query_proj.weight], dim=1)  # W [k, q]
    expected = torch.stack([torch.stack([
        add.w.weight[0] @ torch.tanh(W @ torch.cat([k[b, i], q[b]]) + add.query_proj.bias)
        for i in range(N)]) for b in range(2)])
    torch.testing.assert_close(add(q, k), expected)
    bil = BilinearScore(D, 3, 7).double()
    k3 = torch.randn(2, N, 3, generator=g, dtype=torch.float64)  # keys of another width
    expected = torch.stack([torch.stack([
        (bil.key_proj.weight @ k3[b, i]) @ (bil.query_proj.weight @ q[b]) / math.sqrt(7)
        for i in range(N)]) for b in range(2)])
    torch.testing.assert_close(bil(q, k3), expected)


def test_scaling_by_sqrt_key_width_keeps_logits_at_unit_scale_whatever_the_width():
    """Erratum 6.2: the variance of <k, q> grows with the key width d_k, not with the number
    of keys N; dividing by sqrt(d_k) (not sqrt(N)) holds it at 1."""
    g = torch.Generator().manual_seed(3)
    stds = {}
    for d in (4, 64, 1024):
        for n in (4, 256):
            q, k = torch.randn(400, d, generator=g), torch.randn(400, n, d, generator=g)
            stds[d, n] = ScaledDotProductScore()(q, k).std().item()
            raw = DotProductScore()(q, k).std().item()
            assert raw == pytest.approx(math.sqrt(d), rel=0.1)  # grows like sqrt(d_k)
    assert all(s == pytest.approx(1.0, abs=0.1) for s in stds.values())
    # The number of keys N leaves the scale alone: sqrt(N) would over-shrink large tables.
    assert stds[64, 4] == pytest.approx(stds[64, 256], abs=0.1)


def test_padded_keys_get_exactly_zero_weight_and_do_not_change_the_output():
    g = torch.Generator().manual_seed(4)
    q, k, v = torch.randn(2, Q, D, generator=g), torch.randn(2, N, D, generator=g), torch.randn(
        2, N, 3, generator=g)
    mask = torch.zeros(2, N, dtype=torch.bool)
    mask[1, 4:] = True
    out = Attention(AdditiveScore(D, D, 5))(q, k, v, key_padding_mask=mask)
    assert torch.all(out.alpha[1, :, 4:] == 0.0)
    torch.testing.assert_close(out.alpha.sum(-1), torch.ones(2, Q))
    # Changing what sits in the padding changes nothing.
    k2, v2 = k.clone(), v.clone()
    k2[1, 4:], v2[1, 4:] = 1e3, -1e3
    att = Attention(AdditiveScore(D, D, 5))
    torch.testing.assert_close(att(q, k2, v2, mask).output[1], att(q, k, v, mask).output[1])


def test_a_query_whose_keys_are_all_masked_returns_zeros_and_finite_gradients():
    scores = torch.randn(2, 3, 5, requires_grad=True)
    mask = torch.zeros(2, 3, 5, dtype=torch.bool)
    mask[0, 1] = True  # every key of query 1 in row 0
    alpha = masked_softmax(scores, mask)
    assert torch.all(alpha[0, 1] == 0) and torch.isfinite(alpha).all()
    torch.testing.assert_close(alpha[1].sum(-1), torch.ones(3))
    (alpha * torch.randn(2, 3, 5)).sum().backward()
    assert torch.isfinite(scores.grad).all() and torch.all(scores.grad[0, 1] == 0)
    values = torch.randn(2, 5, 4)
    assert torch.all((alpha @ values)[0, 1] == 0)


def test_masks_must_be_boolean_and_of_a_matching_shape():
    with pytest.raises(ValueError, match="boolean"):
        masked_softmax(torch.randn(2, 5), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="broadcast"):
        masked_softmax(torch.randn(2, 5), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="same width|one width"):
        DotProductScore()(torch.randn(2, 4), torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="values must be"):
        Attention(DotProductScore())(torch.randn(2, 4), torch.randn(2, 5, 4), torch.randn(2, 6, 1))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 7), st.integers(0, 2**16))
def test_masked_softmax_rows_sum_to_one_or_zero(batch, keys, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, keys, generator=g) * 30
    mask = torch.rand(batch, keys, generator=g) < 0.5
    alpha = masked_softmax(scores, mask)
    sums = alpha.sum(-1)
    for row in range(batch):
        expected = 0.0 if mask[row].all() else 1.0
        assert sums[row].item() == pytest.approx(expected, abs=1e-6)
    assert torch.all(alpha[mask] == 0)


def test_hard_attention_draws_according_to_alpha_and_returns_its_log_probability():
    alpha = torch.tensor([[0.7, 0.2, 0.1, 0.0]]).expand(20000, 4).contiguous()
    values = torch.arange(4.0).view(1, 4, 1).expand(20000, 4, 1)
    out = hard_attention(alpha, values, generator=torch.Generator().manual_seed(5))
    freq = torch.bincount(out.index, minlength=4).float() / 20000
    torch.testing.assert_close(freq, alpha[0], atol=0.015, rtol=0)
    assert torch.equal(out.output[:, 0], out.index.float())  # the sampled value itself
    torch.testing.assert_close(out.log_prob, alpha[0].log()[out.index])


def test_reinforce_with_hard_attention_raises_the_weight_of_the_rewarded_key():
    """The REINFORCE estimate (R - b) d log alpha_j moves alpha towards the key whose value is
    rewarded, although the draw itself has no gradient."""
    logits = torch.zeros(1, 4, requires_grad=True)
    values = torch.eye(4).unsqueeze(0)  # value j is the one-hot of j
    g = torch.Generator().manual_seed(6)
    opt = torch.optim.SGD([logits], lr=0.5)
    baseline = 0.0
    for _ in range(300):
        out = hard_attention(torch.softmax(logits, -1).expand(16, 4), values.expand(16, 4, 4),
                             generator=g)
        reward = out.output[:, 2]  # only key 2 pays
        loss = -((reward - baseline) * out.log_prob).mean()
        baseline = 0.9 * baseline + 0.1 * reward.mean().item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.softmax(logits, -1)[0, 2] > 0.9
