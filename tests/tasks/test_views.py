"""Novel-view synthesis (--model novel-view): the angle conditioning, the scores against hand-made
cases, a tiny run end to end with `gankit sample --angles` writing its turntable GIF, the L1-only
twin, and bad input refused in one line naming the file (exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.api import train_config
from gankit.cli import main
from gankit.config import build_config
from gankit.data.views import ViewSet
from gankit.errors import GankitError
from gankit.metrics.views import eval_pairs, identity_hits, score_views
from gankit.models.views import (
    ANGLE_DIMS,
    FlowViewGenerator,
    ViewGenerator,
    angle_code,
    build_views,
)
from gankit.resolve import resolve
from gankit.view_sampling import parse_angles

TINY = {"data": "views-tiny", "model": "novel-view", "width": 8, "steps": 4, "batch_size": 4, "log_every": 2,
        "sample_every": 4, "checkpoint_every": 4, "progress": False, "precision": "fp32"}


def test_the_angle_code_is_the_turn_and_both_elevations() -> None:
    src = torch.tensor([[30.0, 0.0], [0.0, 90.0]])
    tgt = torch.tensor([[120.0, 30.0], [0.0, 90.0]])
    code = angle_code(src, tgt)
    assert code.shape == (2, ANGLE_DIMS)
    expect = [[1.0, 0.0, 0.0, 1.0, 0.5, 3**0.5 / 2], [0.0, 1.0, 1.0, 0.0, 1.0, 0.0]]
    assert torch.allclose(code, torch.tensor(expect), atol=1e-6)


def test_g_and_d_take_the_view_and_the_angles() -> None:
    nets = build_views((3, 16, 16), width=4)
    x, code = torch.rand(5, 3, 16, 16) * 2 - 1, angle_code(torch.zeros(5, 2), torch.rand(5, 2) * 90)
    out = nets["G"](x, code)
    assert out.shape == (5, 3, 16, 16) and out.abs().max() <= 1
    assert nets["D"](x, out, code).shape[:2] == (5, 1)
    # the angles reach G's output: another turn, another view
    nets["G"].eval()
    other = angle_code(torch.zeros(5, 2), torch.full((5, 2), 45.0))
    assert not torch.allclose(nets["G"](x, code), nets["G"](x, other))


class Fixed(torch.nn.Module):
    """Stands for the U-Net: returns one given output whatever its input."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out


