"""The Fashion-MNIST CNN: exact parameter counts, shapes, and the comparison MLP's size."""

import pytest
import torch

from deepnotes.conv import FashionCNN, cnn_parameter_count, count_parameters, mlp_parameter_count
from deepnotes.nn import MLP


@pytest.mark.parametrize("channels,convs,global_pool", [((32, 64), 1, False),
                                                        ((32, 64, 128), 2, False),
                                                        ((16, 32, 64), 1, True), ((8,), 1, False)])
def test_parameter_count_is_exact(channels, convs, global_pool):
    model = FashionCNN(channels, convs, global_pool)
    assert count_parameters(model) == cnn_parameter_count(channels, convs, global_pool)
    logits = model(torch.zeros(2, 1, 28, 28))
    assert logits.shape == (2, 10)
    assert model.embed(torch.zeros(2, 1, 28, 28)).shape == (2, model.embed_dim)


def test_default_cnn_is_far_smaller_than_the_chapter_2_mlp():
    # conv 1->32: 9*32 + 2*32; conv 32->64: 9*32*64 + 2*64; head 7*7*64*10 + 10.
    assert cnn_parameter_count((32, 64)) == 352 + 18_560 + 31_370 == 50_282
    assert mlp_parameter_count([784, 512, 256, 10]) == 535_818
    assert count_parameters(MLP([784, 512, 256, 10])) == 535_818


def test_folded_batchnorm_gives_the_same_outputs():
    torch.manual_seed(0)
    model = FashionCNN((8, 16), convs_per_stage=2)
    model.train()
    for _ in range(3):  # move the running statistics away from their initial values
        model(torch.randn(16, 1, 28, 28) * 2 + 0.5)
    model.eval()
    folded = model.folded()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-5)


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="stages"):
        FashionCNN((8, 8, 8, 8, 8))
    with pytest.raises(ValueError, match="channels"):
        FashionCNN(())
    with pytest.raises(ValueError, match="expects"):
        FashionCNN((8,))(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="2 layer sizes"):
        mlp_parameter_count([784])


def _pair(channels_last: bool, global_pool: bool = False):
    """Two copies of one network, the second in the given memory format."""
    torch.manual_seed(0)
    model = FashionCNN((8, 16), convs_per_stage=2, global_pool=global_pool)
    with torch.no_grad():  # negative BN scales too: pooling must commute with ReLU, not BN
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(-1.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    twin = FashionCNN((8, 16), convs_per_stage=2, global_pool=global_pool)
    twin.load_state_dict(model.state_dict())
    if channels_last:
        twin = twin.to(memory_format=torch.channels_last)
    return model, twin


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("global_pool", [False, True])
def test_forward_equals_the_layers_run_as_written(channels_last, global_pool):
    """forward() pools before ReLU and reads channels-last maps in stored order; it must
    give layer_by_layer's logits, gradients and BatchNorm statistics, in train and eval."""
    model, twin = _pair(channels_last, global_pool)
    # Images with flat zero regions, like Fashion-MNIST backgrounds: 2x2 windows of equal
    # values (ties) are common there.
    x = torch.randn(6, 1, 28, 28)
    x[:, :, :8] = 0.0
    xt = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    for mode in ("train", "eval"):
        model.train(mode == "train")
        twin.train(mode == "train")
        ref, out = model.layer_by_layer(x), twin(xt)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        g = torch.randn_like(ref)
        (ref * g).sum().backward()
        (out * g).sum().backward()
        # fp32 rounding through two batch-statistics layers: ~1e-5 on gradients of O(1).
        for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=5e-5,
                                       msg=lambda m, name=name: f"{name}: {m}")
            p.grad, q.grad = None, None
    for a, b in zip(model.buffers(), twin.buffers(), strict=True):
        torch.testing.assert_close(b, a)


def test_forward_in_bf16_autocast_stays_close_to_fp32():
    model, twin = _pair(channels_last=True)
    x = torch.randn(8, 1, 28, 28)
    ref = model.layer_by_layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = twin(x.contiguous(memory_format=torch.channels_last))
    assert out.dtype == torch.bfloat16
    # bf16 keeps ~3 significant digits; logits here are O(1).
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max()
