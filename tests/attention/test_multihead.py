"""deepnotes.attention.MultiheadAttention against torch.nn.MultiheadAttention (float64, the
same weights through load_state_dict), its two paths, and its fully masked rows."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.attention.multihead import MultiheadAttention, softmax_with_empty_rows

E, H, N, L, S = 12, 3, 3, 5, 6


def _pair(bias=True, batch_first=False, seed=0):
    torch.manual_seed(seed)
    theirs = torch.nn.MultiheadAttention(E, H, bias=bias, batch_first=batch_first).double()
    ours = MultiheadAttention(E, H, bias=bias, batch_first=batch_first).double()
    ours.load_state_dict(theirs.state_dict())
    # torch's out_proj bias starts at 0; make it nonzero so the comparison sees it.
    if bias:
        with torch.no_grad():
            theirs.in_proj_bias.normal_()
            theirs.out_proj.bias.normal_()
        ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _inputs(batch_first, seed=1):
    g = torch.Generator().manual_seed(seed)
    shape_q, shape_kv = ((N, L, E), (N, S, E)) if batch_first else ((L, N, E), (S, N, E))
    q = torch.randn(shape_q, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(shape_kv, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(shape_kv, generator=g, dtype=torch.float64, requires_grad=True)
    return q, k, v


PADDING = torch.tensor([[False] * S, [False] * 4 + [True] * 2, [False, True] + [False] * 4])
CAUSAL = torch.ones(L, S, dtype=torch.bool).triu(1)


def test_parameters_have_torchs_names_and_shapes():
    ours, theirs = _pair()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()}
    no_bias, theirs_nb = _pair(bias=False)
    assert set(no_bias.state_dict()) == set(theirs_nb.state_dict()) == {
        "in_proj_weight", "out_proj.weight"}


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("masks", ["none", "padding", "causal", "both"])
@pytest.mark.parametrize("bias", [True, False])
def test_outputs_weights_and_gradients_match_torch(batch_first, masks, bias):
    ours, theirs = _pair(bias=bias, batch_first=batch_first)
    kpm = PADDING if masks in ("padding", "both") else None
    am = CAUSAL if masks in ("causal", "both") else None
    results = []
    for module in (ours, theirs):
        q, k, v = _inputs(batch_first)
        out, w = module(q, k, v, key_padding_mask=kpm, attn_mask=am)
        _, w_heads = module(q, k, v, key_padding_mask=kpm, attn_mask=am,
                            average_attn_weights=False)
        (out.sin().sum() + w.square().sum()).backward()
        grads = [t.grad for t in (q, k, v)] + [p.grad for p in module.parameters()]
        results.append((out, w, w_heads, grads))
    (o1, w1, h1, g1), (o2, w2, h2, g2) = results
    torch.testing.assert_close(o1, o2, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w1, w2, rtol=1e-10, atol=1e-12)
    assert h1.shape == (N, H, L, S)
    torch.testing.assert_close(h1, h2, rtol=1e-10, atol=1e-12)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_per_head_3d_float_and_unbatched_masks_match_torch():
    ours, theirs = _pair(batch_first=True)
    q, k, v = _inputs(True)
    g = torch.Generator().manual_seed(5)
    per_head = torch.rand(N * H, L, S, generator=g) < 0.3
    per_head[:, :, 0] = False  # every row keeps one key (torch would give NaN otherwise)
    additive = torch.randn(L, S, generator=g, dtype=torch.float64)
    for kw in ({"attn_mask": per_head}, {"attn_mask": additive}):
        a, wa = ours(q, k, v, **kw, average_attn_weights=False)
        b, wb = theirs(q, k, v, **kw, average_attn_weights=False)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(wa, wb)
    a, wa = ours(q[0], k[0], v[0], key_padding_mask=PADDING[1])
    b, wb = theirs(q[0], k[0], v[0], key_padding_mask=PADDING[1])
    assert a.shape == (L, E) and wa.shape == (L, S)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(wa, wb)


def test_a_fully_masked_row_gives_zero_weights_and_no_nan_where_torch_gives_nan():
    ours, theirs = _pair(batch_first=True)
    q, k, v = _inputs(True)
    kpm = PADDING.clone()
    kpm[1] = True  # the second sequence is all padding
    out, w = ours(q, k, v, key_padding_mask=kpm, average_attn_weights=False)
    assert torch.equal(w[1], torch.zeros_like(w[1]))
    # no key to attend to: the weighted sum is 0, the output is out_proj(0) = out_proj.bias
    torch.testing.assert_close(out[1], ours.out_proj.bias.expand(L, E))
    out.square().sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
    assert all(torch.isfinite(p.grad).all() for p in ours.parameters())
    # the other rows are torch's exactly
    ref, _ = theirs(q, k, v, key_padding_mask=kpm)
    assert torch.isnan(ref[1]).all()  # the documented difference
    torch.testing.assert_close(out[[0, 2]], ref[[0, 2]])
    nb = MultiheadAttention(E, H, bias=False, batch_first=True).double()
    zero, _ = nb(q, k, v, key_padding_mask=kpm)
    assert torch.equal(zero[1], torch.zeros_like(zero[1]))


def test_softmax_with_empty_rows():
    s = torch.tensor([[0.0, float("-inf")], [float("-inf"), float("-inf")]],
                     requires_grad=True)
    w, empty = softmax_with_empty_rows(s)
    assert torch.equal(w, torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    assert empty.squeeze(1).tolist() == [False, True]
    w.sum().backward()
    assert torch.isfinite(s.grad).all()


@pytest.mark.parametrize("masks", ["none", "padding", "causal", "empty-rows", "float"])
def test_fused_path_agrees_with_the_written_out_path(masks):
    ours, _ = _pair(batch_first=True)
    kpm = {"padding": PADDING, "empty-rows": torch.ones(N, S, dtype=torch.bool)}.get(masks)
    am = {"causal": CAUSAL, "float": torch.randn(L, S, dtype=torch.float64)}.get(masks)
    results = []
    for fused in (False, True):
        ours.fused = fused
        ours.zero_grad()
        q, k, v = _inputs(True)
        out, w = ours(q, k, v, key_padding_mask=kpm, attn_mask=am, need_weights=False)
        assert w is None
        out.sin().sum().backward()
        results.append((out, [t.grad for t in (q, k, v)],
                        [p.grad.clone() for p in ours.parameters()]))
    (o1, g1, p1), (o2, g2, p2) = results
    assert torch.isfinite(o2).all()
    torch.testing.assert_close(o1, o2, rtol=1e-9, atol=1e-11)
    for a, b in zip(g1 + p1, g2 + p2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_the_causal_hint_gives_the_same_function_and_needs_the_mask():
    ours, theirs = _pair(batch_first=True)
    x = torch.randn(N, L, E, dtype=torch.float64)
    causal = torch.ones(L, L, dtype=torch.bool).triu(1)
    ref, _ = theirs(x, x, x, attn_mask=causal, is_causal=True, need_weights=False)
    for fused in (False, True):
        ours.fused = fused
        out, _ = ours(x, x, x, attn_mask=causal, is_causal=True, need_weights=False)
        torch.testing.assert_close(out, ref)
    with pytest.raises(ValueError, match="is_causal"):
        ours(x, x, x, is_causal=True)


def test_the_fused_path_inverts_a_boolean_mask_for_sdpa():
    """SDPA's True means attend; masking out keys 2.. must leave only keys 0, 1."""
    ours, _ = _pair(batch_first=True)
    ours.fused = True
    q, k, v = _inputs(True)
    kpm = torch.zeros(N, S, dtype=torch.bool)
    kpm[:, 2:] = True
    out, _ = ours(q, k, v, key_padding_mask=kpm, need_weights=False)
    trimmed, _ = ours(q, k[:, :2], v[:, :2], need_weights=False)
    torch.testing.assert_close(out, trimmed)


