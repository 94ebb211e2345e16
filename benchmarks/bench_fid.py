"""FID of 10,000 against 10,000 Fashion-MNIST images, features and distance included.

Features: the quick-tier zoo CNN (artifact ``cnn-fashion``, ``deepnotes run cnn-fashion --tier
quick`` builds it), layer ``FashionCNN.embed`` (3136-d), BatchNorm folded, channels-last,
fp32, batches of 1000. Rows, each timed ``--repeats`` times (best kept):

  * "deepnotes": :class:`CNNFeatures` on both sets, ``gaussian_moments`` (numpy ``cov``,
    float64) twice, ``frechet_distance`` (float64 Cholesky factors of both covariances, then
    one ``eigvalsh`` of ``L_a^T S_b L_a``);
  * "torchmetrics": ``FrechetInceptionDistance(feature=CNNFeatures)``, update + compute (float64
    sums, non-symmetric ``eigvals(S_a S_b)``);
  * candidates (not library code, for the choice of a faster path): moments as one float64
    GEMM of the centred features, and the trace term from a Cholesky factor ``S_a = L L^T``
    (``L^T S_b L`` is symmetric with the eigenvalues of ``S_a S_b``: one ``eigvalsh``, no
    eigenvectors; needs ``S_a`` positive definite); then also bf16-autocast features and a
    float32 product of the (float64-centred) features, to show what precision buys speed.

    DEEPNOTES_HOME=... .venv/bin/python benchmarks/bench_fid.py [--threads 2] [--repeats 2]

Numbers depend on the machine and on what else runs on it: compare rows within one run.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import torch
from timing import cpu_model

from deepnotes.data import load_fashion_mnist
from deepnotes.metrics.distances import frechet_distance, gaussian_moments
from deepnotes.metrics.generative import CNNFeatures
from deepnotes.zoo import fashion_cnn


def best_of(fn, repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def moments_gemm(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = f.double()
    mu = f.mean(0)
    c = f - mu
    return mu, c.T @ c / (len(f) - 1)


def moments_gemm_fp32(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean in float64, the centred product in float32 (no cancellation: centred first)."""
    mu = f.double().mean(0)
    c = (f.double() - mu).float()
    return mu, (c.T @ c).double() / (len(f) - 1)


def frechet_cholesky(mu1, s1, mu2, s2) -> float:
    chol = torch.linalg.cholesky(s1)
    inner = chol.T @ s2 @ chol
    eig = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp_min(0)
    diff = mu1 - mu2
    return float(diff @ diff + s1.trace() + s2.trace() - 2 * eig.sqrt().sum())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, artifact = fashion_cnn.load("quick")
    features = CNNFeatures(model, artifact.sha256,
                           prepare=partial(fashion_cnn.prepare, channels_last=True))
    x_a, _ = load_fashion_mnist("train", first=10000)
    x_b, _ = load_fashion_mnist("test", first=10000)
    print(f"CPU: {cpu_model()}, {args.threads} threads, torch {torch.__version__}, numpy "
          f"{np.__version__}; artifact cnn-fashion/quick {artifact.sha256[:12]}, "
          f"layer {features.layer}, N = {len(x_a)} vs {len(x_b)}")
    features(x_a[:1000])  # warm-up: oneDNN builds its kernels on first use

    t_feat, (f_a, f_b) = best_of(lambda: (features(x_a), features(x_b)), args.repeats)
    t_mom, (m_a, m_b) = best_of(lambda: (gaussian_moments(f_a), gaussian_moments(f_b)),
                                args.repeats)
    t_dist, value = best_of(lambda: frechet_distance(*m_a, *m_b), args.repeats)
    print(f"deepnotes     FID {value:.6f}  features {t_feat:.2f} s + moments {t_mom:.2f} s + "
          f"distance {t_dist:.2f} s = {t_feat + t_mom + t_dist:.2f} s")

    from torchmetrics.image.fid import FrechetInceptionDistance

    def torchmetrics_fid() -> float:
        metric = FrechetInceptionDistance(feature=features)
        for i in range(0, 10000, 1000):
            metric.update(x_a[i:i + 1000], real=True)
            metric.update(x_b[i:i + 1000], real=False)
        return float(metric.compute())

    t_tm, tm_value = best_of(torchmetrics_fid, args.repeats)
    print(f"torchmetrics  FID {tm_value:.6f}  total {t_tm:.2f} s  (relative difference "
          f"{abs(tm_value - value) / value:.1e})")

    t_gemm, (g_a, g_b) = best_of(lambda: (moments_gemm(f_a), moments_gemm(f_b)), args.repeats)
    try:
        t_chol, chol_value = best_of(lambda: frechet_cholesky(*g_a, *g_b), args.repeats)
        print(f"candidates    FID {chol_value:.6f}  moments (GEMM) {t_gemm:.2f} s + distance "
              f"(Cholesky + eigvalsh) {t_chol:.2f} s; with features "
              f"{t_feat + t_gemm + t_chol:.2f} s")
    except torch.linalg.LinAlgError as err:
        print(f"candidates    moments (GEMM) {t_gemm:.2f} s; Cholesky failed: {err}")
        return

    def features_bf16() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return features(x_a).float(), features(x_b).float()

    t_bf, (h_a, h_b) = best_of(features_bf16, args.repeats)
    t_32, (q_a, q_b) = best_of(lambda: (moments_gemm_fp32(h_a), moments_gemm_fp32(h_b)),
                               args.repeats)
    t_d, fast = best_of(lambda: frechet_cholesky(*q_a, *q_b), args.repeats)
    gap = abs(fast - chol_value) / chol_value
    print(f"candidates    FID {fast:.6f} (relative difference {gap:.1e}) features bf16 "
          f"{t_bf:.2f} s + moments fp32 GEMM {t_32:.2f} s + Cholesky distance "
          f"{t_d:.2f} s = {t_bf + t_32 + t_d:.2f} s")


if __name__ == "__main__":
    main()
