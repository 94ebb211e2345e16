"""Transfer learning with the Fashion-MNIST CNN: freeze its first layers, train new ones
(notes sec. 8.2).

    I -> l_1 -> ... -> l_d  (frozen, from the pretrained network)
      -> l~_{d+1} -> ... -> l~_n -> head  (trained on the new task)

:func:`cut` builds this network for a cut depth ``d`` counted in stages of
:class:`~deepnotes.conv.FashionCNN` (a stage is ``[conv-BN-ReLU] x k`` then 2x2 max pooling):

* ``d = 0``: nothing frozen, every layer freshly initialized (training from scratch);
* ``0 < d <= S`` (``S`` stages): the first ``d`` pretrained stages frozen, the remaining
  stages and the classifier freshly initialized and trained (Yosinski et al. 2014's
  ``BnA`` without fine-tuning); ``d = S`` trains only a new linear classifier on the
  pretrained features ("frozen features");
* ``d = S + 1``: the whole pretrained network, its old-task classifier included, frozen; a
  new linear layer maps its old-task logits to the new classes (the most task-specific
  features there are).

:func:`fine_tuned` is the other option the notes name: start from all pretrained layers and
train all of them (with a fresh classifier for the new classes).

Frozen layers stay in eval mode (BatchNorm uses its pretrained statistics), so the frozen
prefix is a fixed function: training code may compute ``frozen(x)`` once per image and train
``trainable`` on it, which is exactly ``CutNetwork.forward``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from deepnotes.conv.cnn import FashionCNN


class Head(nn.Module):
    """Flatten the last feature maps (or average them over space) and apply ``linear``."""

    def __init__(self, linear: nn.Linear, global_pool: bool) -> None:
        super().__init__()
        self.linear, self.global_pool = linear, global_pool

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h.mean(dim=(2, 3)) if self.global_pool else h.flatten(1)  # (N, embed_dim)
        return self.linear(h)  # (N, num_classes)


class CutNetwork(nn.Module):
    """``trainable(frozen(x))`` with ``frozen`` fixed: no gradients, always in eval mode.

    Args:
        frozen: the pretrained prefix (``nn.Identity()`` for none).
        trainable: the new layers.
    """

    def __init__(self, frozen: nn.Module, trainable: nn.Module) -> None:
        super().__init__()
        self.frozen, self.trainable = frozen, trainable
        for p in self.frozen.parameters():
            p.requires_grad_(False)
        self.frozen.eval()

    def train(self, mode: bool = True) -> CutNetwork:
        super().train(mode)
        self.frozen.eval()  # BatchNorm keeps the pretrained statistics
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            h = self.frozen(x)
        return self.trainable(h)


def stages(cnn: FashionCNN) -> list[nn.Sequential]:
    """``cnn.features`` split after each max pooling: one ``nn.Sequential`` per stage."""
    out, current = [], []
    for layer in cnn.features:
        current.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            out.append(nn.Sequential(*current))
            current = []
    return out


def _check_same_architecture(pretrained: FashionCNN, fresh: FashionCNN) -> None:
    same = (pretrained.channels, pretrained.convs_per_stage, pretrained.global_pool,
            pretrained.in_channels, pretrained.image_size) == (
        fresh.channels, fresh.convs_per_stage, fresh.global_pool, fresh.in_channels,
        fresh.image_size)
    if not same:
        raise ValueError(f"pretrained and fresh networks differ: {pretrained.architecture} vs "
                         f"{fresh.architecture}")


def cut(pretrained: FashionCNN, fresh: FashionCNN, depth: int) -> CutNetwork:
    """Freeze the first ``depth`` stages of ``pretrained``; the rest comes from ``fresh``.

    Args:
        pretrained: the trained network (not modified; its layers are copied).
        fresh: a freshly initialized network of the same architecture, with the new task's
            ``num_classes``; its layers past the cut are used (and shared, not copied).
        depth: ``0 .. S + 1`` with ``S = len(pretrained.channels)`` (see module docstring).
    Returns:
        :class:`CutNetwork` mapping ``(N, C, H, W)`` images to ``(N, fresh.num_classes)``.
    """
    _check_same_architecture(pretrained, fresh)
    n_stages = len(pretrained.channels)
    if not 0 <= depth <= n_stages + 1:
        raise ValueError(f"depth must be in 0..{n_stages + 1} for {n_stages} stages, got "
                         f"{depth}")
    if depth == 0:
        return CutNetwork(nn.Identity(), fresh)  # fresh.forward: the same function, faster
    if depth == n_stages + 1:
        return CutNetwork(copy.deepcopy(pretrained),
                          nn.Linear(pretrained.num_classes, fresh.num_classes))
    frozen = nn.Sequential(*copy.deepcopy(stages(pretrained)[:depth]))
    trainable = nn.Sequential(*stages(fresh)[depth:],
                              Head(fresh.classifier, fresh.global_pool))
    return CutNetwork(frozen, trainable)


def fine_tuned(pretrained: FashionCNN, fresh: FashionCNN) -> FashionCNN:
    """A copy of ``pretrained`` with ``fresh``'s classifier (new classes), all trainable."""
    _check_same_architecture(pretrained, fresh)
    model = copy.deepcopy(pretrained)
    model.classifier = fresh.classifier
    model.num_classes = fresh.num_classes
    for p in model.parameters():
        p.requires_grad_(True)
    return model.train()


__all__ = ["Head", "CutNetwork", "stages", "cut", "fine_tuned"]
