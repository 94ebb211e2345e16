"""Fashion-MNIST DCGAN: pytorch/examples' recipe against deepnotes' DCGAN, at equal training time.

Rows, one after the other in one run (same threads, same FID evaluation):
  * "pytorch/examples": its DCGAN recipe sized for 28x28 and written here: nz 100, 64 feature
    maps (G: ConvT 100->256 (7x7), 256->128 (14x14), 128->1 (28x28), BatchNorm + ReLU, tanh;
    D: Conv 1->64 (14x14), 64->128 (7x7) + BatchNorm, LeakyReLU 0.2, Conv 128->1 (7x7), sigmoid
    + BCELoss), weights N(0, 0.02) (BatchNorm weights N(1, 0.02)), Adam 2e-4 with beta1 0.5,
    batch 64, a per-sample torch DataLoader (a PIL image per sample, ``ToTensor`` and
    ``Normalize(0.5, 0.5)``), fp32.
  * "deepnotes": the recipe of ``dcgan-fashion`` (:mod:`deepnotes.zoo.gan_fashion`: latent 64,
    width 32, Adam 4e-4 / beta1 0.5, batch 64, in-memory index batches, channels_last, bf16
    autocast, EMA generator), the same loop as the zoo's written without a run context.

Each row trains for ``--seconds`` of wall time (the clock counts training only), then the FID
of 5,000 samples against 5,000 test images on the quick ``cnn-fashion`` features (N = 5,000
on both sides, the experiment's setting). The pytorch/examples script samples its generator in
training mode (BatchNorm with batch statistics); both modes are reported for it and the
better one is compared.

    DEEPNOTES_HOME=... .venv/bin/python benchmarks/bench_gan.py [--seconds 60] [--threads 2]

Numbers depend on the machine and on what else runs on it: compare rows within one run.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from timing import cpu_model
from torch import nn

from deepnotes.data import Batches, load_fashion_mnist
from deepnotes.generative.dcgan import (
    DCGANDiscriminator,
    DCGANGenerator,
    ema_update,
    from_uint8,
    to_uint8,
)
from deepnotes.generative.gan import gan_loss
from deepnotes.metrics.generative import CNNFeatures, ReferenceStatistics
from deepnotes.zoo import fashion_cnn

FID_N = 5000


class ExamplesG(nn.Module):
    def __init__(self, nz: int = 100, ngf: int = 64) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 7, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, 1, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.main(z)


class ExamplesD(nn.Module):
    def __init__(self, ndf: int = 64) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(1, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, 1, 7, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x).view(-1)


def weights_init(m: nn.Module) -> None:
    name = type(m).__name__
    if "Conv" in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


@torch.no_grad()
def fid_of(sample, features: CNNFeatures, reference: ReferenceStatistics) -> float:
    g = torch.Generator().manual_seed(7)
    images = torch.cat([to_uint8(sample(1000, g)) for _ in range(FID_N // 1000)])
    return reference.fid(features(images))


def examples_row(x: torch.Tensor, seconds: float, features, reference) -> dict:
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset

    class PerSample(Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            img = Image.fromarray(x[i].numpy(), mode="L")
            t = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(1, 28, 28)
            return t.float().div(255.0).sub(0.5).div(0.5), 0  # ToTensor + Normalize(0.5, 0.5)

    loader = DataLoader(PerSample(), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    g, d = ExamplesG(), ExamplesD()
    g.apply(weights_init)
    d.apply(weights_init)
    bce = nn.BCELoss()
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    clock, steps = 0.0, 0
    while clock < seconds:
        t0 = time.perf_counter()
        for real, _ in loader:
            b = len(real)
            d.zero_grad()
            err_real = bce(d(real), torch.full((b,), 1.0))
            err_real.backward()
            fake = g(torch.randn(b, 100, 1, 1))
            err_fake = bce(d(fake.detach()), torch.full((b,), 0.0))
            err_fake.backward()
            opt_d.step()
            g.zero_grad()
            bce(d(fake), torch.full((b,), 1.0)).backward()
            opt_g.step()
            steps += 1
            if steps % 50 == 0 and clock + time.perf_counter() - t0 >= seconds:
                break
        clock += time.perf_counter() - t0

    def sample_train_mode(n, gen):
        g.train()
        return g(torch.randn(n, 100, 1, 1, generator=gen))

    def sample_eval_mode(n, gen):
        g.eval()
        return g(torch.randn(n, 100, 1, 1, generator=gen))

    # Eval mode first: sampling in training mode updates BatchNorm's running statistics.
    fid_eval = fid_of(sample_eval_mode, features, reference)
    return {"seconds": clock, "steps": steps, "fid_eval_mode": fid_eval,
            "fid_train_mode": fid_of(sample_train_mode, features, reference)}


def deepnotes_row(x: torch.Tensor, seconds: float, features, reference) -> dict:
    latent, width, ema_decay = 64, 32, 0.999
    objective = gan_loss("non-saturating")
    batches = Batches(x, batch_size=64, seed=0)
    torch.manual_seed(0)
    g = DCGANGenerator(latent, width).to(memory_format=torch.channels_last)
    d = DCGANDiscriminator(width).to(memory_format=torch.channels_last)
    ema = copy.deepcopy(g).eval()
    opt_g = torch.optim.Adam(g.parameters(), lr=4e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=4e-4, betas=(0.5, 0.999))
    noise = torch.Generator().manual_seed(1)
    clock, step = 0.0, 0
    while clock < seconds:
        t0 = time.perf_counter()
        for _ in range(50):
            (xb,) = batches.batch(step)
            real = from_uint8(xb).contiguous(memory_format=torch.channels_last)
            z = torch.randn(len(xb), latent, generator=noise)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                fake = g(z)
                d_loss = objective.discriminator(d(real).float(), d(fake.detach()).float())
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                g_loss = objective.generator(d(fake).float())
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            ema_update(ema, g, min(ema_decay, (1 + step) / (10 + step)))
            step += 1
        clock += time.perf_counter() - t0

    def sample(n, gen):
        ema.eval()
        return ema(torch.randn(n, latent, generator=gen))

    return {"seconds": clock, "steps": step, "fid": fid_of(sample, features, reference)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, _ = load_fashion_mnist("train")
    x_test, _ = load_fashion_mnist("test")
    cnn, artifact = fashion_cnn.load("quick")
    features = CNNFeatures(cnn, artifact.sha256)
    reference = ReferenceStatistics(features(x_test[:FID_N]))
    print(f"{cpu_model()}, {args.threads} threads, torch {torch.__version__}; FID on "
          f"cnn-fashion/quick {artifact.sha256[:12]}, N = {FID_N} vs {FID_N} test images")
    ref = examples_row(x, args.seconds, features, reference)
    ours = deepnotes_row(x, args.seconds, features, reference)
    best = min(ref["fid_train_mode"], ref["fid_eval_mode"])
    print(f"{'row':<18} {'train s':>8} {'steps':>6} {'ms/step':>8} {'FID':>8}")
    print(f"{'pytorch/examples':<18} {ref['seconds']:>8.1f} {ref['steps']:>6} "
          f"{1000 * ref['seconds'] / ref['steps']:>8.1f} {best:>8.1f}  (train-mode sampling "
          f"{ref['fid_train_mode']:.1f}, eval-mode {ref['fid_eval_mode']:.1f})")
    print(f"{'deepnotes':<18} {ours['seconds']:>8.1f} {ours['steps']:>6} "
          f"{1000 * ours['seconds'] / ours['steps']:>8.1f} {ours['fid']:>8.1f}")
    print(f"FID ratio deepnotes / pytorch/examples at equal time: {ours['fid'] / best:.2f}")


if __name__ == "__main__":
    main()
