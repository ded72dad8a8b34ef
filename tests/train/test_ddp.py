"""torchrun: 2 processes at batch B end equal to 1 process at batch 2B (no batch norm), and a
DDP checkpoint loads in a single process. Gloo backend, on the CPU."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gankit.checkpoint import Checkpoint, load_checkpoint
from gankit.cli import main
from tests.conftest import launch_once_more_on_teardown, needs_fmnist
from tests.train.test_resume import logged

pytestmark = pytest.mark.distributed  # torchrun launches: test.sh runs them apart, after the rest

COMMON = ["--data", "ring", "--model", "mlp", "--latent-dim", "8", "--width", "16", "--steps", "30",
          "--log-every", "10", "--sample-every", "30", "--checkpoint-every", "15", "--no-progress",
          "--lr-g", "1e-3", "--lr-d", "1e-3", "--d-steps", "2"]


def torchrun(args: list[str], nproc: int = 2) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return launch_once_more_on_teardown(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
         "-m", "gankit", *args], env)


# The cures whose arithmetic spans the batch: the gradient penalty (random mixing weights, a
# double backward through DDP), R1 (a double backward), annealed instance noise (random), PacGAN
# (consecutive samples share a decision) and the unrolled look-ahead (extra D steps in G's step).
CURES = ["--gp", "1", "--r1", "0.1", "--instance-noise", "0.05", "--pack", "2", "--unrolled", "1"]


def ranks_and_one_process(tmp_path: Path, args: list[str]) -> tuple[Checkpoint, Checkpoint]:
    """Train ``args`` as 2 ranks at batch 16 (tmp_path/ddp) and as 1 process at batch 32
    (tmp_path/one); both end at step 30 with the same weights. Returns their last checkpoints."""
    r = torchrun(["train", *args, "--batch-size", "16", "--out", str(tmp_path / "ddp")])
    assert r.returncode == 0, r.stderr[-3000:]
    torch.set_num_threads(1)
    assert main(["train", *args, "--batch-size", "32", "--out", str(tmp_path / "one")]) == 0
    a, b = load_checkpoint(tmp_path / "ddp"), load_checkpoint(tmp_path / "one")
    assert a.step == b.step == 30
    for k in b.model:
        assert torch.allclose(a.model[k], b.model[k], rtol=1e-4, atol=1e-5), k
    return a, b


@pytest.mark.parametrize("extra", [[], CURES], ids=["plain", "cures"])
def test_two_ranks_at_b_equal_one_process_at_2b(tmp_path: Path, extra: list[str]) -> None:
    a, b = ranks_and_one_process(tmp_path, [*COMMON, *extra])
    # 2 D steps per iteration, and with --unrolled 1 one more batch for the look-ahead
    assert a.meta["real_batches"] == b.meta["real_batches"] == (90 if extra else 60)
    # Logged values are means over the ranks: the same numbers as the single process.
    la, lb = logged(tmp_path / "ddp"), logged(tmp_path / "one")
    assert [r["step"] for r in la] == [r["step"] for r in lb] == [10, 20, 30]
    for ra, rb in zip(la, lb, strict=True):
        for key in ("loss_d", "loss_g", "d_real", "d_fake"):
            assert abs(ra[key] - rb[key]) < 1e-3, (key, ra[key], rb[key])
    # Only rank 0 wrote: one set of samples, one report.
    # (a 2-D run's samples: the grid's PNG and the lab's JSON of D's field and the points)
    assert sorted(p.name for p in (tmp_path / "ddp" / "samples").iterdir()) == [
        "step-000000.json", "step-000000.png", "step-000030.json", "step-000030.png"]


# R3GAN's recipe (issue 20) and ADA: the pairing loss reads D(x) in G's step, R2 is a double
# backward at the fakes, the schedules count the global batch's images, and ADA's p moves on the
# signal averaged over the ranks (mlp on images: no batch norm, so the runs are comparable).
R3_ADA = ["--data", "fashion-mnist", "--loss", "rpgan", "--r1", "0.1", "--r2", "0.1",
          "--schedule-images", "640", "--lr-g-end", "1e-4", "--r2-end", "0.01", "--ada",
          "--ada-kimg", "0.5", "--ada-interval", "2", "--diagnose-every", "0", "--precision", "fp32"]


@needs_fmnist
def test_two_ranks_r3gan_recipe_and_ada_equal_one_process(tmp_path: Path) -> None:
    a, b = ranks_and_one_process(tmp_path, [*COMMON, *R3_ADA])
    assert a.train is not None and b.train is not None
    assert 0 < float(b.train["ada.p"]) <= 1  # p moved (0.5k images: 0 -> 1 in 16 iterations)
    assert torch.allclose(a.train["ada.p"], b.train["ada.p"], atol=1e-6)
    la, lb = logged(tmp_path / "ddp"), logged(tmp_path / "one")
    for ra, rb in zip(la, lb, strict=True):  # the scheduled values reached the same ends
        for key in ("lr_g", "gamma_r2", "ada_p"):
            assert abs(ra[key] - rb[key]) < 1e-6, (key, ra[key], rb[key])
    assert abs(la[-1]["lr_g"] - 1e-4) < 1e-9 and abs(la[-1]["gamma_r2"] - 0.01) < 1e-9


def test_ddp_checkpoint_resumes_under_ddp_and_loads_in_one_process(tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    r = torchrun(["train", *COMMON, "--steps", "15", "--batch-size", "16", "--out", str(run)])
    assert r.returncode == 0, r.stderr[-3000:]
    r = torchrun(["train", "--resume", str(run), "--steps", "30"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert load_checkpoint(run).step == 30
    # Single process: sample from it, and keep training it.
    assert main(["sample", str(run), "-n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["train", "--resume", str(run), "--steps", "40"]) == 0
    assert load_checkpoint(run).step == 40


def test_a_launch_is_run_once_more_only_for_gloos_teardown_abort_after_the_report(tmp_path: Path) -> None:
    out, tries = tmp_path / "run", tmp_path / "tries"
    # a stand-in for torchrun: finishes the run (report.html), then aborts as gloo's teardown does,
    # the first time only; it counts its launches in ``tries``
    script = (f"import pathlib, sys; t = pathlib.Path({str(tries)!r}); n = len(t.read_text()) if t.exists() else 0; "
              f"t.write_text('x' * (n + 1)); o = pathlib.Path({str(out)!r}); assert not o.exists(); o.mkdir(); "
              "(o / 'report.html').write_text(''); "
              "sys.stderr.write('terminate called without an active exception' if n == 0 else ''); sys.exit(n == 0)")
    r = launch_once_more_on_teardown([sys.executable, "-c", script, "--out", str(out)], dict(os.environ))
    assert r.returncode == 0 and tries.read_text() == "xx"
    # a failure before the report, or any other failure, is not retried
    tries.unlink()
    shutil.rmtree(out)
    r = launch_once_more_on_teardown([sys.executable, "-c", "import sys; sys.exit(3)", "--out", str(out)],
                                     dict(os.environ))
    assert r.returncode == 3
