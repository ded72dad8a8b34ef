"""Config: one source of defaults, YAML + flags, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gankit.config import Config, build_config, options, parse_image_size
from gankit.errors import GankitError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_are_the_documented_main_job() -> None:
    cfg = build_config()
    assert (cfg.data.source, cfg.model.arch, cfg.train.loss) == ("fashion-mnist", "dcgan", "nonsaturating")
    assert cfg == Config()  # build_config adds nothing of its own


def test_every_option_has_a_unique_flag_and_help() -> None:
    opts = options()
    assert len({o.flag for o in opts}) == len(opts)
    assert all(o.help for o in opts)
    assert {"--data", "--model", "--latent-dim", "--prior", "--loss", "--d-steps", "--steps", "--batch-size",
            "--lr-g", "--lr-d", "--beta1", "--beta2", "--seed", "--device", "--out", "--log-every",
            "--sample-every", "--checkpoint-every", "--keep", "--image-size"} <= {o.flag for o in opts}


def test_yaml_flat_and_sections_then_overrides(tmp_path: Path) -> None:
    p = write(tmp_path, "data: ring\nmodel: mlp\ntrain:\n  lr_g: 0.001\n  d_steps: 3\nsteps: 10\n")
    cfg = build_config(p, {"steps": 20})
    assert cfg.data.source == "ring" and cfg.model.arch == "mlp"
    assert cfg.train.lr_g == 0.001 and cfg.train.d_steps == 3
    assert cfg.train.steps == 20  # the flag wins over the file


def test_ints_accepted_for_floats(tmp_path: Path) -> None:
    assert build_config(write(tmp_path, "lr_d: 1\n")).train.lr_d == 1.0


@pytest.mark.parametrize(("text", "match"), [
    ("lr: 0.1\n", r"unknown config key 'lr'; did you mean lr_g or lr_d"),
    ("train:\n  stepz: 3\n", r"'train.stepz'.*train.steps"),
    ("steps: ten\n", r"train.steps must be an integer, got 'ten'"),
    ("lr_g: '0.1'\n", r"train.lr_g must be a number"),
    ("progress: 1\n", r"log.progress must be true or false"),
    ("steps: 0\n", r"train.steps must be at least 1"),
    ("loss: wasserstein\n", r"unknown loss 'wasserstein'; choose one of: minimax, nonsaturating"),
    ("model: resnet\n", r"unknown model 'resnet'"),
    ("prior: cauchy\n", r"model.prior .* must be one of normal, uniform"),
    ("beta1: 1.5\n", r"train.beta1 must be in \[0, 1\)"),
    ("- a\n- b\n", r"must hold a mapping"),
    ("steps: [1\n", r"not valid YAML at line"),
    ("image_size: 12y\n", r"image_size '12y' is not N or HxW"),
])
def test_errors_name_the_key(tmp_path: Path, text: str, match: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(GankitError, match=match) as e:
        build_config(p)
    if "unknown config key" in match or "must be" in match:
        assert str(p) in str(e.value)  # names the file too


def test_missing_file() -> None:
    with pytest.raises(GankitError, match="does not exist"):
        build_config("nope.yaml")


@pytest.mark.parametrize(("text", "size"), [("28", (28, 28)), ("48x64", (48, 64)), (" 32 X 16 ", (32, 16))])
def test_image_size(text: str, size: tuple[int, int]) -> None:
    assert parse_image_size(text) == size


def test_image_size_int_in_yaml(tmp_path: Path) -> None:
    cfg = build_config(write(tmp_path, "image_size: 32\n"))
    assert cfg.data.size() == (32, 32)


def test_config_yaml_round_trip() -> None:
    import yaml

    from gankit.config import config_from_dict

    cfg = build_config(overrides={"data": "grid", "lr_g": 3e-4, "image_size": "48x64"})
    assert config_from_dict(yaml.safe_load(cfg.to_yaml()), "x") == cfg
