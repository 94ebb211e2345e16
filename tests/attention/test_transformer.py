"""The transformer: blocks equal torch's (float64, copied weights), the decoder's self-attention
is causal, its cross-attention reads keys and values from the encoder, greedy decoding starts
from BOS and feeds each prediction back to the decoder, and the model learns a copy task."""

from __future__ import annotations

import pytest
import torch

from deepnotes.attention.transformer import (
    DecoderLayer,
    EncoderLayer,
    PositionwiseFFN,
    Transformer,
    causal_mask,
)

D, H, FF = 16, 4, 24


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: on a shared 2-core machine two threads can be 10-100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _torch_state(state):
    """torch's layer keys -> ours (the FFN's linears live in ``ffn``)."""
    return {("ffn." + k if k.startswith(("linear1.", "linear2.")) else k): v
            for k, v in state.items()}


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_equals_torchs(norm_first):
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=True,
                                              norm_first=norm_first).double()
    for p in theirs.parameters():  # nonzero biases and norm weights too
        torch.nn.init.normal_(p, std=0.3)
    for fused in (False, True):
        ours = EncoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first, fused=fused).double()
        ours.load_state_dict(_torch_state(theirs.state_dict()))
        x = torch.randn(3, 7, D, dtype=torch.float64, requires_grad=True)
        pad = torch.zeros(3, 7, dtype=torch.bool)
        pad[1, 5:] = True
        a = ours(x, key_padding_mask=pad)
        (ga,) = torch.autograd.grad(a.sin().sum(), x)
        b = theirs(x, src_key_padding_mask=pad)
        (gb,) = torch.autograd.grad(b.sin().sum(), x)
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_torchs(norm_first):
    torch.manual_seed(1)
    theirs = torch.nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True,
                                              norm_first=norm_first).double()
    for p in theirs.parameters():
        torch.nn.init.normal_(p, std=0.3)
    ours = DecoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first).double()
    ours.load_state_dict(_torch_state(theirs.state_dict()))
    x = torch.randn(2, 5, D, dtype=torch.float64)
    memory = torch.randn(2, 6, D, dtype=torch.float64)
    mem_pad = torch.tensor([[False] * 6, [False] * 3 + [True] * 3])
    mask = causal_mask(5)
    a = ours(x, memory, tgt_mask=mask, memory_key_padding_mask=mem_pad)
    b = theirs(x, memory, tgt_mask=mask, memory_key_padding_mask=mem_pad)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_ffn_is_relu_of_affine_then_affine():
    ffn = PositionwiseFFN(4, 6).double()
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    w1, b1, w2, b2 = ffn.linear1.weight, ffn.linear1.bias, ffn.linear2.weight, ffn.linear2.bias
    torch.testing.assert_close(ffn(x), torch.relu(x @ w1.T + b1) @ w2.T + b2)
    # position-wise: each position on its own
    torch.testing.assert_close(ffn(x)[:, 1], ffn(x[:, 1:2])[:, 0])


def _model(norm_first=False, seed=0):
    torch.manual_seed(seed)
    return Transformer(11, 13, d_model=D, num_heads=H, num_layers=2, dim_feedforward=FF,
                       dropout=0.0, norm_first=norm_first).double().eval()


@pytest.mark.parametrize("norm_first", [False, True])
def test_the_decoder_is_causal(norm_first):
    model = _model(norm_first)
    src = torch.randint(3, 11, (2, 6))
    tgt = torch.randint(3, 13, (2, 7))
    logits = model(src, tgt)
    assert logits.shape == (2, 7, 13)
    for t in range(7):
        changed = tgt.clone()
        changed[:, t + 1:] = torch.randint(3, 13, changed[:, t + 1:].shape)
        changed_logits = model(src, changed)
        torch.testing.assert_close(changed_logits[:, :t + 1], logits[:, :t + 1])
        if t + 1 < 7:  # and the future does matter where it is allowed to
            assert not torch.allclose(changed_logits[:, t + 1:], logits[:, t + 1:])


