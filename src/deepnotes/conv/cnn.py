"""The Fashion-MNIST CNN of notes sec. 4.2, and parameter counts against an MLP.

Stages of ``[conv 3x3 (padding 1, no bias) -> BatchNorm -> ReLU] x convs_per_stage``, each
followed by 2x2 max pooling, then one linear layer on the flattened feature maps (or, with
``global_pool``, on their spatial average). The default:

    28x28x1 -> conv -> 28x28x32 -> pool -> 14x14x32 -> conv -> 14x14x64 -> pool -> 7x7x64
            -> flatten (3136) -> linear -> 10.

Padding 1 keeps the side length (``w - 3 + 2 + 1 = w``, sec. 4.2.2); pooling halves it
(sec. 4.2.3). Convolutions share each kernel over all positions, so a layer costs
``9 c_in c_out`` weights whatever the image size, where a dense layer between the same
activations would cost ``(H W c_in) (H W c_out)``. BatchNorm (Ioffe & Szegedy 2015) is what
lets it train in a few epochs. The layers are torch's fused ones (speed); the written-out
versions in :mod:`deepnotes.conv.layers` are tested against them.

Why this shape (measured, ``benchmarks/README.md``): at an equal training-time budget on a
2-core CPU the two-stage network with a flattened head was more accurate than a three-stage
network with global average pooling (which converged more slowly) or one with a third stage.

``embed(x)`` (the input of the last linear layer) is the feature vector later chapters use
(Inception Score / FID features, distillation teacher).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn


class FashionCNN(nn.Module):
    """BN-CNN classifier for ``in_channels x image_size x image_size`` images.

    Args:
        channels: output channels of each stage, e.g. ``(32, 64)``.
        convs_per_stage: conv-BN-ReLU blocks in each stage.
        global_pool: average the last feature maps over space (else flatten them).
        num_classes: outputs.
        in_channels: image channels.
        image_size: side length of the (square) input; must be divisible by
            ``2 ** len(channels)`` when ``global_pool`` is False.
    Shape:
        ``(N, in_channels, image_size, image_size) -> (N, num_classes)`` logits.
    """

    def __init__(self, channels: Sequence[int] = (32, 64), convs_per_stage: int = 1,
                 global_pool: bool = False, num_classes: int = 10, in_channels: int = 1,
                 image_size: int = 28) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1 or convs_per_stage < 1 or num_classes < 2:
            raise ValueError(f"need >= 1 stage of >= 1 channels, convs_per_stage >= 1 and "
                             f">= 2 classes; got channels={channels}, "
                             f"convs_per_stage={convs_per_stage}, num_classes={num_classes}")
        side = image_size // 2 ** len(channels)
        if side < 1:
            raise ValueError(f"{len(channels)} poolings shrink a {image_size}-pixel image to "
                             f"nothing; use fewer stages")
        self.channels, self.convs_per_stage = channels, convs_per_stage
        self.global_pool, self.num_classes = global_pool, num_classes
        self.in_channels, self.image_size = in_channels, image_size
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out in channels:
            for _ in range(convs_per_stage):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                           nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
                c_in = c_out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.embed_dim = channels[-1] * (1 if global_pool else side * side)
        self.classifier = nn.Linear(self.embed_dim, num_classes)

    @property
    def architecture(self) -> dict:
        """What :func:`deepnotes.artifacts.load_model` needs to rebuild this module."""
        return {"class": f"{type(self).__module__}.{type(self).__name__}",
                "kwargs": {"channels": list(self.channels),
                           "convs_per_stage": self.convs_per_stage,
                           "global_pool": self.global_pool, "num_classes": self.num_classes,
                           "in_channels": self.in_channels, "image_size": self.image_size}}

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """``self.features(x)``, computed with ReLU after each max pooling instead of before.

        The two orders are the same function: ReLU is non-decreasing, so
        ``max(relu(a), relu(b)) = relu(max(a, b))``, and the gradients agree too (the chosen
        maximum is the same element, or the gradient is zero either way). Pooling first puts
        the ReLU on a quarter of the values: 10-15% of a CPU training step here
        (``benchmarks/README.md``).
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"FashionCNN expects (N, {self.in_channels}, H, W), got "
                             f"{tuple(x.shape)}")
        layers, h, i = list(self.features), x, 0
        while i < len(layers):
            if (isinstance(layers[i], nn.ReLU) and i + 1 < len(layers)
                    and isinstance(layers[i + 1], nn.MaxPool2d)):
                h = torch.relu(layers[i + 1](h))
                i += 2
            else:
                h = layers[i](h)
                i += 1
        return h  # (N, C, H / 2^stages, W / 2^stages)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features before the last linear layer, ``(N, embed_dim)``, in ``(C, H, W)`` order."""
        h = self.feature_maps(x)
        return h.mean(dim=(2, 3)) if self.global_pool else h.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.feature_maps(x)
        if self.global_pool:
            return self.classifier(h.mean(dim=(2, 3)))
        if h.is_contiguous() or not h.is_contiguous(memory_format=torch.channels_last):
            return self.classifier(h.flatten(1))  # (N, num_classes)
        # Channels-last maps are stored (N, H, W, C): flattening them in (C, H, W) order
        # would copy them, and their gradient back. Read them in stored order instead and
        # permute the (small) weight the same way; the products summed are the same.
        n, c, side_h, side_w = h.shape
        w = self.classifier.weight.view(self.num_classes, c, side_h, side_w)
        return nn.functional.linear(h.permute(0, 2, 3, 1).reshape(n, -1),
                                    w.permute(0, 2, 3, 1).reshape(self.num_classes, -1),
                                    self.classifier.bias)

    def layer_by_layer(self, x: torch.Tensor) -> torch.Tensor:
        """The same logits as ``forward``, computed literally as written in ``features``
        (ReLU before pooling, flatten in ``(C, H, W)`` order): the reference for parity
        tests and the network a plain training script runs (``benchmarks/bench_cnn.py``)."""
        h = self.features(x)
        h = h.mean(dim=(2, 3)) if self.global_pool else torch.flatten(h, 1)
        return self.classifier(h)

    def folded(self) -> FashionCNN:
        """An inference copy with each BatchNorm folded into the convolution before it.

        In eval mode ``BN(W * x) = (gamma / sigma) W * x + (beta - gamma mu / sigma)``: one
        convolution with scaled kernels and a bias. Same outputs, one pass less over the
        activations (about 25% of CPU inference time here).
        """
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        out = copy.deepcopy(self).eval()
        layers = list(out.features)
        for i, layer in enumerate(layers[:-1]):
            if isinstance(layer, nn.Conv2d) and isinstance(layers[i + 1], nn.BatchNorm2d):
                layers[i] = fuse_conv_bn_eval(layer, layers[i + 1])
                layers[i + 1] = nn.Identity()
        out.features = nn.Sequential(*layers)
        return out


def cnn_parameter_count(channels: Sequence[int], convs_per_stage: int = 1,
                        global_pool: bool = False, num_classes: int = 10, in_channels: int = 1,
                        image_size: int = 28) -> int:
    """Closed-form parameter count of :class:`FashionCNN`.

    Each conv block: ``9 c_in c_out`` weights + ``2 c_out`` BatchNorm scale and shift; the
    head: ``(d + 1) * classes`` with ``d = c_last`` (global pooling) or
    ``c_last * (image_size / 2^stages)^2`` (flattened).
    """
    total, c_in = 0, in_channels
    for c_out in channels:
        for _ in range(convs_per_stage):
            total += 9 * c_in * c_out + 2 * c_out
            c_in = c_out
    side = image_size // 2 ** len(channels)
    d = c_in if global_pool else c_in * side * side
    return total + (d + 1) * num_classes


def mlp_parameter_count(sizes: Sequence[int]) -> int:
    """Parameters of a dense MLP with layer widths ``sizes``: ``sum (n_i + 1) n_{i+1}``."""
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs >= 2 layer sizes, got {list(sizes)}")
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
