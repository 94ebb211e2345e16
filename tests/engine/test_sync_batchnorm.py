"""BatchNorm under data parallelism: why it keeps per-process statistics on CPU, and that
``torch.nn.SyncBatchNorm`` on a GPU equals one process's BatchNorm over the global batch.

The GPU check runs in ``pytest -m cuda`` (``scripts/gpu_check.sh``): two processes share one
GPU over gloo (NCCL refuses two ranks on one device; with two GPUs it uses NCCL, one each).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

C, GLOBAL_BATCH, WORLD = 3, 8, 2


def _data():
    g = torch.Generator().manual_seed(0)
    x = 2 + 3 * torch.randn(GLOBAL_BATCH, C, 5, 5, generator=g)
    w = torch.randn(GLOBAL_BATCH, C, 5, 5, generator=g)  # the loss: sum(out * w)
    return x, w


def _bn() -> torch.nn.BatchNorm2d:
    torch.manual_seed(1)
    bn = torch.nn.BatchNorm2d(C)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
    return bn


def _result(bn, x, out) -> dict[str, torch.Tensor]:
    return {"out": out.detach().cpu(), "grad_x": x.grad.cpu(), "grad_w": bn.weight.grad.cpu(),
            "grad_b": bn.bias.grad.cpu(), "mean": bn.running_mean.cpu(),
            "var": bn.running_var.cpu()}


def _one_process() -> dict[str, torch.Tensor]:
    bn = _bn()
    x, w = _data()
    x.requires_grad_(True)
    out = bn(x)
    (out * w).sum().backward()
    return _result(bn, x, out)


def _rank(rank: int, folder: str, sync: bool) -> None:
    """One rank: its half of the global batch through (Sync)BatchNorm; results to a file."""
    gpus = torch.cuda.device_count()
    backend = "nccl" if gpus >= WORLD else "gloo"
    dist.init_process_group(backend, init_method=f"file://{folder}/store", rank=rank,
                            world_size=WORLD)
    try:
        device = torch.device("cuda", rank % gpus)
        torch.cuda.set_device(device)
        bn = _bn()
        if sync:
            bn = torch.nn.SyncBatchNorm.convert_sync_batchnorm(bn)
        bn = bn.to(device)
        x, w = _data()
        share = slice(rank * GLOBAL_BATCH // WORLD, (rank + 1) * GLOBAL_BATCH // WORLD)
        x = x[share].to(device).requires_grad_(True)
        out = bn(x)
        (out * w[share].to(device)).sum().backward()
        for p in (bn.weight, bn.bias):  # what DDP does to parameter gradients (sum here)
            dist.all_reduce(p.grad)
        torch.save(_result(bn, x, out), Path(folder) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _two_processes(tmp_path: Path, sync: bool) -> list[dict[str, torch.Tensor]]:
    folder = tmp_path / ("sync" if sync else "plain")  # a fresh file store per group
    folder.mkdir()
    mp.spawn(_rank, args=(str(folder), sync), nprocs=WORLD, join=True)
    return [torch.load(folder / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def test_syncbatchnorm_refuses_cpu_tensors(tmp_path):
    """On CPU there is no synchronized BatchNorm: DDP over gloo keeps per-process statistics."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0,
                            world_size=1)
    try:
        bn = torch.nn.SyncBatchNorm(C)
        with pytest.raises(ValueError, match="expected input tensor to be on GPU"):
            bn(torch.randn(4, C, 5, 5))
    finally:
        dist.destroy_process_group()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_syncbatchnorm_on_gpu_equals_one_process_over_the_global_batch(tmp_path):
    ref = _one_process()
    ranks = _two_processes(tmp_path, sync=True)
    half = GLOBAL_BATCH // WORLD
    for r, got in enumerate(ranks):
        share = slice(r * half, (r + 1) * half)
        torch.testing.assert_close(got["out"], ref["out"][share], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got["grad_x"], ref["grad_x"][share], rtol=1e-4, atol=1e-5)
        for key in ("grad_w", "grad_b", "mean", "var"):
            torch.testing.assert_close(got[key], ref[key], rtol=1e-4, atol=1e-5)
    # Plain BatchNorm in the same two processes: per-process statistics, not the global ones.
    plain = _two_processes(tmp_path, sync=False)
    assert not torch.allclose(plain[0]["mean"], ref["mean"], atol=1e-3)