def test_cross_attention_takes_keys_and_values_from_the_encoder():
    model = _model()
    src = torch.randint(3, 11, (2, 6))
    tgt = torch.randint(3, 13, (2, 4))
    seen = []
    for layer in model.decoder:
        layer.multihead_attn.register_forward_hook(
            lambda mod, args, out: seen.append(args), with_kwargs=False)
    memory = model.encode(src)
    model.decode(tgt, memory)
    for query, key, value in seen:
        assert key is memory and value is memory  # keys and values: the encoder's output
        assert query.shape == (2, 4, D)  # queries: the decoder's (4 target positions)
    # and the source reaches the decoder's output through that path only
    other = src.clone()
    other[:, 0] = (other[:, 0] - 2) % 8 + 3
    assert not torch.allclose(model(src, tgt), model(other, tgt))


def test_source_padding_is_ignored():
    model = _model()
    src = torch.randint(3, 11, (1, 5))
    padded = torch.cat([src, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    pad = torch.tensor([[False] * 5 + [True] * 3])
    tgt = torch.randint(3, 13, (1, 4))
    torch.testing.assert_close(model(padded, tgt, src_key_padding_mask=pad), model(src, tgt))


def test_pre_and_post_norm_differ_and_pre_norm_has_final_norms():
    post, pre = _model(False), _model(True)
    assert isinstance(pre.encoder_norm, torch.nn.LayerNorm)
    assert isinstance(post.encoder_norm, torch.nn.Identity)
    src, tgt = torch.randint(3, 11, (2, 5)), torch.randint(3, 13, (2, 4))
    assert not torch.allclose(post(src, tgt), pre(src, tgt))


def test_greedy_starts_from_bos_and_feeds_predictions_back_to_the_decoder():
    model = _model()
    src = torch.randint(3, 11, (3, 6))
    calls = {"encode": 0}
    encode = model.encode

    def counting(*a, **k):
        calls["encode"] += 1
        return encode(*a, **k)

    model.encode = counting
    out = model.greedy(src, bos=1, eos=2, max_len=6)
    assert calls["encode"] == 1  # the encoder runs once; outputs go back to the DECODER
    assert out.shape[0] == 3 and out.shape[1] <= 6
    # the same tokens as teacher forcing on [BOS] + its own outputs, position by position
    tgt_in = torch.cat([torch.ones(3, 1, dtype=torch.long), out[:, :-1]], dim=1)
    teacher = model(src, tgt_in).argmax(-1)
    for row in range(3):
        ended = (out[row] == 2).nonzero()
        stop = int(ended[0]) + 1 if len(ended) else out.shape[1]
        assert torch.equal(teacher[row, :stop], out[row, :stop])
        assert (out[row, stop:] == 2).all()


def test_the_transformer_learns_to_copy_short_sequences():
    """Usable for seq2seq: 400 teacher-forced steps (~2 s), then greedy decoding is exact."""
    torch.manual_seed(0)
    model = Transformer(8, 8, d_model=32, num_heads=4, num_layers=1, dim_feedforward=64,
                        dropout=0.0, norm_first=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    bos, eos = 1, 2
    for _ in range(400):
        src = torch.randint(3, 8, (64, 5), generator=g)
        tgt = torch.cat([src, torch.full((64, 1), eos)], dim=1)
        tgt_in = torch.cat([torch.full((64, 1), bos), tgt[:, :-1]], dim=1)
        loss = torch.nn.functional.cross_entropy(model(src, tgt_in).flatten(0, 1),
                                                 tgt.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    src = torch.randint(3, 8, (100, 5), generator=g)
    out = model.greedy(src, bos=bos, eos=eos, max_len=8)
    exact = (out[:, :5] == src).all(1).float().mean().item()
    assert exact >= 0.9, exact
    assert (out[:, 5] == eos).all()
