"""Cutting the Fashion CNN for transfer (notes 8.2): which layers are frozen, which are new,
and that the frozen prefix is a fixed function."""

from __future__ import annotations

import pytest
import torch

from deepnotes.conv import FashionCNN
from deepnotes.conv.transfer import CutNetwork, cut, fine_tuned, stages


def _pair():
    torch.manual_seed(0)
    pretrained = FashionCNN((4, 8)).eval()
    # Non-trivial BatchNorm statistics, as after training.
    for m in pretrained.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    fresh = FashionCNN((4, 8), num_classes=7)
    return pretrained, fresh, torch.randn(5, 1, 28, 28)


def test_stages_end_at_each_pooling_and_compose_to_the_feature_stack():
    pretrained, _, x = _pair()
    parts = stages(pretrained)
    assert len(parts) == 2 and all(isinstance(p[-1], torch.nn.MaxPool2d) for p in parts)
    assert torch.equal(parts[1](parts[0](x)), pretrained.features(x))


def test_each_cut_depth_freezes_the_pretrained_prefix_and_trains_the_fresh_rest():
    pretrained, fresh, x = _pair()
    fresh.eval()
    with torch.no_grad():
        scratch = cut(pretrained, fresh, 0).eval()(x)
        assert torch.allclose(scratch, fresh.layer_by_layer(x), atol=1e-6)
        one = cut(pretrained, fresh, 1).eval()(x)
        s = stages(fresh)
        h = s[1](stages(pretrained)[0](x))
        assert torch.allclose(one, fresh.classifier(h.flatten(1)), atol=1e-6)
        two = cut(pretrained, fresh, 2)
        assert torch.allclose(two(x), fresh.classifier(pretrained.embed(x)), atol=1e-5)
        three = cut(pretrained, fresh, 3)
        assert torch.allclose(three(x), three.trainable(pretrained(x)), atol=1e-6)
        assert three.trainable.weight.shape == (7, 10)
    # Trainable parameters: all of them at depth 0, fewer with each stage frozen.
    counts = [sum(p.numel() for p in cut(pretrained, fresh, d).parameters() if p.requires_grad)
              for d in range(4)]
    assert counts[0] == sum(p.numel() for p in fresh.parameters())
    assert counts[0] > counts[1] > counts[2] == 8 * 7 * 7 * 7 + 7 and counts[3] == 10 * 7 + 7


def test_frozen_prefix_gets_no_gradient_stays_in_eval_mode_and_pretrained_is_untouched():
    pretrained, fresh, x = _pair()
    before = {k: v.clone() for k, v in pretrained.state_dict().items()}
    net = cut(pretrained, fresh, 1).train()
    assert not net.frozen.training and net.trainable.training
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net(x).square().mean().backward()
    optimizer.step()
    assert all(p.grad is None for p in net.frozen.parameters())
    assert all(torch.equal(v, before[k]) for k, v in pretrained.state_dict().items())
    # Precomputing the frozen features is the same as running the network.
    with torch.no_grad():
        assert torch.equal(net(x), net.trainable(net.frozen(x)))


def test_fine_tuned_copies_every_pretrained_layer_trainable_with_a_new_classifier():
    pretrained, fresh, x = _pair()
    model = fine_tuned(pretrained, fresh)
    assert all(p.requires_grad for p in model.parameters())
    assert model.classifier is fresh.classifier and model.num_classes == 7
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.embed(x), pretrained.embed(x))
        assert model(x).shape == (5, 7)


def test_bad_depth_or_architecture_raises_value_error():
    pretrained, fresh, _ = _pair()
    with pytest.raises(ValueError, match="depth"):
        cut(pretrained, fresh, 4)
    with pytest.raises(ValueError, match="differ"):
        cut(pretrained, FashionCNN((4, 16)), 1)
    assert isinstance(cut(pretrained, fresh, 2), CutNetwork)
