"""deepnotes.recurrent's written-out RNN, LSTM and GRU on a CUDA GPU (``pytest -m cuda``;
skipped without a GPU).

On the GPU torch's layers run cuDNN's fused kernels, a different code path from the CPU's;
the written-out layers must still match them (float64, TF32 cannot enter), and under bfloat16
autocast both must stay within bf16 rounding of their float32 results.
"""

from __future__ import annotations

import pytest
import torch

from deepnotes.recurrent import GRU, LSTM, RNN

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

L, N, H_IN, H = 7, 4, 5, 6
MODELS = {"rnn": (RNN, torch.nn.RNN), "lstm": (LSTM, torch.nn.LSTM), "gru": (GRU, torch.nn.GRU)}


def _pair(name, dtype, **kwargs):
    ours_cls, ref_cls = MODELS[name]
    torch.manual_seed(0)
    ref = ref_cls(H_IN, H, **kwargs).to("cuda", dtype)
    ours = ours_cls(H_IN, H, **kwargs).to("cuda", dtype)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _outputs_and_grads(module, x):
    x = x.detach().clone().requires_grad_(True)
    module.zero_grad()
    output, state = module(x)
    flat = [output, *state] if isinstance(state, tuple) else [output, state]
    sum(o.float().square().sum() for o in flat).backward()
    return [o.detach() for o in flat] + [x.grad] + [p.grad for p in module.parameters()]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("kwargs", [{}, {"num_layers": 2, "bidirectional": True}],
                         ids=["1-layer", "2-layer-bidirectional"])
def test_written_out_layers_match_cudnn_in_float64(name, kwargs):
    ours, ref = _pair(name, torch.float64, **kwargs)
    x = torch.randn(L, N, H_IN, dtype=torch.float64, device="cuda")
    got, want = _outputs_and_grads(ours, x), _outputs_and_grads(ref, x)
    assert all(t.device.type == "cuda" for t in got)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bf16_autocast_stays_near_float32_on_cuda(name):
    ours, ref = _pair(name, torch.float32)
    x = torch.randn(L, N, H_IN, device="cuda")
    for module in (ours, ref):
        with torch.no_grad():
            full = module(x)[0]
            with torch.autocast("cuda", dtype=torch.bfloat16):
                half = module(x)[0]
        assert torch.isfinite(half).all()
        torch.testing.assert_close(half.float(), full, atol=3e-2, rtol=3e-2)
