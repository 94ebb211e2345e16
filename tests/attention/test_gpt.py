"""The character GPT: causal, tied, exactly counted; the written-out attention equals the
fused one; the KV cache gives the same logits and greedy tokens; temperature 0 is greedy;
top-k samples among the k likeliest; AdamW decays the linear layers' matrices only."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from deepnotes.attention.gpt import (
    GPT,
    KVCache,
    future_mask,
    next_token,
    parameter_count,
    parameter_groups,
    training_flops_per_token,
)
from deepnotes.zoo.gpt_shakespeare import Recipe, batch, learning_rate

V, BLOCK, LAYERS, HEADS, WIDTH = 13, 16, 2, 2, 16


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: on a shared 2-core machine two threads can be 10-100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    kwargs = {"block_size": BLOCK, "n_layer": LAYERS, "n_head": HEADS, "n_embd": WIDTH, **kw}
    return GPT(V, **kwargs).double().eval()


def test_logits_at_t_do_not_depend_on_later_tokens():
    model = _model()
    x = torch.randint(V, (3, BLOCK))
    for t in (0, 5, BLOCK - 2):
        changed = x.clone()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1) % V  # every later token differs
        a, b = model(x), model(changed)
        torch.testing.assert_close(a[:, :t + 1], b[:, :t + 1], rtol=0, atol=1e-12)
        assert not torch.allclose(a[:, t + 1:], b[:, t + 1:])
    assert future_mask(2, past=1).tolist() == [[False, False, True], [False, False, False]]


def test_written_out_attention_equals_the_fused_path_with_gradients():
    model = _model()
    x = torch.randint(V, (2, BLOCK))
    fused = model(x)
    grads = torch.autograd.grad(fused.square().sum(), list(model.parameters()))
    model.fused = False
    assert not model.blocks[0].attn.fused
    written = model(x)
    torch.testing.assert_close(written, fused, rtol=0, atol=1e-12)
    for g, h in zip(torch.autograd.grad(written.square().sum(), list(model.parameters())),
                    grads, strict=True):
        torch.testing.assert_close(g, h, rtol=0, atol=1e-10)


def test_the_head_is_the_token_embedding_tensor_and_is_saved_once():
    model = _model()
    assert model.head_weight is model.token_embedding.weight
    assert [k for k in model.state_dict() if model.state_dict()[k].shape == (V, WIDTH)] == [
        "token_embedding.weight"]
    # Both uses reach the one tensor: the gradient is the embedding's plus the head's.
    x = torch.randint(V, (2, 8))
    model(x).logsumexp(-1).sum().backward()
    unused = torch.tensor(sorted(set(range(V)) - set(x.flatten().tolist())))
    assert unused.numel() and torch.count_nonzero(model.token_embedding.weight.grad[unused]) > 0


def test_parameter_count_is_exact():
    # Per block: 2 layer norms 2 * 2 * 16, qkv 16 * 48 + 48, projection 16 * 16 + 16,
    # MLP 16 * 64 + 64 and 64 * 16 + 16; embeddings 13 * 16 + 16 * 16; final norm 2 * 16.
    per_block = 64 + 816 + 272 + 1088 + 1040
    expected = 2 * per_block + 13 * 16 + 16 * 16 + 32
    assert expected == 7056
    assert sum(p.numel() for p in _model().parameters()) == expected
    assert parameter_count(V, BLOCK, LAYERS, WIDTH) == expected
    assert sum(p.numel() for p in GPT(65).parameters()) == parameter_count(65, 64, 4, 128)
    assert training_flops_per_token(1, 2, 4, 3) == 6 * (12 * 4 + 6) + 6 * 4 * 2


def test_decay_falls_on_the_linear_layers_matrices_only():
    model = _model()
    decay, rest = parameter_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = sorted(names[id(p)] for p in decay["params"])
    assert decayed == sorted(f"blocks.{i}.{m}.weight" for i in range(LAYERS)
                             for m in ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"))
    assert decay["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    assert {"token_embedding.weight", "position_embedding.weight", "ln_f.weight",
            "blocks.0.attn.qkv.bias"} <= {names[id(p)] for p in rest["params"]}
    assert len(decay["params"]) + len(rest["params"]) == len(names)
    # With zero gradients AdamW moves only the decayed tensors: p <- p (1 - lr wd).
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.5), lr=0.1)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for n, p in model.named_parameters():
        factor = 1 - 0.1 * 0.5 if n in decayed else 1.0
        torch.testing.assert_close(p.detach(), before[n] * factor)


def test_one_cached_step_gives_the_logits_of_the_whole_context():
    model = _model()
    x = torch.randint(V, (2, 10))
    full = model(x)
    for fused in (True, False):
        model.fused = fused
        caches = model.new_caches(2)
        first = model(x[:, :6], caches)  # prompt at once
        steps = [model(x[:, t:t + 1], caches) for t in range(6, 10)]  # then one at a time
        torch.testing.assert_close(torch.cat([first, *steps], 1), full, rtol=0, atol=1e-12)
        assert caches[0].length == 10
        two = model.new_caches(2)
        model(x[:, :6], two)
        torch.testing.assert_close(model(x[:, 6:], two), full[:, 6:], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="cannot add"):
        KVCache(1, 1, 2, 1).append(torch.zeros(1, 1, 3, 1), torch.zeros(1, 1, 3, 1))
    with pytest.raises(ValueError, match="exceed block_size"):
        model(torch.zeros(1, BLOCK + 1, dtype=torch.long))


@pytest.mark.parametrize("fused", [True, False])
def test_greedy_generation_gives_the_same_tokens_with_and_without_the_cache(fused):
    """Far past block_size, so the context jumps and the cache is rebuilt several times."""
    model = _model(seed=3, fused=fused)
    prompt = torch.randint(V, (2, 5))
    cached = model.generate(prompt, 4 * BLOCK, temperature=0, use_cache=True)
    plain = model.generate(prompt, 4 * BLOCK, temperature=0, use_cache=False)
    assert cached.shape == (2, 5 + 4 * BLOCK) and torch.equal(cached[:, :5], prompt)
    assert torch.equal(cached, plain)
    assert len(set(cached[0, 5:].tolist())) > 1  # not a trivially constant sequence
    long_prompt = torch.randint(V, (1, BLOCK + 7))  # longer than the context: cropped
    assert torch.equal(model.generate(long_prompt, 20, temperature=0),
                       model.generate(long_prompt, 20, temperature=0, use_cache=False))


def test_temperature_zero_is_the_argmax_at_every_step_and_never_divides():
    model = _model(seed=1)
    prompt = torch.randint(V, (1, 3))
    out = model.generate(prompt, 12, temperature=0.0)
    idx = prompt
    for _ in range(12):  # the greedy loop written out, without the cache
        idx = torch.cat([idx, model(idx[:, -BLOCK:])[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, idx)
    draws = [model.generate(prompt, 12, temperature=0, top_k=k,
                            generator=torch.Generator().manual_seed(s))
             for s, k in ((1, None), (2, None), (3, 1))]
    assert all(torch.equal(d, out) for d in draws)
    assert torch.equal(model.generate(prompt, 12, temperature=1.0, top_k=1), out)  # top-1
    with pytest.raises(ValueError, match=">= 0"):
        model.generate(prompt, 3, temperature=-1.0)


def test_sampling_is_reproducible_and_top_k_keeps_the_k_likeliest():
    model = _model(seed=2)
    prompt = torch.randint(V, (1, 3))

    def draw(seed, **kw):
        return model.generate(prompt, 30, generator=torch.Generator().manual_seed(seed), **kw)

    assert torch.equal(draw(5), draw(5)) and not torch.equal(draw(5), draw(6))
    assert torch.equal(draw(5), draw(5, use_cache=False))  # same draws, same logits
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0, -1.0]])
    g = torch.Generator().manual_seed(0)
    seen = {int(next_token(logits, 1.0, top_k=2, generator=g)) for _ in range(300)}
    assert seen == {1, 3}
    tied = torch.tensor([[1.0, 2.0, 2.0, 0.0]])  # ties at the cut stay in
    assert {int(next_token(tied, 1.0, top_k=1, generator=g)) for _ in range(200)} == {1, 2}
    hot = [int(next_token(logits, 100.0, generator=g)) for _ in range(500)]
    assert len(set(hot)) == 5  # a high temperature flattens towards uniform
    with pytest.raises(ValueError, match="top_k"):
        model.generate(prompt, 3, top_k=0)


def test_learning_rate_warms_up_then_follows_the_cosine_to_its_floor():
    r = Recipe(steps=1000, warmup=100, lr=3e-3, min_lr_fraction=0.1)
    assert math.isclose(learning_rate(0, r), 3e-5)
    assert math.isclose(learning_rate(99, r), 3e-3)
    assert math.isclose(learning_rate(100, r), 3e-3)
    assert math.isclose(learning_rate(999, r), 3e-4)
    assert math.isclose(learning_rate(100 + 899 // 2, r), 3e-4 + 2.7e-3 * 0.5 * (
        1 + math.cos(math.pi * (899 // 2) / 899)))
    lrs = [learning_rate(s, r) for s in range(100, 1000)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_batches_are_windows_and_their_next_characters():
    ids = torch.arange(1000)
    x, y = batch(ids, 5, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 8)
    assert torch.equal(y, x + 1) and torch.equal(x[:, 1:], x[:, :-1] + 1)
    x2, _ = batch(ids, 5, 8, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)


def test_a_tiny_gpt_learns_a_repeating_text():
    torch.manual_seed(0)
    model = GPT(V, block_size=BLOCK, n_layer=1, n_head=2, n_embd=16)
    ids = torch.arange(V).repeat(20)
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.0), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        x, y = batch(ids, 8, BLOCK, g)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5


def test_a_gpt_block_is_a_decoder_block_without_cross_attention():
    """Erratum 6.3.2: GPT stacks decoder blocks with no encoder, hence no cross-attention."""
    import inspect

    block = _model().blocks[0]
    assert [name for name, _ in block.named_children()] == ["ln1", "attn", "ln2", "mlp"]
    assert list(inspect.signature(block.forward).parameters) == ["x", "cache"]


def test_under_bf16_autocast_the_attention_core_runs_in_float32(monkeypatch):
    torch.manual_seed(0)
    model = GPT(V, block_size=BLOCK, n_layer=1, n_head=2, n_embd=16)
    seen = []
    sdpa = F.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        seen.append((q.dtype, torch.is_autocast_enabled("cpu")))
        return sdpa(q, k, v, **kw)

    x = torch.randint(V, (2, BLOCK))
    reference = model(x)
    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert seen == [(torch.float32, False)] and out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, atol=0.05, rtol=0.05)
