"""Pix2Pix (notes 8.18; Isola et al. 2017): a U-Net generator, a PatchGAN discriminator
conditioned on the input, and the generator's loss ``adversarial + lambda_L1 * L1``.

The objective of the notes (``x`` the input image, here an edge map; ``y`` the target image,
the item itself; ``z`` the generator's noise, here dropout)::

    G* = arg min_G max_D  E log D(x, y) + E log(1 - D(x, G(x, z))) + lambda E |y - G(x, z)|_1

with ``lambda = 100`` (:data:`LAMBDA_L1`). Written as two minimized losses on D's logits
(:mod:`deepnotes.generative.gan`): D minimizes half the binary cross-entropy (real pairs = 1,
fake pairs = 0; the paper halves D's objective to slow it against G),
:func:`discriminator_loss`; G minimizes the non-saturating ``-log D(x, G(x, z))`` plus
``lambda * mean |y - G(x, z)|``, :func:`generator_loss`, where either term can be switched off
(L1 alone, cGAN alone: the paper's Table 1).

* :class:`UNetGenerator` -- 28x28 single-channel images, padded to 32x32 (value -1, the black
  background of [-1, 1] images), four stride-2 convolutions down to 2x2 and four stride-2
  transposed convolutions back, each decoder layer concatenating the encoder's feature map of
  the same size (the skip connections); ``skips=False`` gives the plain encoder-decoder the
  paper compares with. Dropout (p = 0.5) in the two innermost decoder layers is the noise
  ``z``: as in the paper, it stays on when translating (:func:`translate`).
* :class:`PatchDiscriminator` -- ``D(x, y)`` on the two images concatenated as channels: two
  stride-2 convolutions and a 1x1 convolution give a 7x7 grid of logits, each judging one
  10x10 patch (:meth:`PatchDiscriminator.receptive_field`; the paper's 70x70 of 256x256 is
  the same fraction of the image, 0.27 vs 0.36). Its loss is the mean over the patches.
* :class:`FullImageDiscriminator` -- the same two convolutions and one linear layer over the
  whole 7x7 map (a DCGAN discriminator, :mod:`deepnotes.generative.dcgan`, conditioned the same
  way): one logit that sees every pixel. Same widths, comparable size: the comparison isolates
  judging patches against judging the image.
* :func:`count_parameters`, :func:`multiply_adds` -- machine-independent size and cost: the
  multiply-adds of every ``Conv2d``, ``ConvTranspose2d`` and ``Linear`` layer, counted by
  forward hooks on one forward pass (exact for these layers; normalization, activations and
  bias additions are not counted).
* :func:`rms_gradient` -- a sharpness measure of uint8 images: the root-mean-square Sobel
  gradient of images scaled to [0, 1]. Blur lowers it: spreading a step edge over ``w``
  pixels divides its summed squared gradient by about ``w`` (the *mean* gradient magnitude
  would not see it: its sum across a monotone edge is the edge's height, whatever the blur).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepnotes.generative.dcgan import from_uint8, to_uint8
from deepnotes.generative.gan import discriminator_bce, non_saturating_generator_loss

LAMBDA_L1 = 100.0  # the notes' (and the paper's) weight of the L1 term
PAD = 2  # 28 -> 32 = 2^5: four halvings reach 2x2


def _architecture(module: nn.Module) -> dict:
    return {"class": f"{type(module).__module__}.{type(module).__name__}",
            "kwargs": dict(module.architecture_kwargs)}


class UNetGenerator(nn.Module):
    """Edge maps ``(N, 1, 28, 28)`` in [-1, 1] -> images ``(N, 1, 28, 28)`` in [-1, 1] (tanh).

    Encoder (convolutions 4x4, stride 2): 32 -> 16 (``w``) -> 8 (``2w``) -> 4 (``4w``) -> 2
    (``4w``, the bottleneck); BatchNorm after all but the first and the last, LeakyReLU(0.2).
    Decoder (transposed convolutions 4x4, stride 2): 2 -> 4 -> 8 -> 16 -> 32; BatchNorm and ReLU
    after all but the last, dropout after the first two, and before each layer but the first
    the encoder's map of the same size is concatenated (``skips=True``).

    Args:
        width: ``w``, the channels of the outermost layer.
        dropout: probability of the two innermost decoder layers' dropout (the noise ``z``).
        skips: concatenate encoder maps into the decoder (U-Net) or not (encoder-decoder).
    """

    def __init__(self, width: int = 32, dropout: float = 0.5, skips: bool = True) -> None:
        super().__init__()
        if width < 1 or not 0 <= dropout < 1:
            raise ValueError(f"need width >= 1 and 0 <= dropout < 1, got {width}, {dropout}")
        self.architecture_kwargs = {"width": width, "dropout": dropout, "skips": skips}
        self.skips = skips
        w = width
        enc = [w, 2 * w, 4 * w, 4 * w]
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip([1, *enc[:-1]], enc, strict=True)):
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=i in (0, 3))]
            if i not in (0, 3):
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True) if i < 3 else nn.ReLU(inplace=True))
            self.down.append(nn.Sequential(*layers))
        dec_out = [4 * w, 2 * w, w]  # decoder maps at 4, 8, 16 pixels
        self.up = nn.ModuleList()
        c_in = enc[3]
        for i, c_out in enumerate(dec_out):
            layers = [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                      nn.BatchNorm2d(c_out)]
            if i < 2:
                layers.append(nn.Dropout(dropout))
            layers.append(nn.ReLU(inplace=True))
            self.up.append(nn.Sequential(*layers))
            c_in = c_out + (enc[2 - i] if skips else 0)
        self.out = nn.Sequential(nn.ConvTranspose2d(c_in, 1, 4, 2, 1), nn.Tanh())

    @property
    def architecture(self) -> dict:
        return _architecture(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"expected edge maps (N, 1, 28, 28), got {tuple(x.shape)}")
        h = F.pad(x, (PAD,) * 4, value=-1.0)
        features = []
        for block in self.down:
            h = block(h)
            features.append(h)
        for i, block in enumerate(self.up):
            h = block(h)
            if self.skips:
                h = torch.cat([h, features[2 - i]], dim=1)
        return self.out(h)[..., PAD:-PAD, PAD:-PAD]


def _trunk(width: int, in_channels: int) -> nn.Sequential:
    """28 -> 14 (``w``) -> 7 (``2w``): the convolutions both discriminators share."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width),
        nn.LeakyReLU(0.2, inplace=True))