def test_the_flow_g_moves_the_source_draws_the_rest_and_blends_by_its_mask() -> None:
    G = build_views((1, 8, 8), width=4, g="flow")["G"]
    assert isinstance(G, FlowViewGenerator)
    source = torch.arange(64.0).view(1, 1, 8, 8) / 64 - 0.5
    code = angle_code(torch.zeros(1, 2), torch.zeros(1, 2))
    drawn, flow, mask = torch.full((1, 1, 8, 8), 0.25), torch.zeros(1, 2, 8, 8), torch.ones(1, 1, 8, 8)

    def out(flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        G.unet = Fixed(torch.cat([drawn, flow, mask * 2 - 1], 1))  # the mask leaves the U-Net in [-1, 1]
        return G(source, code)

    assert torch.allclose(out(flow, mask), source, atol=1e-6)  # no flow, all moved: the source itself
    assert torch.allclose(out(flow, mask * 0), drawn)  # nothing moved: the drawn view
    assert torch.allclose(out(flow, mask * 0.25), 0.25 * source + 0.75 * drawn, atol=1e-6)
    # a flow of one pixel to the right (2 / 8 in [-1, 1] units) reads each pixel from its right-hand
    # neighbour; the last column reads past the edge and keeps the border's value
    right = torch.zeros(1, 2, 8, 8)
    right[:, 0] = 2 / 8
    moved = out(right, mask)
    assert torch.allclose(moved[..., :-1], source[..., 1:], atol=1e-6)
    assert torch.allclose(moved[..., -1], source[..., -1], atol=1e-6)
    # a down flow of one pixel reads each row from the row below
    down = torch.zeros(1, 2, 8, 8)
    down[:, 1] = 2 / 8
    assert torch.allclose(out(down, mask)[..., :-1, :], source[..., 1:, :], atol=1e-6)


def test_the_flow_g_is_trained_through_its_flow_and_its_mask() -> None:
    torch.manual_seed(0)
    G = build_views((3, 16, 16), width=4, g="flow")["G"]
    x, code = torch.rand(2, 3, 16, 16) * 2 - 1, angle_code(torch.zeros(2, 2), torch.full((2, 2), 30.0))
    out = G(x, code)
    assert out.shape == (2, 3, 16, 16) and out.abs().max() <= 1
    out.square().sum().backward()
    last = G.unet.up[-1][1]  # the outermost transposed convolution: C drawn, 2 flow, 1 mask channels
    assert last.weight.grad.shape[1] == 6
    assert (last.weight.grad[:, 3:].abs().sum((0, 2, 3)) > 0).all()  # the flow's and mask's weights learn


def _views(images: torch.Tensor, per_object: int) -> ViewSet:
    n = images.shape[0]
    obj = torch.arange(n // per_object).repeat_interleave(per_object)
    angles = torch.stack([torch.arange(per_object).repeat(n // per_object) * 90.0, torch.zeros(n)], 1)
    return ViewSet(images, obj, angles, [f"o{i}" for i in range(n // per_object)], "hand")


class Copy(torch.nn.Module):
    def forward(self, source: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        return source


def test_copy_the_source_scores_l1_0_ssim_1_when_source_is_target() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 16, 16), generator=g, dtype=torch.uint8)
    v = _views(images, per_object=1)  # one view an object: every target is its source
    s = score_views(Copy(), v)
    assert s["copy_l1"] == 0 and s["copy_ssim"] == pytest.approx(1.0)
    assert s["l1"] == 0 and s["ssim"] == pytest.approx(1.0)
    assert s["copy_identity"] == 1.0


def test_copy_the_source_scores_black_against_white_by_hand() -> None:
    black, white = torch.zeros(1, 3, 16, 16, dtype=torch.uint8), torch.full((1, 3, 16, 16), 255, dtype=torch.uint8)
    v = _views(torch.cat([black, white]), per_object=2)
    src, tgt = eval_pairs(v, 10, seed=0)
    s = score_views(Copy(), v)
    turned = (src != tgt).double().mean().item()  # pairs whose target is the other view
    assert s["copy_l1"] == pytest.approx(turned)  # |0 - 1| on every pixel of those, 0 elsewhere
    # SSIM of black against white: C1 / (1 + C1) (means 0 and 1, no variance): nearly 0
    c1 = 0.01**2
    assert s["copy_ssim"] == pytest.approx((1 - turned) + turned * c1 / (1 + c1))


def test_identity_finds_the_nearest_object_at_the_target_angle() -> None:
    images = torch.stack([torch.full((3, 8, 8), v, dtype=torch.uint8) for v in (0, 60, 200, 255)])
    v = _views(images, per_object=2)  # object 0: views 0 (az 0) and 60 (az 90); object 1: 200, 255
    out = torch.stack([torch.full((3, 8, 8), x) for x in (-0.5, 0.9)])  # nearest 60 and 255 at az 90
    tgt = torch.tensor([1, 1])  # both asked for object 0 at az 90
    assert identity_hits(out, v, tgt).tolist() == [True, False]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    if shutil.which("povray") is None:
        pytest.fail("POV-Ray is not installed: run scripts/setup.sh")
    out = tmp_path / "run"
    train_config(build_config(overrides={**TINY, "out": str(out), "eval_every": 4, "eval_n": 16}))
    return out


def test_a_tiny_run_trains_scores_and_turns_a_photo_into_a_gif(run: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    (ev,) = [e for e in events if "eval_seconds" in e]
    assert {"l1", "ssim", "identity", "copy_l1", "copy_ssim", "copy_identity"} <= ev.keys()
    photo = tmp_path / "obj.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(photo)
    gif = tmp_path / "turntable.gif"
    assert main(["sample", str(run), "--input", str(photo), "--angles", "0:360:30", "--out", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 12 and im.size[0] >= 128
    assert main(["sample", str(run), "--input", str(photo), "--angles", "0,90,180", "--out",
                 str(tmp_path / "strip.png")]) == 0
    with Image.open(tmp_path / "strip.png") as im:
        assert im.size[0] >= 3 * 16


def test_bad_sample_input_exits_2_naming_the_file(run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    for args, named in (([str(tmp_path / "missing.png")], "missing.png: no such file"),
                        ([str(bad)], "broken.png: cannot be read as an image")):
        capsys.readouterr()
        assert main(["sample", str(run), "--input", *args, "--out", str(tmp_path / "t.gif")]) == 2
        err = capsys.readouterr().err
        assert named in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_training_on_a_folder_with_a_missing_angle_exits_2_naming_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("az000.png", "az090.png", "nameless.png"):
        (tmp_path / "objs" / "cup").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "objs" / "cup" / name)
    code = main(["train", "--model", "novel-view", "--data", str(tmp_path / "objs"), "--steps", "1",
                 "--no-progress", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "nameless.png: no angle" in err and "Traceback" not in err


def test_the_l1_only_twin_descends_l1_alone(tmp_path: Path) -> None:
    if shutil.which("povray") is None:
        pytest.fail("POV-Ray is not installed: run scripts/setup.sh")
    train_config(build_config(overrides={**TINY, "out": str(tmp_path / "r"), "view_adv": 0.0, "log_every": 1}))
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss_l1" in r]
    assert rows and all(r["loss_g"] == pytest.approx(r["loss_l1"]) for r in rows)


def test_a_run_is_rebuilt_with_its_own_g(tmp_path: Path) -> None:
    if shutil.which("povray") is None:
        pytest.fail("POV-Ray is not installed: run scripts/setup.sh")
    from gankit.config.schema import options_by_key
    from gankit.models.views import GENERATORS
    from gankit.view_sampling import load_view_generator

    assert resolve(build_config(overrides=TINY)).views.view_g == "flow"  # the default
    assert set(options_by_key()["view_g"].choices or ()) == set(GENERATORS)  # every choice builds a G
    train_config(build_config(overrides={**TINY, "steps": 2, "out": str(tmp_path / "r"), "view_g": "unet"}))
    loaded = load_view_generator(tmp_path / "r")
    assert isinstance(loaded.G, ViewGenerator) and loaded.config.views.view_g == "unet"


def test_views_settings_and_gan_options_are_refused_where_they_do_not_apply() -> None:
    with pytest.raises(GankitError, match="views.view_l1 is for novel-view synthesis"):
        resolve(build_config(overrides={"data": "ring", "model": "mlp", "view_l1": 10.0}))
    with pytest.raises(GankitError, match="model.latent_dim does not apply to model.arch=novel-view"):
        resolve(build_config(overrides={**TINY, "latent_dim": 8}))
    cfg = resolve(build_config(overrides={"model": "novel-view"}))
    assert (cfg.data.source, cfg.train.loss, cfg.train.lr_g) == ("views", "nonsaturating", 2e-4)


def test_angles_parse_as_a_range_or_a_list() -> None:
    assert parse_angles("0:360:30") == [float(a) for a in range(0, 360, 30)]
    assert parse_angles("0,90,-45") == [0.0, 90.0, -45.0]
    for bad in ("0:360", "a,b", "0:360:0", ""):
        with pytest.raises(GankitError, match="--angles"):
            parse_angles(bad)


def test_the_angle_classes_are_the_turn_to_45_degrees_and_the_target_elevation() -> None:
    from gankit.metrics.view_angles import AngleClasses

    classes = AngleClasses(8, (10.0, 35.0))
    src = torch.tensor([[0.0, 10.0], [350.0, 10.0], [90.0, 35.0], [0.0, 10.0]])
    tgt = torch.tensor([[0.0, 10.0], [40.0, 35.0], [0.0, 10.0], [15.0, 35.0]])
    # turns 0, 50 (-> step 1), -90 = 270 (-> step 6), 15 (-> step 0); elevation index 0 or 1
    assert classes(src, tgt).tolist() == [0, 1 * 2 + 1, 6 * 2 + 0, 0 * 2 + 1]


def test_the_angle_classifier_trains_deterministically() -> None:
    from gankit.metrics.view_angles import AngleClasses, train_angle_classifier

    g = torch.Generator().manual_seed(0)
    v = _views(torch.randint(0, 256, (8, 3, 16, 16), generator=g, dtype=torch.uint8), per_object=4)
    a, b = (train_angle_classifier(v, steps=3, batch_size=4) for _ in range(2))
    assert a.classes == AngleClasses(4, (0.0,))
    for (k, x), y in zip(a.net.state_dict().items(), b.net.state_dict().values(), strict=True):
        assert torch.equal(x, y), k
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    assert a(x, x).shape == (5,) and int(a(x, x).max()) < 4


def test_gankit_eval_scores_a_run_against_copy_the_source(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["eval", str(run), "--n", "8", "--json"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert values["step"] == 4 and {"l1", "ssim", "identity", "copy_l1", "copy_ssim"} <= values.keys()
