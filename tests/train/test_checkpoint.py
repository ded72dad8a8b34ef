"""Checkpoints: atomic, pruned, self-describing, loaded without unpickling."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

from gankit import checkpoint as ck
from gankit.api import train_config
from gankit.errors import GankitError
from tests.conftest import tiny_config


def test_layout_and_pruning(tmp_path: Path) -> None:
    train_config(tiny_config(tmp_path / "r", steps=50, checkpoint_every=10, keep=2))
    d = tmp_path / "r" / "checkpoints"
    assert sorted(p.name for p in d.iterdir()) == ["last", "step-000040", "step-000050"]
    assert (d / "last").resolve().name == "step-000050"
    assert sorted(p.name for p in (d / "last").iterdir()) == [
        "model.safetensors", "state.json", "train.safetensors"]
    meta = json.loads((d / "last" / "state.json").read_text())
    assert meta["step"] == 50 and meta["config"]["model"]["arch"] == "mlp"  # self-describing
    c = ck.load_checkpoint(tmp_path / "r")
    assert set(k.split(".")[0] for k in c.model) == {"G", "D", "G_ema"}  # EMA of G on by default


def test_failed_save_keeps_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train_config(tiny_config(tmp_path / "r", steps=20, checkpoint_every=10))
    d = tmp_path / "r" / "checkpoints"
    before = ck.load_checkpoint(d)

    def disk_full(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck, "_write_json", disk_full)
    with pytest.raises(GankitError, match="No space left on device.*step-000020 is kept"):
        ck.save_checkpoint(d, 30, before.model, before.train or {}, {"config": {}}, keep=3)
    after = ck.load_checkpoint(d)
    assert after.path.name == "step-000020"
    assert not [p for p in d.iterdir() if p.name.startswith(".")]  # the partial save was removed


def test_leftovers_of_a_killed_save_are_ignored_and_cleaned(tmp_path: Path) -> None:
    train_config(tiny_config(tmp_path / "r", steps=20, checkpoint_every=10))
    d = tmp_path / "r" / "checkpoints"
    partial = d / ".tmp-step-000030-999"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")
    assert ck.load_checkpoint(d).step == 20
    ck.clean_partial(d)
    assert not partial.exists()


def test_missing_last_link_falls_back_to_newest(tmp_path: Path) -> None:
    train_config(tiny_config(tmp_path / "r", steps=20, checkpoint_every=10))
    (tmp_path / "r" / "checkpoints" / "last").unlink()
    assert ck.load_checkpoint(tmp_path / "r").step == 20


def test_a_run_copied_through_its_links_resumes_and_saves(tmp_path: Path) -> None:
    import shutil

    train_config(tiny_config(tmp_path / "r", steps=20, checkpoint_every=10))
    shutil.copytree(tmp_path / "r", tmp_path / "copy")  # follows links: last is a folder now
    d = tmp_path / "copy" / "checkpoints"
    assert (d / "last").is_dir() and not (d / "last").is_symlink()
    train_config(None, resume=tmp_path / "copy", overrides={"steps": 30})
    assert (d / "last").is_symlink() and (d / "last").resolve().name == "step-000030"
    assert not [p for p in d.iterdir() if p.name.startswith(".")]  # the folder moved aside is gone


def test_damaged_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    train_config(tiny_config(tmp_path / "r", steps=10, checkpoint_every=10))
    f = tmp_path / "r" / "checkpoints" / "last" / "model.safetensors"
    f.write_bytes(b"\x80\x04not safetensors")  # e.g. a pickle someone dropped in
    with pytest.raises(GankitError, match="damaged"):
        ck.load_checkpoint(tmp_path / "r")


def test_optimizer_round_trip_is_exact() -> None:
    torch.manual_seed(0)
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.5, 0.9))
    for _ in range(3):
        opt.zero_grad()
        m(torch.randn(4, 3)).sum().backward()
        opt.step()
    tensors, meta = ck.optimizer_to_flat("o", opt)
    meta = json.loads(json.dumps(meta))  # through JSON, as saved
    opt2 = torch.optim.Adam(m.parameters(), lr=5.0)
    ck.optimizer_from_flat("o", opt2, tensors, meta)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for pid in a["state"]:
        for k in a["state"][pid]:
            assert torch.equal(a["state"][pid][k], b["state"][pid][k])


def test_tensorboard_mirrors_metrics_jsonl(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the optional extra: pip install 'gankit[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_config(tiny_config(tmp_path / "r", steps=30, tensorboard=True))
    acc = EventAccumulator(str(tmp_path / "r" / "tensorboard"))
    acc.Reload()
    lines = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    events = acc.Scalars("loss_d")
    assert [e.step for e in events] == [r["step"] for r in lines] == [10, 20, 30]
    assert [e.value for e in events] == pytest.approx([r["loss_d"] for r in lines], rel=1e-6)