def _pair(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if x.shape != y.shape or x.ndim != 4 or x.shape[1:] != (1, 28, 28):
        raise ValueError(f"expected two (N, 1, 28, 28) images, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    return torch.cat([x, y], dim=1)


class PatchDiscriminator(nn.Module):
    """``D(x, y)``: input and output images ``(N, 1, 28, 28)`` -> patch logits ``(N, 1, 7, 7)``.

    Each logit depends on a 10x10 window of the two images (:meth:`receptive_field`), windows
    4 pixels apart. No sigmoid: the losses take logits.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.architecture_kwargs = {"width": width}
        self.features = _trunk(width, 2)
        self.head = nn.Conv2d(2 * width, 1, 1)

    @property
    def architecture(self) -> dict:
        return _architecture(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(_pair(x, y)))

    def receptive_field(self) -> int:
        """Side of the input window one logit sees: ``r <- s r + (k - s)`` over the
        convolutions from the last to the first."""
        r = 1
        convs = [m for m in self.modules() if isinstance(m, nn.Conv2d)]
        for conv in reversed(convs):
            k, s = conv.kernel_size[0], conv.stride[0]
            r = s * r + (k - s)
        return r


class FullImageDiscriminator(nn.Module):
    """``D(x, y)``: input and output images ``(N, 1, 28, 28)`` -> one logit per pair ``(N,)``:
    :class:`PatchDiscriminator`'s convolutions, then a linear layer over the whole 7x7 map."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.architecture_kwargs = {"width": width}
        self.features = _trunk(width, 2)
        self.head = nn.Linear(2 * width * 7 * 7, 1)

    @property
    def architecture(self) -> dict:
        return _architecture(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(_pair(x, y)).flatten(1)).squeeze(-1)


# ----------------------------------------------------------------- losses


def discriminator_loss(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """Half the BCE of real pairs (label 1) and fake pairs (label 0), averaged over patches."""
    return 0.5 * discriminator_bce(real_logit, fake_logit)


def generator_loss(fake_logit: torch.Tensor | None, fake: torch.Tensor, target: torch.Tensor,
                   lambda_l1: float = LAMBDA_L1) -> torch.Tensor:
    """``-E log D(x, G(x, z)) + lambda_l1 * mean |y - G(x, z)|``.

    ``fake_logit=None`` drops the adversarial term (L1 alone); ``lambda_l1=0`` drops the L1
    term (cGAN alone). At least one must remain.
    """
    if fake_logit is None and lambda_l1 <= 0:
        raise ValueError("generator_loss needs the adversarial term, the L1 term or both")
    loss = fake.new_zeros(())
    if fake_logit is not None:
        loss = loss + non_saturating_generator_loss(fake_logit)
    if lambda_l1 > 0:
        loss = loss + lambda_l1 * (fake - target).abs().mean()
    return loss


# ----------------------------------------------------------------- translation and measures


@torch.no_grad()
def translate(generator: UNetGenerator, edges: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """uint8 edge maps ``(N, 28, 28)`` -> uint8 images ``(N, 28, 28)``: BatchNorm with its
    running statistics, dropout on (the paper's noise at test time; it draws from torch's
    global generator, seed it first). The generator's modes are restored."""
    modes = {m: m.training for m in generator.modules()}
    generator.eval()
    for m in generator.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    try:
        device = next(generator.parameters()).device
        parts = [to_uint8(generator(from_uint8(edges[i:i + batch]).to(device)).float().cpu())
                 for i in range(0, len(edges), batch)]
        return torch.cat(parts)
    finally:
        for m, mode in modes.items():
            m.train(mode)


_SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0


def rms_gradient(images: torch.Tensor) -> float:
    """Root-mean-square Sobel gradient ``sqrt(mean(gx^2 + gy^2))`` of uint8 images
    ``(N, H, W)`` scaled to [0, 1] (interior pixels; each kernel has unit gain on a unit
    ramp)."""
    if images.dtype != torch.uint8 or images.ndim != 3:
        raise ValueError(f"expected uint8 images (N, H, W), got {images.dtype} "
                         f"{tuple(images.shape)}")
    x = images.double().unsqueeze(1) / 255.0
    kernel = torch.stack([_SOBEL, _SOBEL.T]).unsqueeze(1).double()  # (2, 1, 3, 3)
    g = F.conv2d(x, kernel)
    return float(g.square().sum(1).mean().sqrt())


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _layer_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0] * module.kernel_size[1]
        return output.numel() * (module.in_channels // module.groups) * k
    if isinstance(module, nn.ConvTranspose2d):
        k = module.kernel_size[0] * module.kernel_size[1]
        return inputs[0].numel() * (module.out_channels // module.groups) * k
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


@torch.no_grad()
def multiply_adds(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-adds of one forward pass of ``model(*inputs)`` (the whole batch) in its
    ``Conv2d``, ``ConvTranspose2d`` and ``Linear`` layers, counted by forward hooks. A
    convolution costs ``output elements x in_channels / groups x kernel area`` (padding taps
    included), a transposed convolution ``input elements x out_channels / groups x kernel
    area``, a linear layer ``output elements x in_features``. FLOPs are about twice this."""
    total = [0]
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)

    def hook(module, args, output):
        total[0] += _layer_macs(module, args, output)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    was = model.training
    model.eval()
    try:
        model(*inputs)
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return total[0]
