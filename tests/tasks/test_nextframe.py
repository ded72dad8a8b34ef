"""Next-frame prediction (Mathieu, Couprie & LeCun 2016): the losses and scores against hand
computations, the copy-last baseline on a static sequence, the flags a next-frame run refuses,
the L2-only twin, and ``gankit predict`` on a tiny trained run, with bad sequences named in one
line. (The task's lifecycle tests are generated from the registry: tests/train/test_tasks.py.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.api import train_config
from gankit.cli import main
from gankit.config import build_config
from gankit.errors import GankitError
from gankit.losses.nextframe import gdl_loss, lp_loss
from gankit.metrics.nextframe import copy_last, score_rollouts, sharpness
from gankit.metrics.translation import PSNR_CAP
from gankit.models.flow import warp
from gankit.models.nextframe import FRAME_GS, MAX_FLOW, build_nextframe, pyramid, rollout
from gankit.resolve import resolve
from tests.conftest import needs_fmnist

TINY = {"data": "mfmnist-small", "model": "nextframe", "width": 4, "sequences": 32, "steps": 4, "batch_size": 4,
        "log_every": 2, "sample_every": 4, "checkpoint_every": 4, "progress": False, "precision": "fp32"}


def test_gdl_and_lp_against_a_hand_computation() -> None:
    target = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])  # a vertical edge: horizontal gradients 1, 1
    pred = torch.tensor([[[[0.0, 0.5], [0.0, 0.0]]]])  # horizontal gradients 0.5, 0; vertical 0, 0.5
    # horizontal: |1 - 0.5| + |1 - 0| = 1.5; vertical: |0 - 0| + |0 - 0.5| = 0.5
    assert float(gdl_loss(pred, target)) == pytest.approx(2.0)
    assert float(gdl_loss(pred, target, alpha=2)) == pytest.approx(0.25 + 1 + 0.25)
    assert float(gdl_loss(target, target)) == 0.0
    assert float(lp_loss(pred, target, 1)) == pytest.approx(0.5 + 1)  # summed over the frame
    assert float(lp_loss(pred, target, 2)) == pytest.approx(0.25 + 1)
    two = torch.cat([pred, target])  # mean over the batch: (1.5 + 0) / 2
    assert float(lp_loss(two, torch.cat([target, target]), 1)) == pytest.approx(0.75)


def test_copy_last_on_a_static_sequence_is_perfect() -> None:
    g = torch.Generator().manual_seed(0)
    frame = torch.rand(3, 1, 1, 32, 32, generator=g) * 2 - 1
    seq = frame.expand(-1, 6, -1, -1, -1)  # (3, 6, 1, 32, 32): nothing moves
    scores = score_rollouts(copy_last(seq[:, :4], 2), seq[:, 4:])
    assert scores["mse"] == 0 and scores["mae"] == 0
    assert scores["ssim"] == pytest.approx(1.0) and scores["ssim@2"] == pytest.approx(1.0)
    assert scores["psnr"] == PSNR_CAP and scores["sharp"] == PSNR_CAP


def test_the_scores_of_a_moved_pixel_by_hand() -> None:
    a = -torch.ones(1, 1, 1, 16, 16)
    b = a.clone()
    a[..., 5, 5] = 1  # a white pixel at (5, 5) ...
    b[..., 5, 6] = 1  # ... moved one to the right
    s = score_rollouts(copy_last(a, 1), b)
    # OpenSTL's MSE: squared error summed over the frame's pixels in [0, 1]: two pixels off by 1
    assert s["mse@1"] == pytest.approx(2.0) and s["mae@1"] == pytest.approx(2.0)
    assert s["psnr@1"] == pytest.approx(10 * math.log10(256 / 2))
    # sharpness: grad_i + grad_j of each frame (15x15) differ at a few pixels around the move
    x, y = (a[0, 0, 0] + 1) / 2, (b[0, 0, 0] + 1) / 2
    gx = lambda t: (t[1:, 1:] - t[:-1, 1:]).abs() + (t[1:, 1:] - t[1:, :-1]).abs()  # noqa: E731
    hand = 10 * math.log10(1 / float((gx(y) - gx(x)).abs().mean()))
    assert float(sharpness(a[0], b[0])) == pytest.approx(hand)


def test_g_predicts_a_frame_at_every_scale_and_rolls_out() -> None:
    G, D = build_nextframe(4, (1, 32, 32), 4)
    x = torch.rand(2, 4, 32, 32) * 2 - 1
    preds = G.pyramid(x)
    assert [tuple(p.shape) for p in preds] == [(2, 1, 4, 4), (2, 1, 8, 8), (2, 1, 16, 16), (2, 1, 32, 32)]
    assert all(p.abs().max() <= 1 for p in preds)
    assert D(x, preds).shape == (2, 4)  # one logit per scale
    out = rollout(G, x[:, :, None], 3)
    assert out.shape == (2, 3, 1, 32, 32)
    # the second frame is predicted from the first prediction: G on the shifted window
    window = torch.cat([x[:, 1:], out[:, 0]], 1)
    with torch.no_grad():
        assert torch.allclose(G.eval()(window), out[:, 1], atol=1e-6)
    with pytest.raises(GankitError, match="multiples of 8"):
        build_nextframe(4, (1, 30, 30))


def test_warp_reads_each_pixel_where_the_flow_points() -> None:
    frame = -torch.ones(1, 1, 8, 8)
    frame[..., 3, 5] = 1
    assert torch.equal(warp(frame, torch.zeros(1, 2, 8, 8)), frame)  # no flow: the frame itself
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0], flow[:, 1] = 2 / 8, -2 / 8  # read one pixel to the right and one up: the image moves left, down
    moved = -torch.ones(1, 1, 8, 8)
    moved[..., 4, 4] = 1
    torch.testing.assert_close(warp(frame, flow), moved, atol=1e-5, rtol=0)


def test_the_flow_g_moves_the_last_frame_or_draws_by_its_mask() -> None:
    """--frame-g flow: Y_k = mask * warp(last_k, flow) + (1 - mask) * drawn at every scale. With its
    last layers' weights zeroed, a mask of 1 and no flow, G returns the last input frame (not
    another one of the context) at every scale; with a mask of 0, the drawn frame (tanh(0) = 0)."""
    G, D = build_nextframe(3, (1, 32, 32), 4, "flow")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert D(x, G.pyramid(x)).shape == (2, 4)

    def set_mask(bias: float) -> None:
        for scale in G.scales:
            last = scale.net[-1]  # the convolution to drawn (1), flow (2), mask (1)
            torch.nn.init.zeros_(last.weight)
            torch.nn.init.zeros_(last.bias)
            last.bias.data[-1] = bias  # the mask's pre-activation: sigmoid(30) = 1 in float32

    set_mask(30.0)
    with torch.no_grad():
        for pred, truth in zip(G.pyramid(x), pyramid(x[:, -1:]), strict=True):
            torch.testing.assert_close(pred, truth, atol=1e-5, rtol=0)
        set_mask(-30.0)
        assert all(float(p.abs().max()) < 1e-6 for p in G.pyramid(x))
    G.start()  # from the start: the copy-last baseline, 95 % moved pixels with no flow
    with torch.no_grad():
        for pred, truth in zip(G.pyramid(x), pyramid(x[:, -1:]), strict=True):
            torch.testing.assert_close(pred, 0.95257 * truth, atol=1e-4, rtol=0)
    with torch.no_grad():  # a flow asked far beyond its bound moves the frame by MAX_FLOW, no more
        for scale in G.scales:
            scale.net[-1].bias[1:3] = 1e4
            scale.net[-1].bias[3] = 30.0  # all moved pixels
        moved = [warp(t, torch.full_like(t[:, :1], MAX_FLOW).expand(-1, 2, -1, -1)) for t in pyramid(x[:, -1:])]
        for pred, truth in zip(G.pyramid(x), moved, strict=True):
            torch.testing.assert_close(pred, truth, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="frame_g"):
        build_nextframe(3, (1, 32, 32), 4, "warp")


def test_frame_g_choices_are_the_generators() -> None:
    for g in FRAME_GS:
        assert resolve(build_config(overrides={"model": "nextframe", "frame_g": g})).nextframe.frame_g == g
    with pytest.raises(GankitError, match="frame_g"):
        build_config(overrides={"model": "nextframe", "frame_g": "warp"})


def test_nextframe_flags_belong_to_nextframe_runs() -> None:
    with pytest.raises(GankitError, match="nextframe.gdl_weight is for next-frame prediction"):
        resolve(build_config(overrides={"model": "dcgan", "gdl_weight": 0.5}))
    with pytest.raises(GankitError, match="model.latent_dim does not apply to model.arch=nextframe"):
        resolve(build_config(overrides={"model": "nextframe", "latent_dim": 8}))
    with pytest.raises(GankitError, match="train.loss 'wgan-gp' does not suit"):
        resolve(build_config(overrides={"model": "nextframe", "loss": "wgan-gp"}))
    cfg = resolve(build_config(overrides={"model": "nextframe"}))
    assert (cfg.data.source, cfg.train.ema, cfg.nextframe.adv_weight) == ("mfmnist", 0.999, 0.05)
    assert "data.source" in cfg.provenance.resolved and "train.ema" not in cfg.provenance.resolved


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST is not installed")
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("nf") / "run"
    train_config(build_config(overrides={**TINY, "out": str(out), "eval_every": 4, "eval_n": 16}))
    return out


@needs_fmnist
def test_a_tiny_run_trains_scores_and_saves_its_strips(run: Path) -> None:
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in events if "eval_seconds" in e]
    assert evals and {"mse", "mae", "ssim", "psnr", "sharp", "ssim@1"} <= evals[-1].keys()
    assert all(math.isfinite(e["loss_lp"]) and e["loss_gdl"] > 0 for e in events if "loss_lp" in e)
    with Image.open(run / "samples" / "step-000004.png") as im:
        assert im.width > 5 * 32  # a strip of context + horizon frames per row


@needs_fmnist
def test_the_l2_only_twin_trains_without_d(tmp_path: Path) -> None:
    train_config(build_config(overrides={**TINY, "steps": 2, "out": str(tmp_path / "l2"), "adv_weight": 0.0,
                                         "gdl_weight": 0.0, "lp": 2}))
    events = [json.loads(line) for line in (tmp_path / "l2" / "metrics.jsonl").read_text().splitlines()]
    logged = [e for e in events if "loss_lp" in e]
    assert logged and all(e["loss_d"] == 0 and e["loss_gdl"] == 0 and e["loss_g"] == e["loss_lp"] for e in logged)


@needs_fmnist
def test_predict_writes_a_gif_of_context_plus_horizon_frames(run: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pred.gif"
    assert main(["predict", str(run), "test:2", "--horizon", "3", "--out", str(out), "--scale", "1"]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 4 + 3 and im.size == (2 * 32 + 2, 32 + 3)  # input | prediction (truth unknown)
    assert main(["predict", str(run), "test:2", "--horizon", "1", "--out", str(out), "--scale", "1"]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 5 and im.size == (3 * 32 + 4, 32 + 3)  # input | prediction | truth
    # a folder of frames of the user's, scaled to the run's 32x32
    seq = tmp_path / "seq"
    seq.mkdir()
    for i in range(6):
        Image.fromarray(np.roll(np.eye(40, dtype=np.uint8) * 255, i, 1)).save(seq / f"f{i}.png")
    assert main(["predict", str(run), str(seq), "--horizon", "2", "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 6


@needs_fmnist
def test_bad_sequences_exit_2_naming_the_file(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = tmp_path / "short"
    short.mkdir()
    for i in range(2):
        Image.fromarray(np.full((32, 32), 50 * i, np.uint8)).save(short / f"{i}.png")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for i, side in enumerate((32, 32, 32, 16)):
        Image.fromarray(np.zeros((side, side), np.uint8)).save(mixed / f"{i}.png")
    broken = tmp_path / "broken.gif"
    broken.write_bytes(b"GIF89a\x00\x01")
    cases = [(short, "short: 2 frame(s), shorter than the run's context of 4"),
             (mixed, "3.png: a frame of 16x16"), (broken, "broken.gif: cannot decode this video")]
    for path, message in cases:
        capsys.readouterr()
        assert main(["predict", str(run), str(path), "--out", str(tmp_path / "p.gif")]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert main(["predict", str(run), "test:0", "--out", str(tmp_path / "p.png")]) == 2


@needs_fmnist
def test_eval_scores_the_rollouts_beside_copy_last(run: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(run), "--n", "8", "--json"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert {"mse@1", "ssim@1", "sharp", "copy_last_ssim@1", "copy_last_mse"} <= values.keys() and values["n"] == 8
    assert main(["eval", str(run), "--n", "8"]) == 0
    assert "(copy-last frame) in brackets" in capsys.readouterr().out
    assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2
    assert "gankit predict" in capsys.readouterr().err


def test_training_on_a_folder_with_a_short_sequence_exits_2_naming_it(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for name, n in (("long", 6), ("tiny", 3)):
        (tmp_path / "videos" / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((16, 16), 40 * i, np.uint8)).save(tmp_path / "videos" / name / f"{i}.png")
    args = ["train", "--model", "nextframe", "--data", str(tmp_path / "videos"), "--image-size", "16",
            "--context", "4", "--steps", "1", "--no-progress", "--out", str(tmp_path / "r")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "videos/tiny: 3 frame(s), shorter than the 5 needed" in err and "Traceback" not in err
    # without the short one it trains, one channel (gray frames), a context of 4 and a horizon of 1
    import shutil

    shutil.rmtree(tmp_path / "videos" / "tiny")
    assert main([*args[:-2], "--width", "4", "--batch-size", "2", "--out", str(tmp_path / "r2")]) == 0
    saved = (tmp_path / "r2" / "config.yaml").read_text()
    assert "context: 4" in saved and "horizon: 1" in saved and "channels: 1" in saved


@needs_fmnist
def test_rollout_training_predicts_from_its_own_predictions_and_means_the_losses(tmp_path: Path) -> None:
    from gankit.tasks.nextframe import NextFrameTask
    from gankit.train.task import Context

    torch.set_num_threads(1)
    cfg = resolve(build_config(overrides={**TINY, "context": 2, "rollout": 3, "out": str(tmp_path / "r"),
                                          "adv_weight": 0.0}))
    task = NextFrameTask(Context(cfg, torch.device("cpu")))
    task.setup()
    for step in range(20):  # an untrained G draws much the same frame from any input
        task.iteration(step)
    clips = task.clips(20)
    assert clips.shape == (4, 5, 1, 32, 32)  # context 2 + rollout 3
    G = task.G
    # by hand: each frame predicted from the two before it, G's own predictions from the second on
    window, lp, gdl = clips[:, :2], 0.0, 0.0
    for j in range(3):
        pyr = G.pyramid(window.flatten(1, 2))
        targets = pyramid(clips[:, 2 + j])  # the true frame at the four scales
        lp += sum(lp_loss(p, y, 1).item() for p, y in zip(pyr, targets, strict=True)) / 3
        gdl += sum(gdl_loss(p, y).item() for p, y in zip(pyr, targets, strict=True)) / 3
        window = torch.cat([window[:, 1:], pyr[-1][:, None]], 1)
    # teacher forcing (the true frames as every input) gives another loss: the rollout is what is used
    teacher = sum(lp_loss(p, y, 1).item() / 3 for j in range(3)
                  for p, y in zip(G.pyramid(clips[:, j:j + 2].flatten(1, 2)), pyramid(clips[:, 2 + j]), strict=True))
    assert teacher != pytest.approx(lp, rel=1e-4)  # 1.4e-3 apart here; the check below is to 1e-5
    out = task.iteration(20)
    assert out["loss_lp"].item() == pytest.approx(lp, rel=1e-5)
    assert out["loss_gdl"].item() == pytest.approx(gdl, rel=1e-5)


@needs_fmnist
def test_a_rollout_longer_than_the_sequences_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", "mfmnist-small", "--model", "nextframe", "--rollout", "2", "--steps", "1",
                 "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "--context + --rollout = 4 + 2 frames; lower --rollout" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@needs_fmnist
def test_a_run_resumed_with_a_longer_rollout_trains_on_its_rollouts(tmp_path: Path) -> None:
    import shutil

    from gankit.checkpoint import load_checkpoint
    from gankit.train.rundir import RunDir

    torch.set_num_threads(1)
    one, two = tmp_path / "one", tmp_path / "two"
    train_config(build_config(overrides={**TINY, "context": 2, "steps": 2, "checkpoint_every": 2, "out": str(one)}))
    shutil.copytree(one, two)
    # a curriculum: one step ahead first, then on its rollouts (the same networks)
    assert main(["train", "--resume", str(two), "--steps", "4", "--rollout", "2", "--no-progress"]) == 0
    assert main(["train", "--resume", str(one), "--steps", "4", "--no-progress"]) == 0
    assert (RunDir(one).config().nextframe.rollout, RunDir(two).config().nextframe.rollout) == (1, 2)
    a, b = load_checkpoint(one), load_checkpoint(two)
    assert a.step == b.step == 4
    assert any(not torch.equal(a.model[k], b.model[k]) for k in a.model if k.startswith("G."))


@needs_fmnist
def test_a_curriculum_in_one_run_equals_training_then_resuming_on_rollouts(tmp_path: Path) -> None:
    """--rollout 2 --rollout-from 2 trains one frame ahead for steps 0-1, then on rollouts: the same
    weights, bit for bit, as training 2 steps and resuming with --rollout 2 (what
    configs/mfmnist-nextframe-flow.yaml's results were measured with), and not those of rollouts
    from the start."""
    from gankit.checkpoint import load_checkpoint

    torch.set_num_threads(1)
    both, from_start = tmp_path / "both", tmp_path / "from-start"
    base = {**TINY, "context": 2, "steps": 2, "checkpoint_every": 2, "frame_g": "flow"}
    train_config(build_config(overrides={**base, "out": str(both)}))
    assert main(["train", "--resume", str(both), "--steps", "4", "--rollout", "2", "--no-progress"]) == 0
    curriculum = train_config(build_config(overrides={**base, "steps": 4, "rollout": 2, "rollout_from": 2,
                                                      "out": str(tmp_path / "one-run")}))
    train_config(build_config(overrides={**base, "steps": 4, "rollout": 2, "out": str(from_start)}))
    a, b, c = (load_checkpoint(r) for r in (both, curriculum.run_dir, from_start))
    assert a.step == b.step == c.step == 4
    assert all(torch.equal(a.model[k], b.model[k]) for k in a.model)
    assert any(not torch.equal(a.model[k], c.model[k]) for k in a.model if k.startswith("G."))


def test_a_curriculum_needs_a_rollout_to_switch_to(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", "mfmnist-small", "--model", "nextframe", "--rollout-from", "100", "--steps", "1",
                 "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "rollout-from" in err and "set it to 2 or more" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


@needs_fmnist
def test_the_probe_calls_a_g_that_draws_one_frame_for_every_past_collapsed(tmp_path: Path) -> None:
    """A width-16 GAN trained on its rollouts went blank (every prediction black, at one of two
    seeds, docs/BENCHMARKS.md) while the report said no failure was seen: the probe's diversity of
    G's next frames against the true ones is what the mode-collapse rule reads."""
    from gankit.diagnosis import check, mean_pairwise_distance, pooled_pixels
    from gankit.tasks import task_cures
    from gankit.tasks.nextframe import NextFrameTask
    from gankit.train.task import Context

    torch.set_num_threads(1)
    cfg = resolve(build_config(overrides={**TINY, "eval_n": 16, "out": str(tmp_path / "r")}))
    task = NextFrameTask(Context(cfg, torch.device("cpu")))
    task.setup()
    held = task.held[:16].float() / 127.5 - 1  # the probe's sequences, in [-1, 1]
    truth = mean_pairwise_distance(pooled_pixels(held[:, task.context]))
    # by hand: a G that copies the last frame is as varied as its inputs
    copy = mean_pairwise_distance(pooled_pixels(held[:, task.context - 1])) / truth
    task.G_sample.forward = lambda x: x[:, -1:]  # type: ignore[method-assign]  # (N, context * C, H, W) -> last frame
    assert task.probe()["diversity"] == pytest.approx(copy, abs=1e-4) and copy > 0.5
    task.G_sample.forward = lambda x: -torch.ones_like(x[:, -1:])  # type: ignore[method-assign]  # blank frames
    blank = task.probe()
    assert blank == {"diversity": 0.0}
    found = check([{"step": 250} | blank, {"step": 500} | blank], cures=task_cures(cfg))
    assert [f.kind for f in found] == ["mode_collapse"]
    # the cures a next-frame run has, not the image GAN's flags
    assert "--adv-weight" in found[0].message and "--pack" not in found[0].message
    assert task_cures(cfg) == NextFrameTask.cures and task_cures(build_config()) == {}
    # a run of a task another program registered, read without it: the catalogue's cures
    assert task_cures(build_config(overrides={"model": "someone-elses"})) == {}


@needs_fmnist
def test_with_ema_the_moving_average_of_g_predicts_everywhere(tmp_path: Path) -> None:
    """A next-frame run keeps the GANs' moving average of G (--ema; Mathieu et al. keep none: --ema 0),
    and the average predicts: in training's grids and scores, and from the checkpoint."""
    from gankit.checkpoint import load_checkpoint
    from gankit.predicting import load_predictor
    from gankit.tasks.nextframe import NextFrameTask
    from gankit.train.task import Context

    torch.set_num_threads(1)
    cfg = resolve(build_config(overrides={**TINY, "ema": 0.5, "ema_rampup": 0.0, "out": str(tmp_path / "t")}))
    task = NextFrameTask(Context(cfg, torch.device("cpu")))
    task.setup()
    assert task.G_ema is not None and task.G_sample is task.G_ema
    before = [p.clone() for p in task.G_ema.parameters()]
    task.iteration(0)
    # by hand: beta 0.5 and no warm-up, so the average is halfway between its old weights and G's new
    for old, avg, new in zip(before, task.G_ema.parameters(), task.G.parameters(), strict=True):
        torch.testing.assert_close(avg, 0.5 * old + 0.5 * new)
    assert any(not torch.equal(a, b) for a, b in zip(task.G_ema.parameters(), task.G.parameters(), strict=True))

    out = tmp_path / "r"
    train_config(build_config(overrides={**TINY, "ema": 0.5, "ema_rampup": 0.0, "out": str(out)}))
    ckpt = load_checkpoint(out)
    assert any(k.startswith("G_ema.") for k in ckpt.model)
    G = load_predictor(out).G  # `gankit predict` and bench/nextframe.py read the average
    for k, v in G.state_dict().items():
        assert torch.equal(v, ckpt.model[f"G_ema.{k}"])
    assert any(not torch.equal(ckpt.model[f"G_ema.{k}"], ckpt.model[f"G.{k}"]) for k in G.state_dict())
    # the paper's recipe: no average, G itself predicts
    off = tmp_path / "off"
    train_config(build_config(overrides={**TINY, "ema": 0.0, "out": str(off)}))
    assert not any(k.startswith("G_ema.") for k in load_checkpoint(off).model)
    G = load_predictor(off).G
    assert all(torch.equal(v, load_checkpoint(off).model[f"G.{k}"]) for k, v in G.state_dict().items())


def test_a_flow_run_predicts_with_a_flow_g_from_its_checkpoint(tmp_path: Path) -> None:
    from gankit.checkpoint import load_checkpoint
    from gankit.predicting import load_predictor

    torch.set_num_threads(1)
    out = tmp_path / "flow"
    train_config(build_config(overrides={**TINY, "frame_g": "flow", "out": str(out)}))
    ckpt = load_checkpoint(out)
    assert ckpt.meta["config"]["nextframe"]["frame_g"] == "flow"
    G = load_predictor(out).G
    assert G.g == "flow"
    for k, v in G.state_dict().items():
        assert torch.equal(v, ckpt.model[f"{ckpt.sampling_G}.{k}"])
