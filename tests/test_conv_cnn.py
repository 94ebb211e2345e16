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