@settings(max_examples=25, deadline=None)
@given(perm=st.permutations(list(range(L))), seed=st.integers(0, 2**16))
def test_self_attention_is_permutation_equivariant(perm, seed):
    """SA(P x) = P SA(x): reordering the inputs reorders the outputs the same way
    (equivariant, not invariant: the outputs are not left unchanged)."""
    torch.manual_seed(seed)
    mha = MultiheadAttention(E, H, batch_first=True).double()
    x = torch.randn(2, L, E, dtype=torch.float64)
    p = torch.tensor(perm)
    y, _ = mha(x, x, x)
    yp, _ = mha(x[:, p], x[:, p], x[:, p])
    torch.testing.assert_close(yp, y[:, p], rtol=1e-10, atol=1e-12)


def test_dropout_acts_on_weights_in_training_only():
    mha = MultiheadAttention(E, H, dropout=0.5, batch_first=True).double()
    q, k, v = _inputs(True)
    mha.eval()
    a, _ = mha(q, k, v)
    b, _ = mha(q, k, v)
    assert torch.equal(a, b)
    mha.train()
    _, w = mha(q, k, v, average_attn_weights=False)
    assert (w == 0).float().mean() > 0.2


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="multiple of"):
        MultiheadAttention(10, 3)
    mha = MultiheadAttention(E, H, batch_first=True)
    x = torch.randn(2, L, E)
    with pytest.raises(ValueError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=torch.zeros(2, L + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="attn_mask"):
        mha(x, x, x, attn_mask=torch.zeros(L, L + 1, dtype=torch.bool))
