"""Attention masks on a CUDA GPU in bfloat16 (``pytest -m cuda``; skipped without a GPU).

The device-sensitive paths: the additive -inf masks built in the queries' dtype (bf16 under
autocast), SDPA's CUDA kernels on the fused path (their handling of a broadcast mask and of a
query row with every key masked out differs from the CPU kernel's), and ``masked_softmax``'s
``finfo(dtype).min`` fill in bf16. Reference: the same module in float64 on the CPU.
"""

from __future__ import annotations

import pytest
import torch

from deepnotes.attention.multihead import MultiheadAttention
from deepnotes.attention.scores import masked_softmax

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

E, H, N, L = 64, 4, 3, 9
BF16_ATOL = 3e-2  # bf16 keeps 8 bits of mantissa: ~4e-3 relative per operation


def _masks():
    causal = torch.ones(L, L, dtype=torch.bool).triu(1)
    padding = torch.zeros(N, L, dtype=torch.bool)
    padding[1, 6:] = True  # sequence 1 has 6 real tokens
    padding[2, 0] = True  # sequence 2: query row 0 sees only key 0 (masked): an empty row
    return causal, padding


def _run(module, x, causal, padding, device, autocast):
    x = x.to(device).detach().requires_grad_(True)
    module = module.to(device)
    module.zero_grad()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        out, _ = module(x, x, x, key_padding_mask=padding.to(device),
                        attn_mask=causal.to(device), need_weights=False)
    out.float().square().sum().backward()
    grads = [x.grad, *(p.grad for p in module.parameters())]
    return out.float().cpu(), [g.float().cpu() for g in grads]


@pytest.mark.parametrize("fused", [False, True])
def test_masked_self_attention_in_bf16_on_cuda_matches_float64_on_cpu(fused):
    torch.manual_seed(0)
    module = MultiheadAttention(E, H, batch_first=True, fused=fused)
    with torch.no_grad():
        module.out_proj.bias.normal_()  # nonzero, so the empty row's output is visible
    x = torch.randn(N, L, E)
    causal, padding = _masks()
    ref_out, ref_grads = _run(module.double(), x.double(), causal, padding, "cpu", False)
    out, grads = _run(module.float(), x, causal, padding, "cuda", True)
    assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in grads)
    torch.testing.assert_close(out, ref_out.float(), atol=BF16_ATOL, rtol=BF16_ATOL)
    for g, r in zip(grads, ref_grads, strict=True):
        scale = r.abs().max().clamp_min(1.0)
        torch.testing.assert_close(g / scale, r.float() / scale, atol=BF16_ATOL, rtol=0)
    # The empty row (sequence 2, query 0) attends to nothing: out_proj(0) = out_proj.bias.
    bias = module.out_proj.bias.detach().float().cpu()
    torch.testing.assert_close(out[2, 0], bias, atol=1e-2, rtol=1e-2)


def test_fused_and_written_out_paths_agree_on_cuda_in_bf16():
    torch.manual_seed(1)
    module = MultiheadAttention(E, H, batch_first=True).cuda()
    x = torch.randn(N, L, E, device="cuda")
    causal, padding = _masks()
    outs = []
    for fused in (False, True):
        module.fused = fused
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            out, _ = module(x, x, x, key_padding_mask=padding.cuda(), attn_mask=causal.cuda(),
                            need_weights=False)
        outs.append(out.float())
    torch.testing.assert_close(outs[0], outs[1], atol=BF16_ATOL, rtol=BF16_ATOL)


def test_masked_softmax_in_bf16_on_cuda_zeroes_masked_keys_exactly():
    g = torch.Generator().manual_seed(2)
    scores = (10 * torch.randn(N, L, L, generator=g)).to("cuda", torch.bfloat16)
    mask = torch.rand(N, L, L, generator=g) < 0.4
    mask[0, 3] = True  # one row with every key masked
    alpha = masked_softmax(scores, mask.cuda())
    assert alpha.dtype == torch.bfloat16 and alpha.device.type == "cuda"
    alpha = alpha.float().cpu()
    assert torch.isfinite(alpha).all()
    assert (alpha[mask] == 0).all()
    assert (alpha[0, 3] == 0).all()
    live = ~mask.all(-1)
    torch.testing.assert_close(alpha.sum(-1)[live], torch.ones(int(live.sum())), atol=1e-2,
                               rtol=0)
    reference = masked_softmax(scores.double().cpu(), mask).float()
    torch.testing.assert_close(alpha, reference, atol=1e-2, rtol=0)
