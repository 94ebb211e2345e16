"""DDP on CPU (``--devices 2``, gloo) ends with the numbers of one process, within the GPU
check's tolerances (scripts/gpu_check.py: 0.5 accuracy points, 0.02 nats, 1% of an ELBO), for
a BatchNorm-free experiment of each loop shape that exists.

* classifier (``fit``): ``mlp-fashion``, in tests/experiments/test_runner.py
  (``test_two_cpu_processes_ddp_match_one``, 0.5 points of test accuracy);
* sequence model: ``gpt-shakespeare`` here (each rank trains on its share of every global
  batch) and ``char-lm`` (each rank carries its share of the streams and their states);
* GAN: not equivalent, not built: chapter 8's GAN loops (two networks, two optimizers, the
  1-D/2-D games and the DCGANs) run in one process and refuse ``--devices 2`` with a clear
  error (tested here).

BatchNorm models are left out on purpose: on CPU each process normalizes with its own share's
statistics (SyncBatchNorm needs a GPU: tests/engine/test_sync_batchnorm.py), so they do not
equal one process with the global batch.
"""

from __future__ import annotations

import pytest

from deepnotes.experiments.runner import run_experiment

MAX_LOSS_GAP = 0.02  # nats, the GPU check's tolerance for a loss


@pytest.mark.parametrize("name", ["gpt-shakespeare", "char-lm"])
def test_two_cpu_processes_match_one_for_a_sequence_model(tmp_path, name):
    over = ["threads=1"] if name == "gpt-shakespeare" else []
    _, one = run_experiment(name, tier="smoke", out=tmp_path, overrides=over)
    _, two = run_experiment(name, tier="smoke", out=tmp_path, overrides=over, devices=2,
                            accelerator="cpu")
    a, b = one["metrics"]["val_loss"], two["metrics"]["val_loss"]
    assert abs(a - b) <= MAX_LOSS_GAP, (a, b)



@pytest.mark.parametrize("name", ["gan-optimal-discriminator", "dcgan-fashion"])
def test_gan_loops_refuse_several_processes_with_a_clear_error(tmp_path, name):
    # Their loops (two networks, two optimizers) run in one process; DDP for GANs is not
    # built, so --devices 2 must say so before any work instead of failing inside the run.
    with pytest.raises(ValueError, match="one process"):
        run_experiment(name, tier="smoke", out=tmp_path, devices=2, accelerator="cpu")
