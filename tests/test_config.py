"""Config: one source of defaults, YAML + flags, None for unset, provenance, the resolve step,
and errors that name the key (and, on the command line, the flag)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gankit.config import (
    Config,
    build_config,
    config_from_dict,
    options,
    parse_image_size,
    validate,
)
from gankit.errors import GankitError
from gankit.resolve import resolve


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
    ("lr: 0.1\n", r"unknown config key 'lr'; did you mean 'lr_g' or 'lr_d'"),
    ("train:\n  stepz: 3\n", r"'train.stepz'.*'train.steps'"),
    ("steps: ten\n", r"train.steps must be an integer, got 'ten'"),
    ("lr_g: '0.1'\n", r"train.lr_g must be a number"),
    ("progress: 1\n", r"log.progress must be true or false"),
    ("steps: 0\n", r"train.steps must be at least 1"),
    ("loss: wasserstein\n", r"unknown loss 'wasserstein'; choose one of: minimax, nonsaturating"),
    ("model: resnet\n", r"unknown model 'resnet'"),
    ("prior: cauchy\n", r"model.prior must be one of normal, uniform"),
    ("channels: 2\n", r"data.channels must be one of 1, 3, got 2"),
    ("device: gpu\n", r"train.device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("eval_features: 'inception PATH'\n", r"eval.eval_features must be fmnist or inception:PATH"),
    ("eval_features: resnet\n", r"eval.eval_features: unknown feature extractor 'resnet'"),
    ("eval_metric: fidd\n", r"eval.eval_metric: unknown metric key 'fidd'"),
    ("diffaugment: color,flip\n", r"reg.diffaugment 'color,flip': use a comma list of color, translation"),
    ("width: -4\n", r"model.width must be at least 1, got -4"),
    ("beta1: 1.5\n", r"train.beta1 must be in \[0, 1\)"),
    ("- a\n- b\n", r"must hold a mapping"),
    ("steps: [1\n", r"not valid YAML at line"),
    ("image_size: 12y\n", r"data.image_size '12y' is not N or HxW"),
])
def test_errors_name_the_key(tmp_path: Path, text: str, match: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(GankitError, match=match) as e:
        resolve(build_config(p))
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


# --------------------------------------------------------------------------- the schema's layer


def test_the_schema_imports_nothing_of_gankit_but_its_errors() -> None:
    # In a fresh interpreter: the schema loads with the standard library alone (no torch, no yaml).
    code = ("import sys, gankit.config.schema; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gankit', 'torch', 'yaml', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == str(sorted(["gankit", "gankit.config", "gankit.config.schema",
                                             "gankit.errors"])), out.stdout


# --------------------------------------------------------------------------- None = unset


def test_unset_is_none_and_saved_as_null() -> None:
    cfg = build_config()
    unset = [o.dotted for o in options() if o.optional]
    assert {"data.image_size", "data.channels", "data.data_root", "data.cache_dir", "data.workers",
            "model.width", "model.conditional", "model.embed_dim", "reg.diffaugment", "log.out",
            "eval.eval_metric", "translate.partner"} <= set(unset)
    assert all(cfg.get(k) is None for k in unset)
    saved = yaml.safe_load(cfg.to_yaml())
    assert saved["data"]["image_size"] is None and saved["model"]["width"] is None
    assert {o.dotted: o.type for o in options()}["model.width"] is int  # the base type of int | None


def test_legacy_unset_spellings_load_as_none(tmp_path: Path) -> None:
    # config.yaml and checkpoints of earlier versions spelled unset "" and 0
    legacy = {"data": {"source": "ring", "image_size": "", "channels": 0, "workers": 0, "data_root": "",
                       "cache_dir": ""},
              "model": {"arch": "mlp", "width": 0, "conditional": "", "embed_dim": 0},
              "reg": {"diffaugment": ""}, "log": {"out": ""}, "eval": {"eval_metric": ""},
              "translate": {"partner": ""}}
    cfg = config_from_dict(legacy, "old/config.yaml")
    assert (cfg.data.image_size, cfg.model.width, cfg.data.channels, cfg.model.conditional) == (None,) * 4
    # every other key at its default, except those added since, at what the old runs did
    assert (cfg.train.ema_rampup, cfg.text.contrastive, cfg.reg.ada, cfg.text.unknown_words,
            cfg.text.g_fusion, cfg.views.view_g, cfg.nextframe.rollout, cfg.views.view_adv) == (
        0.0, 0.0, False, "keep", "input", "unet", 1, 1.0)
    cfg.train.ema_rampup, cfg.text.contrastive = Config().train.ema_rampup, Config().text.contrastive
    cfg.reg.ada, cfg.text.unknown_words = Config().reg.ada, Config().text.unknown_words
    cfg.text.g_fusion, cfg.views.view_g = Config().text.g_fusion, Config().views.view_g
    cfg.views.view_adv = Config().views.view_adv
    assert cfg == Config(data=cfg.data, model=cfg.model) and cfg.data.source == "ring"
    assert resolve(cfg).model.conditional is None  # and it resolves: "" is not a conditioning name
    # the same spellings as flags, keyword arguments or a --config file
    assert build_config(overrides={"width": 0, "conditional": "", "image_size": ""}) == Config()
    assert build_config(write(tmp_path, "channels: 0\nout: ''\n")) == Config()
    # set values still load as they are
    assert config_from_dict({"image_size": 32, "width": 8}, "x").data.image_size == "32"


def test_the_cli_takes_optional_flags_and_an_empty_value_unsets(capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.cli import UsageError, build_parser, main
    from gankit.config import parse_cli_value

    by_key = {o.key: o for o in options()}
    assert parse_cli_value(by_key["width"], "16") == 16 and parse_cli_value(by_key["width"], "") is None
    ns = build_parser().parse_args(["train", "--width", "16", "--image-size", "32", "--conditional", ""])
    assert (ns.width, ns.image_size, ns.conditional) == (16, "32", None)
    with pytest.raises(UsageError, match="--width must be an integer, got 'wide'"):
        build_parser().parse_args(["train", "--width", "wide"])
    assert main(["train", "--width", "wide"]) == 2  # said in one line
    err = capsys.readouterr().err
    assert err.startswith("gankit: error: argument --width: --width must be an integer, got 'wide'")
    assert len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- provenance


def test_provenance_records_what_the_user_set_and_round_trips(tmp_path: Path) -> None:
    cfg = build_config(write(tmp_path, "train:\n  lr_g: 0.001\nloss: wgan\n"), {"steps": 20})
    assert cfg.provenance.user_set == ["train.lr_g", "train.loss", "train.steps"]
    cfg = resolve(cfg)
    assert cfg.provenance.resolved == {"reg.clip": "train.loss=wgan implies it"}
    cfg.resolve_value("data.image_size", "28", "from the data")
    assert cfg.data.image_size == "28" and cfg.provenance.resolved["data.image_size"] == "from the data"
    with pytest.raises(GankitError, match="data.channels must be an integer"):
        cfg.resolve_value("data.channels", "3", "from the data")
    text = cfg.to_yaml()
    saved = yaml.safe_load(text)
    assert list(saved)[-1] == "provenance" and saved["provenance"]["set_by_user"][0] == "train.lr_g"
    assert saved["provenance"]["resolved"]["reg.clip"] == "train.loss=wgan implies it"
    back = config_from_dict(saved, "config.yaml")
    assert back == cfg and back.provenance == cfg.provenance
    assert "provenance" not in cfg.to_dict()  # checkpoints keep the settings only
    assert config_from_dict(cfg.to_dict(), "state.json").provenance.user_set == []


def test_a_saved_config_as_a_preset_is_all_the_users(tmp_path: Path) -> None:
    saved = resolve(build_config(overrides={"loss": "wgan", "data": "ring", "model": "mlp"}))
    cfg = build_config(write(tmp_path, saved.to_yaml()))
    assert cfg == saved and not cfg.provenance.resolved  # the old run's history is not this one's
    assert len(cfg.provenance.user_set) == len(options())


def test_a_bad_provenance_is_named() -> None:
    with pytest.raises(GankitError, match="x.yaml: provenance must be a mapping"):
        config_from_dict({"provenance": {"set_by_user": "steps"}}, "x.yaml")


# --------------------------------------------------------------------------- the resolve step


def test_resolve_records_what_a_loss_and_a_translator_imply() -> None:
    cfg = resolve(build_config(overrides={"loss": "wgan-gp"}))
    assert cfg.reg.gp == 10.0 and "train.loss=wgan-gp" in cfg.provenance.resolved["reg.gp"]
    cfg = resolve(build_config(overrides={"model": "pix2pix", "lr_g": 1e-3}))
    assert (cfg.data.source, cfg.train.lr_g, cfg.train.lr_d, cfg.train.ema) == ("edges2fashion", 1e-3, 2e-4, 0.0)
    why = cfg.provenance.resolved
    assert set(why) == {"data.source", "train.loss", "train.lr_d", "train.lr_decay_start",
                        "train.ema"}  # not lr_g: the user set it
    assert all("model.arch=pix2pix" in w for w in why.values())
    # a value the user gave is theirs even when it equals the default the model's recipe replaces
    # (pix2pix's Adam is 2e-4; the user's --lr-g 4e-4, gankit's default, was silently 2e-4 before)
    cfg = resolve(build_config(overrides={"model": "pix2pix", "lr_g": 4e-4}))
    assert (cfg.train.lr_g, cfg.train.lr_d) == (4e-4, 2e-4) and "train.lr_g" not in cfg.provenance.resolved


def test_resolve_is_pure_and_idempotent() -> None:
    cfg = build_config(overrides={"model": "cyclegan", "loss": "lsgan"})
    before = (cfg.to_dict(), cfg.provenance.to_dict())
    out = resolve(cfg)
    assert (cfg.to_dict(), cfg.provenance.to_dict()) == before  # the input is left as it was
    assert out.train.lr_g == 2e-4 and cfg.train.lr_g == 4e-4
    again = resolve(out)
    assert again == out and again.provenance == out.provenance


def test_rule_errors_need_resolve_and_build_config_alone_keeps_the_schema() -> None:
    cfg = build_config(overrides={"loss": "wgan", "label_smoothing": 0.1})  # schema-valid
    with pytest.raises(GankitError, match="reg.label_smoothing needs a loss with labels .*minimax.*; "
                                          "train.loss=wgan has none"):
        resolve(cfg)
    with pytest.raises(GankitError, match="train.batch_size \\(32\\) must be a multiple of reg.pack \\(3\\)"):
        build_config(overrides={"batch_size": 32, "pack": 3})
    with pytest.raises(GankitError, match="text.where_dims \\(8\\) must be under text.cond_dim \\(8\\)"):
        build_config(overrides={"g_fusion": "split", "cond_dim": 8})
    assert build_config(overrides={"g_fusion": "where", "cond_dim": 8}).text.where_dims == 8  # read by split only
    with pytest.raises(GankitError, match="text.split_decor \\(1.0\\) needs text.g_fusion=split"):
        build_config(overrides={"split_decor": 1.0})
    with pytest.raises(GankitError, match="text.where_patch \\(4\\) must be odd"):
        build_config(overrides={"where_patch": 4})
    with pytest.raises(GankitError, match="text.g_pad \\(wrap\\) needs a fused G"):
        build_config(overrides={"g_pad": "wrap", "g_fusion": "input"})
    assert build_config(overrides={"g_pad": "wrap"}).text.g_pad == "wrap"  # with the default fusion, where
    assert validate(build_config(overrides={"conditional": "cgan"})).model.conditional == "cgan"


# --------------------------------------------------------------------------- keys -> flags


def test_library_messages_name_keys_and_the_cli_shows_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.cli import flags_for_keys, main

    assert flags_for_keys("model.arch=cyclegan needs translate.partner=B_DIR; train.lr_g must be") == \
        "--model cyclegan needs --partner B_DIR; --lr-g must be"
    # quoted keys are YAML spellings, file names are file names
    assert flags_for_keys("unknown config key 'train.stepz'; runs/log.out") == \
        "unknown config key 'train.stepz'; runs/log.out"
    assert main(["train", "--data", "ring", "--model", "mlp", "--loss", "wgan", "--label-smoothing", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "--label-smoothing needs a loss with labels" in err and "--loss wgan has none" in err
    assert "reg.label_smoothing" not in err


def test_parse_assignments_types_values_and_refuses_what_is_not_a_pair():
    from gankit.config.load import parse_assignments

    out = parse_assignments(["lr-g=2e-4", "loss=hinge", "mbstd=true", "steps=7", "image_size=32"])
    assert out == {"lr_g": 2e-4, "loss": "hinge", "mbstd": True, "steps": 7, "image_size": "32"}
    cfg = build_config(overrides=out)  # the schema takes them as typed values
    assert (cfg.train.lr_g, cfg.train.loss, cfg.reg.mbstd, cfg.train.steps, cfg.data.image_size) == (
        2e-4, "hinge", True, 7, "32")
    with pytest.raises(GankitError, match="KEY=VALUE"):
        parse_assignments(["lr_g"])
