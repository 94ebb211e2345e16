"""BatchNorm1d/2d against torch in train and eval mode: outputs, running stats, gradients."""

import pytest
import torch

from deepnotes.nn import BatchNorm1d, BatchNorm2d

CASES = [
    (BatchNorm1d, torch.nn.BatchNorm1d, (16, 5)),
    (BatchNorm1d, torch.nn.BatchNorm1d, (8, 5, 7)),
    (BatchNorm2d, torch.nn.BatchNorm2d, (6, 5, 4, 3)),
]
OPTIONS = [
    dict(),
    dict(momentum=None),
    dict(momentum=0.3, eps=1e-3),
    dict(affine=False),
    dict(track_running_stats=False),
]


def _pair(ours_cls, ref_cls, **kwargs):
    ours = ours_cls(5, **kwargs).double()
    ref = ref_cls(5, **kwargs).double()
    if ref.affine:  # non-trivial gamma and beta, copied across
        with torch.no_grad():
            ref.weight.uniform_(0.5, 1.5)
            ref.bias.uniform_(-1, 1)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _step(module, x, w):
    x = x.clone().requires_grad_()
    out = module(x)
    params = [p for p in module.parameters()]
    grads = torch.autograd.grad((out * w).sum(), [x, *params])
    return out.detach(), grads


@pytest.mark.parametrize("ours_cls, ref_cls, shape", CASES)
@pytest.mark.parametrize("kwargs", OPTIONS)
def test_parity_with_torch_train_then_eval(ours_cls, ref_cls, shape, kwargs):
    torch.manual_seed(0)
    ours, ref = _pair(ours_cls, ref_cls, **kwargs)
    for step in range(4):  # several training batches: running stats accumulate
        x = 3 * torch.randn(*shape, dtype=torch.float64) + step
        w = torch.randn(*shape, dtype=torch.float64)
        out_a, grads_a = _step(ours.train(), x, w)
        out_b, grads_b = _step(ref.train(), x, w)
        torch.testing.assert_close(out_a, out_b)
        for ga, gb in zip(grads_a, grads_b, strict=True):
            torch.testing.assert_close(ga, gb)
    for name, buf in ref.named_buffers():
        torch.testing.assert_close(dict(ours.named_buffers())[name], buf)
    x = torch.randn(*shape, dtype=torch.float64)
    w = torch.randn(*shape, dtype=torch.float64)
    out_a, grads_a = _step(ours.eval(), x, w)
    out_b, grads_b = _step(ref.eval(), x, w)
    torch.testing.assert_close(out_a, out_b)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(ga, gb)


def test_running_var_is_unbiased_and_eval_uses_it():
    bn = BatchNorm1d(1, momentum=1.0, affine=False).double()
    x = torch.tensor([[1.0], [2.0], [3.0], [6.0]], dtype=torch.float64)
    bn.train()(x)
    assert bn.running_mean.item() == pytest.approx(3.0)
    assert bn.running_var.item() == pytest.approx(14.0 / 3.0)  # sum sq dev 14, / (4 - 1)
    y = bn.eval()(torch.tensor([[3.0]], dtype=torch.float64))
    assert y.item() == pytest.approx(0.0, abs=1e-12)  # a single example works in eval mode


def test_train_output_is_normalized_per_channel():
    torch.manual_seed(1)
    bn = BatchNorm2d(3, affine=False).double()
    x = 5 * torch.randn(10, 3, 4, 4, dtype=torch.float64) - 2
    y = bn(x)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64),
                               atol=1e-12, rtol=0)
    torch.testing.assert_close(y.var(dim=(0, 2, 3), correction=0),
                               torch.ones(3, dtype=torch.float64), atol=1e-4, rtol=0)


def test_eps_is_needed_for_a_constant_feature():
    """Erratum sec. 2.6.1: (x - mu) / sqrt(sigma^2) is 0/0 for a constant feature."""
    x = torch.tensor([[1.0, 2.0], [1.0, 5.0], [1.0, -1.0]], dtype=torch.float64)
    notes = BatchNorm1d(2, eps=0.0, affine=False).double()(x)
    assert torch.isnan(notes[:, 0]).all()
    fixed = BatchNorm1d(2, affine=False).double()(x)
    assert torch.isfinite(fixed).all() and (fixed[:, 0] == 0).all()


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        BatchNorm2d(3)(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="C=4"):
        BatchNorm1d(4)(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="more than one value"):
        BatchNorm1d(3)(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm1d(3, momentum=1.5)
